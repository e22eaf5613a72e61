// The comparison of training runs (compare.h): time-to-accuracy and the
// time-to-target table on hand-made curves, the comparison's JSON; CLIP
// zero-shot (clip_eval.h) end to end on a tiny CLIP trained here from
// scratch (and on a SigLIP export); and a smoke run of
// `catlip quickstart --compare all`.
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
#include "catlip/transfer/compare.h"
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

namespace {
transfer::ModelCurve curve(const std::string& name, const std::string& objective,
                           std::vector<transfer::CheckpointScore> points) {
  transfer::ModelCurve c;
  c.name = name;
  c.objective = objective;
  c.points = std::move(points);
  return c;
}

const transfer::TargetRow& row(const transfer::CompareResult& r, const std::string& metric, const std::string& label) {
  for (auto& x : r.targets)
    if (x.metric == metric && x.label == label) return x;
  FAIL("no target row " << metric << " / " << label);
  return r.targets.front();
}
}  // namespace

TEST_CASE("compute_targets: the time-to-target table of any number of runs on hand-made curves") {
  transfer::CompareResult r;
  r.classes = 4, r.train_n = 10, r.test_n = 8, r.chance = 0.25, r.majority = 0.5;
  // Points: {path, step, seconds, zero_shot, linear_probe, trainer CPU s}.
  // A: zero-shot 0.3 -> 0.7, probe 0.5 -> 0.6.  B: zero-shot 0.2 -> 0.5, probe 0.4 -> 0.8.
  // C: zero-shot 0.1 -> 0.2 -> 0.4 (three checkpoints), probe 0.45 flat.  D: one checkpoint.
  r.models = {curve("A", "catlip", {{"a1", 10, 50, 0.3, 0.5, 90}, {"a2", 20, 100, 0.7, 0.6, 190}}),
              curve("B", "clip", {{"b1", 10, 60, 0.2, 0.4, 100}, {"b2", 20, 120, 0.5, 0.8, 200}}),
              curve("C", "siglip", {{"c1", 5, 30, 0.1, 0.45, 50}, {"c2", 10, 60, 0.2, 0.45, 100},
                                    {"c3", 15, 90, 0.4, 0.45, 150}}),
              curve("D", "superclass", {{"d1", 30, 100, 0.36, 0.3, 180}})};
  transfer::compute_targets(r);
  // Per metric: 50% and 90% of the best final, then each run's final: 2 x (2 + 4).
  REQUIRE(r.targets.size() == 12);
  for (auto& x : r.targets) REQUIRE(x.times.size() == 4);
  REQUIRE(r.targets[0].metric == "zero_shot");
  REQUIRE(r.targets[6].metric == "linear_probe");

  // Zero-shot, best final 0.7 (A): 50% = 0.35.
  auto& half = row(r, "zero_shot", "50% of the best final");
  REQUIRE(half.target == Approx(0.35));
  REQUIRE(half.times[0].reached);  // A: 0.3 at 50 s -> 0.7 at 100 s: 0.35 at 56.25 s
  REQUIRE(half.times[0].seconds == Approx(56.25));
  REQUIRE(half.times[1].reached);  // B: 0.2 at 60 -> 0.5 at 120: 0.35 at 90 s
  REQUIRE(half.times[1].seconds == Approx(90.0));
  REQUIRE(half.times[2].reached);  // C: 0.2 at 60 -> 0.4 at 90: 0.35 at 82.5 s
  REQUIRE(half.times[2].seconds == Approx(82.5));
  REQUIRE(half.times[3].reached);  // D: its only checkpoint, 0.36 >= 0.35: an upper bound
  REQUIRE(half.times[3].at_first_point);
  REQUIRE(half.times[3].seconds == Approx(100.0));
  auto& ninety = row(r, "zero_shot", "90% of the best final");
  REQUIRE(ninety.target == Approx(0.63));
  REQUIRE(ninety.times[0].reached);
  REQUIRE(ninety.times[0].seconds == Approx(50 + 50 * (0.33 / 0.4)));
  for (int i : {1, 2, 3}) REQUIRE_FALSE(ninety.times[size_t(i)].reached);
  // Each run reaches its own final at its last checkpoint (or earlier).
  auto& b_final = row(r, "zero_shot", "B's final");
  REQUIRE(b_final.target == Approx(0.5));
  REQUIRE(b_final.times[1].seconds == Approx(120.0));
  REQUIRE(b_final.times[0].seconds == Approx(50 + 50 * (0.2 / 0.4)));  // A: 75 s
  REQUIRE_FALSE(b_final.times[2].reached);
  REQUIRE_FALSE(b_final.times[3].reached);

  // Linear probe, best final 0.8 (B): C's flat 0.45 is reached at its first checkpoint.
  auto& a_final = row(r, "linear_probe", "A's final");
  REQUIRE(a_final.target == Approx(0.6));
  REQUIRE(a_final.times[0].seconds == Approx(100.0));
  REQUIRE(a_final.times[1].seconds == Approx(90.0));  // 0.4 -> 0.8 over 60..120 s
  REQUIRE_FALSE(a_final.times[2].reached);
  auto& lhalf = row(r, "linear_probe", "50% of the best final");
  REQUIRE(lhalf.target == Approx(0.4));
  REQUIRE(lhalf.times[2].at_first_point);
  REQUIRE(lhalf.times[2].seconds == Approx(30.0));
  REQUIRE_FALSE(lhalf.times[3].reached);  // D: 0.3

  // The JSON: every run, its curve and cost, the table keyed by run name.
  r.models[0].cost.run_wall_s = 110, r.models[0].cost.run_cpu_s = 200;
  auto j = json::parse(transfer::compare_json(r), "compare_json");
  auto& models = json::array(j.at("models"));
  REQUIRE(models.size() == 4);
  REQUIRE(json::string(models[2].at("name")) == "C");
  REQUIRE(json::string(models[2].at("objective")) == "siglip");
  REQUIRE(json::array(models[2].at("curve")).size() == 3);
  REQUIRE(num(models[1].at("final").at("linear_probe")) == Approx(0.8));
  REQUIRE(num(models[0].at("cost").at("run_cpu_seconds")) == Approx(200));
  REQUIRE(num(models[0].at("cost").at("cpu_per_wall_second")) == Approx(200.0 / 110.0));
  REQUIRE(num(models[1].at("cost").at("trainer_cpu_seconds")) == Approx(200));
  REQUIRE(models[1].at("cost").at("run_cpu_seconds").is_null());  // no summary.json
  REQUIRE(num(models[1].at("cost").at("cpu_per_wall_second")) == Approx(200.0 / 120.0));  // the trainer's
  auto& targets = json::array(j.at("time_to_target"));
  REQUIRE(targets.size() == 12);
  REQUIRE(num(targets[0].at("times").at("B").at("seconds")) == Approx(90.0));
  REQUIRE_FALSE(targets[1].at("times").at("D").at("reached").get<bool>());
  REQUIRE(targets[1].at("times").at("D").at("seconds").is_null());

  // The printed table: one column per run, "—" where never.
  auto table = transfer::compare_table(r);
  INFO(table);
  REQUIRE(table.find("time to zero-shot target") != std::string::npos);
  REQUIRE(table.find("0.630 90% of the best final") != std::string::npos);
  REQUIRE(table.find("\xE2\x80\x94") != std::string::npos);
  REQUIRE(table.find("<=100.0") != std::string::npos);
  auto html = transfer::compare_html(r);
  REQUIRE(html.find("<svg") != std::string::npos);
  for (const char* n : {">A<", ">B<", ">C<", ">D<"}) REQUIRE(html.find(n) != std::string::npos);
}

TEST_CASE("compare: unequal CPU per wall second is called out") {
  transfer::CompareResult r;
  r.classes = 2, r.chance = 0.5;
  r.models = {curve("A", "catlip", {{"a", 10, 100, 0.6, 0.6, 190}}), curve("B", "clip", {{"b", 5, 100, 0.6, 0.6, 195}})};
  transfer::compute_targets(r);
  auto j = json::parse(transfer::compare_json(r), "compare_json");
  REQUIRE(json::string(j.at("cpu_warning")).empty());
  // B's graph got 1.0 CPU-s per second, A's 1.9: B ran on a busier machine.
  r.models[0].cost = {100, 190};
  r.models[1].cost = {100, 100};
  j = json::parse(transfer::compare_json(r), "compare_json");
  const std::string w = json::string(j.at("cpu_warning"));
  REQUIRE(w.find("B got 1.00 CPU-s per wall second, A 1.90") != std::string::npos);
  REQUIRE(transfer::compare_table(r).find("unequal CPU") != std::string::npos);
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

TEST_CASE("catlip quickstart --compare all: a tiny smoke run writes the four curves and what each run got, then every configs/quickstart_*.toml runs alone, as is") {
  test::TempDir d("qs-compare");
  // In a fresh working directory with the default --out (runs/quickstart),
  // as a user's clone would be. --compare clip is the same code with two runs.
  const std::string cd = "cd " + d.path() + " && ", configs = test::source_dir() + "/configs";
  auto bad = test::run_cmd(cd + test::catlip_bin() + " quickstart --compare vit 2>&1");
  REQUIRE(bad.exit_code == 2);
  REQUIRE(bad.out.find("'clip'") != std::string::npos);
  const double budget = 6;
  auto r = test::run_cmd(cd + test::catlip_bin() + " quickstart --compare all --train-samples 256 --val-samples 32 " +
                         "--budget-s 6 --configs " + configs + " 2>&1");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.find("4 runs on 39 classes") != std::string::npos);
  REQUIRE(r.out.find("time to linear probe target") != std::string::npos);
  REQUIRE(fs::exists(d.file("runs/quickstart/compare/compare.html")));
  auto j = json::read_file(d.file("runs/quickstart/compare/compare.json"));
  auto& models = json::array(j.at("models"));
  REQUIRE(models.size() == 4);
  const std::vector<std::pair<std::string, std::string>> expect = {
      {"CatLIP", "catlip"}, {"CLIP", "clip"}, {"SigLIP", "siglip"}, {"SuperClass", "superclass"}};
  for (size_t i = 0; i < 4; ++i) {
    auto& m = models[i];
    INFO(expect[i].first);
    REQUIRE(json::string(m.at("name")) == expect[i].first);
    REQUIRE(json::string(m.at("objective")) == expect[i].second);
    auto& curve = json::array(m.at("curve"));
    // Checkpoints every budget/8 s at the quickstart's nominal speed, and
    // one at the end: fewer on a busy machine, at least that last one.
    REQUIRE(curve.size() >= 1);
    double prev = -1;
    for (auto& p : curve) {
      double s = num(p.at("seconds")), zs = num(p.at("zero_shot")), lp = num(p.at("linear_probe"));
      REQUIRE(s >= prev);
      prev = s;
      REQUIRE((zs >= 0 && zs <= 1));
      REQUIRE((lp >= 0 && lp <= 1));
    }
    REQUIRE(prev >= budget);  // the last checkpoint is at the budget
    // What the run got: the trainer's CPU and the whole graph's (summary.json).
    auto& cost = m.at("cost");
    REQUIRE(num(cost.at("trainer_cpu_seconds")) > 0);
    REQUIRE(num(cost.at("run_cpu_seconds")) > num(cost.at("trainer_cpu_seconds")));  // + source, decode, ...
    REQUIRE(num(cost.at("run_wall_seconds")) >= budget);
    REQUIRE(num(cost.at("cpu_per_wall_second")) > 0);
  }
  // Per metric: 2 fractions of the best final + the 4 finals, a time (or
  // not) for each run.
  auto& targets = json::array(j.at("time_to_target"));
  REQUIRE(targets.size() == 12);
  for (auto& t : targets) REQUIRE(json::object(t.at("times")).size() == 4);

  // The README: "each step also runs alone from configs/quickstart_*.toml"
  // (their DATA, VOCAB, TOKENIZER, CHECKPOINT defaults are the quickstart's
  // runs/quickstart folders). Every config file is covered, none by name only.
  std::vector<std::string> steps;
  for (auto& e : fs::directory_iterator(configs)) {
    auto n = e.path().filename().string();
    if (n.rfind("quickstart_", 0) == 0 && e.path().extension() == ".toml") steps.push_back(n.substr(11, n.size() - 16));
  }
  std::sort(steps.begin(), steps.end());
  REQUIRE(steps == std::vector<std::string>{"bpe", "clip", "eval", "siglip", "superclass", "train", "vocab"});
  // Each step's main output, inside its own run directory.
  const std::map<std::string, std::string> output = {
      {"vocab", "vocab.tsv"},
      {"bpe", "bpe.txt"},
      {"train", "export/model.safetensors"},
      {"clip", "export/model.safetensors"},
      {"siglip", "export/model.safetensors"},
      {"superclass", "export/model.safetensors"},
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
