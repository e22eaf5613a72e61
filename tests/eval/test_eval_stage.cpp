// eval.catlip run in-process on a tiny exported ViT: files, fields, counters
// and the label-frequency prior's mAP (= mean prevalence, by construction).
// (REQUIRE only: LibTorch brings glog's CHECK macro, which replaces Catch's.)
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "catlip/eval/eval_stage.h"
#include "catlip/json.h"
#include "catlip/local.h"
#include "catlip/model/model_io.h"
#include "test_util.h"

using namespace catlip;
namespace fs = std::filesystem;
namespace json = catlip::json;

namespace {
double num(const json::Value& v) { return json::number(v); }
}  // namespace

TEST_CASE("eval.catlip evaluates an exported model and writes eval.json, TSV, samples") {
  test::TempDir d("eval-stage");
  // Vocabulary in the trainer's format; 3 synsets with training counts 6, 3, 1.
  test::write_file(d.file("vocab.tsv"),
                   "index\twnid\tlemma\tcount\tgloss\n0\tn02778669\tball\t6\tg\n1\tn03147509\tcup\t3\tg\n"
                   "2\tn02876657\tbottle\t1\tg\n");
  auto vocab = model::load_vocab(d.file("vocab.tsv"));
  model::ViTConfig cfg;
  cfg.dim = 16, cfg.depth = 1, cfg.heads = 2, cfg.image_size = 16, cfg.patch_size = 8, cfg.num_classes = 3;
  torch::manual_seed(0);
  model::ViT model(cfg);
  model::export_model(d.file("export"), "model", model::named_state(*model), cfg, vocab, 7);

  eval::EvalStage st;
  LocalContext ctx("eval", "eval.catlip", 0, 1, d.path());
  configure_stage(st, eval::EvalStage::schema(),
                  {{"checkpoint", d.path()},
                   {"vocab", d.file("vocab.tsv")},
                   {"batch_size", int64_t{3}},
                   {"threads", int64_t{1}},
                   {"samples", int64_t{2}},
                   {"top_k", std::vector<int64_t>{1, 2}}},
                  ctx);
  std::vector<Sample> in;
  const char* gts[] = {R"({"wnids": ["n02778669"]})", R"({"wnids": ["n02778669", "n03147509"]})",
                       R"({"wnids": ["n03147509", "n09999999"]})", R"({"objects": ["ball"]})", "{broken"};
  for (int i = 0; i < 6; ++i) {
    Sample s;
    s.key = "k" + std::to_string(i);
    Tensor t;
    t.dtype = DType::U8;
    int side = i == 4 ? 20 : 16;  // one image of another size is resized
    t.shape = {side, side, 3};
    t.data.assign(size_t(side * side * 3), char(i * 40));
    if (i == 5) t.data.resize(10);  // corrupt tensor: skipped
    s.set("image", std::move(t));
    s.set_ints("labels", {i % 3});
    s.set_text("txt", "caption " + std::to_string(i));
    if (i < 5) s.set_text("json", gts[i]);
    in.push_back(std::move(s));
  }
  CollectEmitter out;
  run_transform(st, std::move(in), out);
  st.close();

  REQUIRE(ctx.counter("eval.samples") == 5);
  REQUIRE(ctx.counter("skipped.bad_image") == 1);
  REQUIRE(ctx.counter("eval.resized") == 1);
  REQUIRE(ctx.counter("eval.gt_objects_outside_vocab") == 1);
  REQUIRE(ctx.counter("eval.bad_ground_truth_json") == 1);
  REQUIRE(fs::exists(d.file("eval.json")));
  auto e = json::read_file(d.file("eval.json"));
  // One top-level key per line, each metrics block on one line.
  REQUIRE(test::read_file(d.file("eval.json")).find("\n  \"captions\": {\"samples\": 5, \"classes_scored\": 3,") !=
          std::string::npos);
  REQUIRE(num(e.at("samples")) == 5);
  REQUIRE(num(e.at("step")) == 7);
  auto& gt = e.at("ground_truth");
  REQUIRE(num(gt.at("samples")) == 4);  // the broken json is not scored against ground truth
  REQUIRE(num(gt.at("classes_scored")) == 2);
  // Prior: constant scores per synset, so AP = prevalence: ball 3/4, cup 2/4.
  REQUIRE(num(gt.at("prior_mAP")) == Approx((0.75 + 0.5) / 2).epsilon(1e-4));
  double map = num(gt.at("mAP"));
  REQUIRE(map >= 0.0);
  REQUIRE(map <= 1.0);
  auto& cap = e.at("captions");
  REQUIRE(num(cap.at("samples")) == 5);
  REQUIRE(num(cap.at("classes_scored")) == 3);
  // Per-synset TSV: header + 3 rows; samples file with 2 PNGs.
  std::ifstream tsv(d.file("eval_per_synset.tsv"));
  int lines = 0;
  for (std::string l; std::getline(tsv, l);) ++lines;
  REQUIRE(lines == 4);
  auto samples = json::read_file(d.file("eval_samples.json"));
  REQUIRE(json::array(samples).size() == 2);
  REQUIRE(json::array(samples[0].at("top")).size() == 3);
  REQUIRE(fs::exists(d.file("eval_samples/000.png")));
  REQUIRE(fs::exists(d.file("eval_samples/001.png")));
}

TEST_CASE("eval.catlip refuses a vocabulary of another size") {
  test::TempDir d("eval-stage2");
  test::write_file(d.file("vocab.tsv"), "index\twnid\tlemma\tcount\tgloss\n0\tn02778669\tball\t6\tg\n1\tn03147509\tcup\t3\tg\n");
  test::write_file(d.file("vocab3.tsv"),
                   "#index\twnid\tlemma\tcount\tgloss\n0\tn02778669\tball\t6\tg\n1\tn03147509\tcup\t3\tg\n2\tn02876657\tbottle\t1\tg\n");
  auto vocab = model::load_vocab(d.file("vocab.tsv"));
  model::ViTConfig cfg;
  cfg.dim = 16, cfg.depth = 1, cfg.heads = 2, cfg.image_size = 16, cfg.patch_size = 8, cfg.num_classes = 2;
  model::ViT model(cfg);
  auto path = model::export_model(d.file("x"), "model", model::named_state(*model), cfg, vocab, 1);
  eval::EvalStage st;
  LocalContext ctx("eval", "eval.catlip", 0, 1, d.path());
  REQUIRE_THROWS_WITH(
      configure_stage(st, eval::EvalStage::schema(), {{"checkpoint", path}, {"vocab", d.file("vocab3.tsv")}}, ctx),
      Catch::Contains("3 rows"));
  eval::EvalStage st2;
  REQUIRE_THROWS_WITH(configure_stage(st2, eval::EvalStage::schema(),
                                      {{"checkpoint", d.file("nope")}, {"vocab", d.file("vocab.tsv")}}, ctx),
                      Catch::Contains("does not exist"));
}
