// CatLIP vs CLIP (clip_eval.h): time-to-accuracy on hand-made curves, the
// comparison's JSON, CLIP zero-shot end to end on a tiny CLIP trained here
// from scratch (and on a SigLIP export), and a smoke run of
// `catlip quickstart --compare clip`.
// (REQUIRE only: LibTorch brings glog's CHECK macro, which replaces Catch's.)
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "catlip/model/clip_config.h"
#include "catlip/model/clip_model.h"
#include "catlip/model/model_io.h"
#include "catlip/model/state_io.h"
#include "catlip/transfer/clip_eval.h"
#include "test_util.h"

using namespace catlip;
namespace fs = std::filesystem;
namespace json = catlip::json;
using transfer::AccuracyPoint;

namespace {
double num(const json::Value& v) { return json::number(v); }
}  // namespace

TEST_CASE("time_to_accuracy interpolates linearly between checkpoints") {
  std::vector<AccuracyPoint> c = {{10, 0.1}, {20, 0.3}, {30, 0.5}};
  auto t = transfer::time_to_accuracy(c, 0.4);
  REQUIRE(t.reached);
  REQUIRE_FALSE(t.at_first_point);
  REQUIRE(std::abs(t.seconds - 25.0) < 1e-9);
  // Exactly at a point.
  t = transfer::time_to_accuracy(c, 0.3);
  REQUIRE(t.reached);
  REQUIRE(std::abs(t.seconds - 20.0) < 1e-9);
  // Already reached at the first checkpoint: an upper bound.
  t = transfer::time_to_accuracy(c, 0.05);
  REQUIRE(t.reached);
  REQUIRE(t.at_first_point);
  REQUIRE(t.seconds == 10.0);
  REQUIRE(transfer::describe(t) == "<= 10.0 s");
  // Never.
  t = transfer::time_to_accuracy(c, 0.6);
  REQUIRE_FALSE(t.reached);
  REQUIRE(transfer::describe(t) == "never within the budget");
  REQUIRE_FALSE(transfer::time_to_accuracy({}, 0.1).reached);
  // Not monotone: the FIRST crossing counts.
  std::vector<AccuracyPoint> w = {{10, 0.2}, {20, 0.5}, {30, 0.4}, {40, 0.6}};
  t = transfer::time_to_accuracy(w, 0.45);
  REQUIRE(t.reached);
  REQUIRE(std::abs(t.seconds - (10.0 + 10.0 * 0.25 / 0.3)) < 1e-9);
  REQUIRE(transfer::describe(t) == "18.3 s");
  // Points without a time are skipped.
  std::vector<AccuracyPoint> n = {{std::nan(""), 0.9}, {10, 0.2}, {30, 0.6}};
  t = transfer::time_to_accuracy(n, 0.4);
  REQUIRE(t.reached);
  REQUIRE(std::abs(t.seconds - 20.0) < 1e-9);
}

TEST_CASE("compute_times and compare_json on hand-made curves") {
  transfer::CompareResult r;
  r.classes = 4, r.train_n = 10, r.test_n = 8, r.chance = 0.25, r.majority = 0.5;
  r.catlip.name = "CatLIP";
  r.clip.name = "CLIP";
  // CatLIP: zero-shot 0.3 -> 0.7; probe 0.5 -> 0.6. CLIP: zero-shot 0.2 -> 0.5; probe 0.4 -> 0.8.
  r.catlip.points = {{"a", 10, 50, 0.3, 0.5}, {"b", 20, 100, 0.7, 0.6}};
  r.clip.points = {{"c", 10, 60, 0.2, 0.4}, {"d", 20, 120, 0.5, 0.8}};
  transfer::compute_times(r);
  // CatLIP reaches CLIP's final zero-shot 0.5 halfway between its points.
  REQUIRE(r.zs_catlip_to_clip.reached);
  REQUIRE(std::abs(r.zs_catlip_to_clip.seconds - 75.0) < 1e-9);
  REQUIRE_FALSE(r.zs_clip_to_catlip.reached);
  REQUIRE_FALSE(r.lp_catlip_to_clip.reached);
  REQUIRE(r.lp_clip_to_catlip.reached);
  REQUIRE(std::abs(r.lp_clip_to_catlip.seconds - 90.0) < 1e-9);  // 0.4 -> 0.8 over 60..120 s; 0.6 at 90 s

  auto j = json::parse(transfer::compare_json(r), "compare_json");
  auto& m = j.at("models");
  REQUIRE(json::array(m.at("catlip").at("curve")).size() == 2);
  REQUIRE(json::array(m.at("clip").at("curve")).size() == 2);
  REQUIRE(num(m.at("clip").at("final").at("linear_probe")) == Approx(0.8));
  auto& zs = j.at("time_to_other_final").at("zero_shot");
  REQUIRE(num(zs.at("catlip_to_clip").at("seconds")) == Approx(75.0));
  REQUIRE(zs.at("clip_to_catlip").at("reached").is_boolean());
  REQUIRE_FALSE(zs.at("clip_to_catlip").at("reached").get<bool>());
  auto table = transfer::compare_table(r);
  REQUIRE(table.find("never within the budget") != std::string::npos);
  auto html = transfer::compare_html(r);
  REQUIRE(html.find("<svg") != std::string::npos);
}

TEST_CASE("CLIP zero-shot end to end on a tiny CLIP trained from scratch") {
  test::TempDir d("clip-zs");
  // Tokenizer learned from the captions.
  const std::vector<std::string> names = {"ball", "cup", "tree"};
  text::BpeWordCounts counts;
  for (auto& n : names)
    for (auto& w : text::bpe_pretokenize(text::bpe_normalize("a photo of a " + n + ".")))
      counts[w] += 10;
  auto tok = text::BpeTokenizer::learn(counts, 540);
  tok.save(d.file("bpe.txt"));
  auto info = model::read_tokenizer_info(d.file("bpe.txt"));

  model::ViTConfig v;
  v.dim = 16, v.depth = 1, v.heads = 2, v.image_size = 16, v.patch_size = 8;
  model::TextConfig t;
  t.vocab_size = tok.vocab_size(), t.context_length = 16, t.width = 16, t.depth = 1, t.heads = 2, t.embed_dim = 16;
  torch::manual_seed(0);
  model::ClipModel model(v, t);

  // Images: class c is a solid colour (one channel high) with noise.
  auto make_images = [&](int64_t per_class, uint64_t seed) {
    torch::manual_seed(seed);
    std::vector<torch::Tensor> imgs;
    std::vector<int64_t> labels;
    for (int64_t i = 0; i < per_class; ++i)
      for (int64_t c = 0; c < 3; ++c) {
        auto x = torch::randint(0, 60, {16, 16, 3}, torch::kInt64);
        x.select(2, c).add_(180);
        imgs.push_back(x.clamp(0, 255).to(torch::kUInt8));
        labels.push_back(c);
      }
    return transfer::LabeledSet{torch::stack(imgs), torch::tensor(labels, torch::kInt64), 0};
  };
  auto train_set = make_images(4, 1);
  std::vector<std::vector<int64_t>> rows;
  for (int64_t i = 0; i < train_set.size(); ++i)
    rows.push_back(tok.encode_context("a photo of a " + names[size_t(train_set.labels[i].item<int64_t>())] + ".", 16));
  auto tokens = model::pad_tokens(rows, torch::kCPU);
  // A few steps of symmetric InfoNCE (the batch holds each class 4 times:
  // same-class pairs are negatives here, which does not matter for a smoke test).
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(3e-3));
  model->train();
  for (int s = 0; s < 20; ++s) {
    auto fi = torch::nn::functional::normalize(model->encode_image(model::preprocess_images(train_set.images, torch::kCPU)),
                                               torch::nn::functional::NormalizeFuncOptions().dim(1));
    auto ft = torch::nn::functional::normalize(model->encode_text(tokens),
                                               torch::nn::functional::NormalizeFuncOptions().dim(1));
    auto logits = model->logit_scale.exp() * fi.matmul(ft.t());
    auto y = torch::arange(logits.size(0));
    auto loss = (torch::nn::functional::cross_entropy(logits, y) +
                 torch::nn::functional::cross_entropy(logits.t(), y)) / 2;
    opt.zero_grad();
    loss.backward();
    opt.step();
    const double lv = loss.item<double>();
    REQUIRE(std::isfinite(lv));
  }
  model::export_clip(d.file("export"), "model", model::named_state(*model), v, t, d.file("bpe.txt"), info.checksum, 20);

  auto m = model::load_clip(d.file("export/model.safetensors"));
  REQUIRE(m.tokenizer_path == d.file("export/tokenizer.txt"));
  auto tk = transfer::load_clip_tokenizer(m);
  REQUIRE(tk.vocab_size() == tok.vocab_size());
  eval::ClassList classes;
  classes.wnids = {"n02778669", "n03147509", "n13104059"};
  classes.names = names;
  auto prompts = transfer::clip_prompts(classes.names);
  REQUIRE(prompts[1] == "a photo of a cup.");
  auto cls = transfer::clip_text_classifier(m, tk, prompts);
  REQUIRE(cls.size(0) == 3);
  REQUIRE(cls.size(1) == 16);
  REQUIRE(torch::allclose(cls.norm(2, 1), torch::ones({3}), 1e-4, 1e-4));
  auto test_set = make_images(5, 2);
  auto scores = transfer::clip_zero_shot_scores(m, test_set.images, cls);
  REQUIRE(scores.size(0) == 15);
  REQUIRE(scores.abs().max().item<double>() <= 1.0 + 1e-4);  // cosines
  double acc = transfer::clip_zero_shot(m, tk, classes, test_set);
  REQUIRE(acc >= 0.0);
  REQUIRE(acc <= 1.0);
  INFO("zero-shot accuracy " << acc);

  // A tokenizer other than the one the weights record is refused.
  text::BpeWordCounts other_counts;
  for (auto& w : text::bpe_pretokenize(text::bpe_normalize("zebras quietly juggle xylophones")))
    other_counts[w] += 10;
  auto other = text::BpeTokenizer::learn(other_counts, 530);
  other.save(d.file("other.txt"));
  REQUIRE_THROWS(transfer::load_clip_tokenizer(m, d.file("other.txt")));
}

TEST_CASE("CLIP zero-shot: a train.siglip export loads and scores as the model that wrote it") {
  test::TempDir d("siglip-zs");
  const std::vector<std::string> names = {"ball", "cup", "tree"};
  text::BpeWordCounts counts;
  for (auto& n : names)
    for (auto& w : text::bpe_pretokenize(text::bpe_normalize("a photo of a " + n + ".")))
      counts[w] += 10;
  auto tok = text::BpeTokenizer::learn(counts, 540);
  tok.save(d.file("bpe.txt"));
  auto info = model::read_tokenizer_info(d.file("bpe.txt"));
  model::ViTConfig v;
  v.dim = 16, v.depth = 1, v.heads = 2, v.image_size = 16, v.patch_size = 8;
  model::TextConfig t;
  t.vocab_size = tok.vocab_size(), t.context_length = 16, t.width = 16, t.depth = 1, t.heads = 2, t.embed_dim = 16;
  torch::manual_seed(0);
  model::ClipModel model(v, t, 10.0, -10.0);  // SigLIP's t and b
  {
    torch::NoGradGuard g;
    model->logit_bias.fill_(-7.5);  // as if trained
  }
  model->eval();
  model::export_clip(d.file("export"), "model", model::named_state(*model), v, t, d.file("bpe.txt"), info.checksum, 3,
                     "siglip");
  REQUIRE(model::is_clip_file(d.file("export/model.safetensors")));
  auto m = model::load_clip(d.file("export/model.safetensors"));
  REQUIRE(m.objective == "siglip");
  REQUIRE(m.model->logit_bias.item<double>() == -7.5);
  REQUIRE(m.model->logit_scale.item<double>() == Approx(std::log(10.0)));
  // The zero-shot evaluator on the loaded export and on the model that wrote it.
  model::LoadedClip ref = m;
  ref.model = model;
  auto tk = transfer::load_clip_tokenizer(m);
  auto prompts = transfer::clip_prompts(names);
  auto cls = transfer::clip_text_classifier(m, tk, prompts);
  REQUIRE(torch::allclose(cls, transfer::clip_text_classifier(ref, tk, prompts), 0, 1e-6));
  auto images = torch::randint(0, 256, {6, 16, 16, 3}, torch::kInt64).to(torch::kUInt8);
  auto scores = transfer::clip_zero_shot_scores(m, images, cls);
  REQUIRE(scores.size(0) == 6);
  REQUIRE(torch::allclose(scores, transfer::clip_zero_shot_scores(ref, images, cls), 0, 1e-6));
  auto cfg = json::read_file(d.file("export/config.json"));
  REQUIRE(json::string(json::at(cfg, "loss")) == "siglip");
  REQUIRE(num(json::at(cfg, "init_logit_bias")) == -7.5);
}

TEST_CASE("catlip quickstart --compare clip: a tiny smoke run writes both curves, then every configs/quickstart_*.toml runs alone, as is") {
  test::TempDir d("qs-compare");
  // In a fresh working directory with the default --out (runs/quickstart),
  // as a user's clone would be.
  const std::string cd = "cd " + d.path() + " && ", configs = test::source_dir() + "/configs";
  auto r = test::run_cmd(cd + test::catlip_bin() + " quickstart --compare clip --train-samples 256 --val-samples 32 " +
                         "--budget-s 12 --configs " + configs + " 2>&1");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.find("CatLIP vs CLIP on ") != std::string::npos);
  REQUIRE(fs::exists(d.file("runs/quickstart/compare/compare.html")));
  auto j = json::read_file(d.file("runs/quickstart/compare/compare.json"));
  auto& m = j.at("models");
  for (const char* k : {"catlip", "clip"}) {
    auto& curve = json::array(m.at(k).at("curve"));
    // Checkpoints every budget/7 s at the quickstart's nominal speed, and
    // one at the end: fewer on a busy machine, at least that last one.
    REQUIRE(curve.size() >= 1);
    double prev = -1;
    for (auto& p : curve) {
      double s = num(p.at("seconds")), zs = num(p.at("zero_shot")),
             lp = num(p.at("linear_probe"));
      REQUIRE(s >= prev);
      prev = s;
      REQUIRE((zs >= 0 && zs <= 1));
      REQUIRE((lp >= 0 && lp <= 1));
    }
    REQUIRE(prev >= 12.0);  // the last checkpoint is at the budget
  }
  REQUIRE(j.at("time_to_other_final").count("linear_probe") == 1);

  // The README: "each step also runs alone from configs/quickstart_*.toml"
  // (their DATA, VOCAB, TOKENIZER, CHECKPOINT defaults are the quickstart's
  // runs/quickstart folders). Every config file is covered, none by name only.
  std::vector<std::string> steps;
  for (auto& e : fs::directory_iterator(configs)) {
    auto n = e.path().filename().string();
    if (n.rfind("quickstart_", 0) == 0 && e.path().extension() == ".toml") steps.push_back(n.substr(11, n.size() - 16));
  }
  std::sort(steps.begin(), steps.end());
  REQUIRE(steps == std::vector<std::string>{"bpe", "clip", "eval", "train", "vocab"});
  // Each step's main output, inside its own run directory.
  const std::map<std::string, std::string> output = {{"vocab", "vocab.tsv"},          {"bpe", "bpe.txt"},
                                                     {"train", "export/model.safetensors"}, {"clip", "export/model.safetensors"},
                                                     {"eval", "eval.json"}};
  for (auto& step : steps) {
    std::string run_dir = "runs/alone-" + step;
    auto a = test::run_cmd(cd + test::catlip_bin() + " run " + configs + "/quickstart_" + step + ".toml --run-dir " +
                           run_dir + " --progress plain 2>&1");
    INFO("configs/quickstart_" << step << ".toml alone:\n" << a.out);
    REQUIRE(a.exit_code == 0);
    REQUIRE(fs::exists(d.file(run_dir + "/summary.json")));
    if (output.count(step)) REQUIRE(fs::exists(d.file(run_dir + "/" + output.at(step))));
  }
}
