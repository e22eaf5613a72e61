// The training loop end to end on tiny models: overfitting, checkpoints and
// resume (in process and after SIGKILL), corrupt checkpoints, export, stage.

#include <torch/torch.h>
// LibTorch pulls in glog, whose CHECK would silently replace Catch's.
#undef CHECK
#include <catch2/catch.hpp>

#include <limits>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "catlip/local.h"
#include "catlip/model/checkpoint_file.h"
#include "catlip/model/model_io.h"
#include "catlip/train/train_stage.h"
#include "catlip/train/trainer.h"
#include "test_util.h"

extern char** environ;

using namespace catlip;
using namespace catlip::model;
using namespace catlip::train;
namespace fs = std::filesystem;

namespace {

constexpr int kClasses = 10;

std::string make_vocab(const std::string& dir) {
  std::string s = "index\twnid\tlemma\tcount\tgloss\n";
  for (int i = 0; i < kClasses; ++i)
    s += std::to_string(i) + "\tn0" + std::to_string(1000 + i) + "\tthing" + std::to_string(i) + "\t1\tg\n";
  std::string p = dir + "/vocab.tsv";
  test::write_file(p, s);
  return p;
}

struct Item {
  Tensor image;
  IntList labels;
  Origin origin;
};

std::vector<Item> make_items(int n, int size = 32, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::vector<Item> out;
  for (int i = 0; i < n; ++i) {
    Item it;
    it.image.dtype = DType::U8;
    it.image.shape = {size, size, 3};
    it.image.data.resize(size_t(size * size * 3));
    for (auto& c : it.image.data) c = char(rng() & 0xFF);
    std::set<int64_t> ls;
    int k = 1 + int(rng() % 3);
    while (int(ls.size()) < k) ls.insert(int64_t(rng() % kClasses));
    it.labels.assign(ls.begin(), ls.end());
    it.origin = Origin{"shard-000.tar", 0, i, 0};
    out.push_back(std::move(it));
  }
  return out;
}

TrainOptions tiny_options(const std::string& dir) {
  TrainOptions o;
  o.vocab_path = make_vocab(dir);
  o.model.dim = 64;
  o.model.depth = 2;
  o.model.heads = 2;
  o.model.image_size = 32;
  o.model.patch_size = 8;
  o.batch_size = 4;
  o.lr = 1e-3;
  o.warmup_init_lr = 1e-4;
  o.warmup_steps = 2;
  o.min_lr = 1e-5;
  o.steps = 6;
  o.device = "cpu";
  o.threads = 2;
  o.log_every = 0;
  o.checkpoint_every = 3;
  o.keep_checkpoints = 0;
  o.ema_decay = 0.9;
  o.run_dir = dir;
  return o;
}

void feed(Trainer& t, const std::vector<Item>& items, size_t begin = 0, size_t end = SIZE_MAX) {
  for (size_t i = begin; i < std::min(end, items.size()); ++i)
    t.add(items[i].image, items[i].labels, items[i].origin, "s" + std::to_string(i));
}

// Exact comparison of two weight sets.
void require_same(const std::vector<std::pair<std::string, Tensor>>& a,
                  const std::vector<std::pair<std::string, Tensor>>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    REQUIRE(a[i].first == b[i].first);
    CHECK(a[i].second == b[i].second);
  }
}

bool any_log_contains(const LocalContext& ctx, const std::string& a, const std::string& b = "") {
  for (auto& l : ctx.logs())
    if (l.find(a) != std::string::npos && (b.empty() || l.find(b) != std::string::npos)) return true;
  return false;
}

}  // namespace

TEST_CASE("loss decreases and the model overfits a small fixed batch") {
  test::TempDir dir("overfit");
  auto o = tiny_options(dir.path());
  o.batch_size = 8;
  o.steps = 80;
  o.warmup_steps = 0;
  o.lr = 2e-3;
  o.min_lr = 2e-3;
  o.weight_decay = 0.0;
  o.ema_decay = 0.0;
  o.checkpoint_every = 0;
  LocalContext ctx;
  auto items = make_items(8);
  double first = 0;
  {
    Trainer t(o, ctx);
    for (int s = 0; s < 80; ++s) {
      // Pass s is epoch s: the same origin twice within an epoch would be a
      // duplicate, skipped (train.duplicate_skipped).
      for (auto& it : items) it.origin.epoch = s;
      feed(t, items);
      if (s == 0) first = t.last_metrics().loss;
    }
    CHECK(t.step() == 80);
    CHECK(t.done());
    t.finish();
  }
  // The 8 image/label pairs are memorised: loss far below the start and
  // every label predicted (probability > 0.5) with no false positives.
  auto m = load_model(dir.path() + "/export/model.safetensors");
  CHECK(m.step == 80);
  auto batch = torch::empty({8, 32, 32, 3}, torch::kUInt8);
  for (int i = 0; i < 8; ++i) std::memcpy(batch[i].data_ptr(), items[size_t(i)].image.data.data(), 32 * 32 * 3);
  torch::NoGradGuard g;
  auto probs = torch::sigmoid(m.model->forward(preprocess_images(batch, m.device)));
  auto target = torch::zeros({8, kClasses});
  for (int i = 0; i < 8; ++i)
    for (auto l : items[size_t(i)].labels) target[i][l] = 1.0;
  double final_loss = torch::binary_cross_entropy(probs, target, {}, at::Reduction::Sum).item<double>() / 8;
  INFO("first loss " << first << ", final " << final_loss);
  CHECK(first > 4.0);  // ~ 10 classes * ln 2 at initialisation
  CHECK(final_loss < 0.25 * first);
  CHECK(torch::equal(probs > 0.5, target > 0.5));
  // Metrics: one JSON line per step with the fields the dashboard reads.
  std::ifstream mf(dir.path() + "/train_metrics.jsonl");
  std::string line, last;
  int lines = 0;
  while (std::getline(mf, line)) ++lines, last = line;
  CHECK(lines == 80);
  for (auto key : {"\"step\":80", "\"loss\":", "\"lr\":", "\"images_per_s\":", "\"step_s\":", "\"input_wait_frac\":"})
    CHECK(last.find(key) != std::string::npos);
  {
    auto rec = catlip::json::parse(last, "train_metrics.jsonl");
    CHECK(catlip::json::integer(rec.at("step")) == 80);
    CHECK(catlip::json::number(rec.at("loss")) > 0);
    for (auto key : {"time", "lr", "grad_norm", "step_s", "window_s", "images_per_s", "input_wait_frac_total"})
      CHECK(rec.at(key).is_number());
  }
  auto gauges = ctx.gauges();
  CHECK(gauges.count("train.input_wait_frac"));
  CHECK(gauges.at("train.step") == 80);
}

TEST_CASE("checkpoint, stop and resume reach the same weights as an uninterrupted run") {
  test::TempDir a("resA"), b("resB");
  auto items = make_items(24);
  std::vector<std::pair<std::string, Tensor>> want, want_ema;
  {
    LocalContext ctx;
    Trainer t(tiny_options(a.path()), ctx);
    feed(t, items);
    REQUIRE(t.step() == 6);
    t.finish();
    want = t.weights();
    want_ema = t.weights(true);
  }
  {
    // "Killed" after step 4: the last checkpoint is step 3, step 4 is lost.
    LocalContext ctx;
    Trainer t(tiny_options(b.path()), ctx);
    feed(t, items, 0, 16);
    REQUIRE(t.step() == 4);
  }
  REQUIRE(list_checkpoints(b.path() + "/checkpoints").size() == 1);
  {
    auto o = tiny_options(b.path());
    o.resume = true;
    LocalContext ctx;
    Trainer t(o, ctx);
    CHECK(t.step() == 3);
    const ConsumedSet* cs = t.data_position().find(Origin{"shard-000.tar", 0, 0, 0});
    REQUIRE(cs);
    CHECK(cs->hwm() == 12);  // indices 0-11: the 3 steps of 4 before the checkpoint
    CHECK(cs->exceptions().empty());
    feed(t, items);  // the source restarts from the beginning
    CHECK(ctx.counter("train.resume_skipped_consumed") == 12);
    CHECK(t.step() == 6);
    t.finish();
    require_same(t.weights(), want);
    require_same(t.weights(true), want_ema);
    CHECK(any_log_contains(ctx, "resumed from", "step 3"));
  }
}

TEST_CASE("background checkpoints hold exactly what a write in the step holds") {
  // async_checkpoint (the default) snapshots the state and writes while
  // training goes on: every checkpoint's tensors equal those of the same run
  // writing synchronously, though training moved on during the write.
  test::TempDir a("ckAsync"), b("ckSync");
  auto items = make_items(24);
  for (bool async : {true, false}) {
    auto o = tiny_options(async ? a.path() : b.path());
    o.async_checkpoint = async;
    LocalContext ctx;
    Trainer t(o, ctx);
    feed(t, items);
    t.finish();
    CHECK(ctx.counter("train.checkpoints") == 2);
    CHECK(any_log_contains(ctx, "written in", "in the background") == async);
  }
  auto ca = list_checkpoints(a.path() + "/checkpoints"), cb = list_checkpoints(b.path() + "/checkpoints");
  REQUIRE(ca.size() == 2);
  REQUIRE(cb.size() == 2);
  for (size_t i = 0; i < ca.size(); ++i) {
    auto fa = read_checkpoint_file(ca[i]), fb = read_checkpoint_file(cb[i]);
    REQUIRE(fa.ok());
    REQUIRE(fb.ok());
    CHECK(fa->metadata.at("catlip.step") == fb->metadata.at("catlip.step"));
    REQUIRE(fa->tensors.size() == fb->tensors.size());
    for (auto& [name, t] : fa->tensors) {
      INFO(ca[i] << ": " << name);
      CHECK(t == fb->tensors.at(name));
    }
  }
}

TEST_CASE("a truncated or corrupt checkpoint is skipped with a message") {
  test::TempDir a("trunc");
  auto items = make_items(24);
  std::vector<std::pair<std::string, Tensor>> want;
  {
    LocalContext ctx;
    Trainer t(tiny_options(a.path()), ctx);
    feed(t, items);
    t.finish();
    want = t.weights();
  }
  auto ck = list_checkpoints(a.path() + "/checkpoints");
  REQUIRE(ck.size() == 2);  // steps 6 and 3
  std::string newest = ck[0];
  std::string bytes = test::read_file(newest);
  test::write_file(newest, bytes.substr(0, bytes.size() - 1000));  // a partial write

  auto o = tiny_options(a.path());
  o.resume = true;
  LocalContext ctx;
  Trainer t(o, ctx);
  CHECK(t.step() == 3);
  CHECK(ctx.counter("skipped.bad_checkpoint") == 1);
  CHECK(any_log_contains(ctx, newest, "truncated"));
  feed(t, items);
  CHECK(t.step() == 6);
  require_same(t.weights(), want);
}

TEST_CASE("resume refuses a checkpoint made with another vocabulary") {
  test::TempDir a("vocab");
  auto items = make_items(12);
  {
    LocalContext ctx;
    Trainer t(tiny_options(a.path()), ctx);
    feed(t, items);
    t.save_checkpoint();
  }
  auto o = tiny_options(a.path());
  o.resume = true;
  std::ofstream(o.vocab_path, std::ios::app) << "10\tn09999\textra\t1\tx\n";
  LocalContext ctx;
  CHECK_THROWS_WITH(Trainer(o, ctx), Catch::Contains("vocabulary"));
}

// Child half of the SIGKILL test: trains 4 steps with a checkpoint after each,
// then says so and waits to be killed.
TEST_CASE("resume child", "[.child]") {
  const char* d = std::getenv("CATLIP_TRAIN_CHILD_DIR");
  REQUIRE(d);
  auto o = tiny_options(d);
  o.checkpoint_every = 1;
  o.keep_checkpoints = 2;
  LocalContext ctx;
  Trainer t(o, ctx);
  feed(t, make_items(24), 0, 16);
  test::write_file(std::string(d) + "/ready", "1");
  std::this_thread::sleep_for(std::chrono::seconds(100));
}

TEST_CASE("a run killed with SIGKILL resumes to the same weights") {
  test::TempDir a("killA"), b("killB");
  auto items = make_items(24);
  std::vector<std::pair<std::string, Tensor>> want;
  {
    LocalContext ctx;
    Trainer t(tiny_options(a.path()), ctx);
    feed(t, items);
    want = t.weights();
  }
  std::string env = "CATLIP_TRAIN_CHILD_DIR=" + b.path();
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e) envp.push_back(*e);
  envp.push_back(env.data());
  envp.push_back(nullptr);
  std::string exe = fs::read_symlink("/proc/self/exe").string(), tag = "[.child]";
  char* argv[] = {exe.data(), tag.data(), nullptr};
  pid_t pid = -1;
  REQUIRE(posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv, envp.data()) == 0);
  bool ready = false;
  for (int i = 0; i < 1000 && !ready; ++i) {
    ready = fs::exists(b.path() + "/ready");
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(ready);
  CHECK(WIFSIGNALED(status));
  CHECK(list_checkpoints(b.path() + "/checkpoints").size() == 2);  // keep_checkpoints

  auto o = tiny_options(b.path());
  o.resume = true;
  LocalContext ctx;
  Trainer t(o, ctx);
  CHECK(t.step() == 4);
  feed(t, items);
  CHECK(t.step() == 6);
  require_same(t.weights(), want);
}

TEST_CASE("export: timm names, loadable by PyTorch with identical logits") {
  test::TempDir dir("export");
  auto o = tiny_options(dir.path());
  o.checkpoint_every = 0;
  o.steps = 2;
  LocalContext ctx;
  {
    Trainer t(o, ctx);
    feed(t, make_items(8));
    t.finish();
  }
  std::string exp = dir.path() + "/export";
  REQUIRE(fs::exists(exp + "/model.safetensors"));
  REQUIRE(fs::exists(exp + "/model_ema.safetensors"));
  CHECK(test::read_file(exp + "/vocab.tsv") == test::read_file(o.vocab_path));
  // config.json (timm's names) reads back with the model's configuration.
  auto cfg = catlip::json::read_file(exp + "/config.json");
  CHECK(cfg.at("architecture") == "vit");
  CHECK(cfg.at("num_classes") == 10);
  CHECK(cfg.at("embed_dim") == 64);
  CHECK(cfg.at("depth") == 2);
  CHECK(cfg.at("num_heads") == 2);
  CHECK(cfg.at("img_size") == 32);
  CHECK(cfg.at("patch_size") == 8);
  CHECK(cfg.at("class_token") == true);
  CHECK(cfg.at("norm_eps").get<double>() == Approx(1e-6));

  // C++ logits on a fixed input.
  auto m = load_model(exp + "/model.safetensors");
  auto x = (torch::arange(2 * 3 * 32 * 32) % 251).to(torch::kFloat32).div(250.0).view({2, 3, 32, 32});
  torch::NoGradGuard g;
  auto logits = m.model->forward(x);

  // PyTorch: parse the header ourselves, build a timm-named ViT and load it
  // strictly (every name and shape must match), then run the same input.
  std::string py = dir.file("check.py");
  test::write_file(py, std::string("import sys, json, torch\n"
                                   "sys.path.insert(0, '") +
                           test::source_dir() + "/tools/torch')\n" +
                           R"PY(import bench_train as bt
sd, meta = bt.load_safetensors(sys.argv[1])
m = bt.ViT(dim=64, depth=2, heads=2, mlp_ratio=4, image_size=32, patch_size=8, num_classes=10)
expected = {k: list(v.shape) for k, v in m.state_dict().items()}
got = {k: list(v.shape) for k, v in sd.items()}
assert got == expected, (sorted(set(got) ^ set(expected)), got, expected)
m.load_state_dict(sd, strict=True)
m.eval()
x = (torch.arange(2*3*32*32) % 251).float().div(250.0).view(2, 3, 32, 32)
with torch.no_grad():
    print(json.dumps({"logits": m(x).flatten().tolist(), "meta": meta}))
)PY");
  auto r = test::run_cmd(test::venv_python() + " " + py + " " + exp + "/model.safetensors");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  auto k = r.out.find("[");
  REQUIRE(k != std::string::npos);
  std::vector<float> pyl;
  std::stringstream ss(r.out.substr(k + 1, r.out.find("]") - k - 1));
  for (std::string v; std::getline(ss, v, ',');) pyl.push_back(std::stof(v));
  auto pyt = torch::tensor(pyl).view({2, 10});
  CHECK(torch::allclose(logits, pyt, 1e-4, 1e-4));
  CHECK(r.out.find("\"catlip.model\"") != std::string::npos);
}

TEST_CASE("train.catlip stage: schema, bad input counted, metrics and outputs") {
  test::TempDir dir("stage");
  auto schema = TrainStage::schema();
  CHECK(schema.type == "train.catlip");
  CHECK(schema.kind == StageKind::Sink);
  for (auto& p : schema.params) {
    INFO(p.name);
    CHECK_FALSE(p.doc.empty());
  }
  CHECK_THROWS(resolve_params(schema, {}));  // vocab is required
  std::map<std::string, ParamValue> given = {
      {"vocab", make_vocab(dir.path())}, {"dim", int64_t{32}},     {"depth", int64_t{1}},
      {"heads", int64_t{2}},             {"image_size", int64_t{32}}, {"patch_size", int64_t{8}},
      {"batch_size", int64_t{4}},        {"steps", int64_t{3}},      {"warmup_steps", int64_t{1}},
      {"threads", int64_t{2}},           {"device", std::string("cpu")}, {"checkpoint_every", int64_t{2}}};
  auto params = resolve_params(schema, given);
  LocalContext ctx("trainer", "train.catlip", 0, 1, dir.path());
  TrainStage stage;
  bind_and_configure(stage, schema, params, ctx);
  std::vector<Sample> in;
  auto items = make_items(20, 40);  // 40x40: resized to 32x32
  for (size_t i = 0; i < items.size(); ++i) {
    Sample s;
    s.key = "k" + std::to_string(i);
    s.origin = items[i].origin;
    s.set("image", items[i].image);
    s.set_ints("labels", items[i].labels);
    in.push_back(std::move(s));
  }
  in[1].erase("labels");
  in[2].erase("image");
  in[3].set_ints("labels", {1, 99});  // 99 is outside the vocabulary
  Tensor gray;
  gray.shape = {32, 32, 1};
  gray.data.resize(32 * 32);
  in[4].set("image", gray);
  CollectEmitter out;
  run_transform(stage, std::move(in), out);
  stage.close();
  CHECK(ctx.counter("skipped.no_labels") == 1);
  CHECK(ctx.counter("skipped.no_image") == 1);
  CHECK(ctx.counter("skipped.label_out_of_range") == 1);
  CHECK(ctx.counter("skipped.bad_image") == 1);
  CHECK(ctx.counter("train.steps") == 3);
  CHECK(ctx.counter("train.resized") == 12);
  CHECK(ctx.counter("train.ignored_after_last_step") == 5);  // 20 - 3 bad - 12 trained
  auto gauges = ctx.gauges();
  CHECK(gauges.count("train.input_wait_frac"));
  CHECK(gauges.at("train.input_wait_frac") >= 0.0);
  CHECK(gauges.at("train.input_wait_frac") <= 1.0);
  CHECK(fs::exists(dir.path() + "/export/model.safetensors"));
  CHECK(list_checkpoints(dir.path() + "/checkpoints").size() == 2);  // step 2 and final 3
  CHECK(out.samples.empty());
}

TEST_CASE("train.catlip measures the time it waits for input") {
  test::TempDir dir("wait");
  std::map<std::string, ParamValue> given = {
      {"vocab", make_vocab(dir.path())}, {"dim", int64_t{32}},     {"depth", int64_t{1}},
      {"heads", int64_t{2}},             {"image_size", int64_t{32}}, {"patch_size", int64_t{8}},
      {"batch_size", int64_t{2}},        {"steps", int64_t{2}},      {"warmup_steps", int64_t{0}},
      {"threads", int64_t{1}},           {"device", std::string("cpu")}, {"export", false}};
  LocalContext ctx("trainer", "train.catlip", 0, 1, dir.path());
  TrainStage stage;
  configure_stage(stage, TrainStage::schema(), given, ctx);
  CollectEmitter out;
  auto items = make_items(4);
  for (auto& it : items) {
    Sample s;
    s.origin = it.origin;
    s.set("image", it.image);
    s.set_ints("labels", it.labels);
    // A slow upstream: the trainer sits idle between samples.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stage.process(std::move(s), out);
  }
  stage.flush(out);
  auto w = stage.trainer()->last_metrics();
  INFO("window " << w.window_s << " s, step " << w.step_s << " s, wait " << w.input_wait_frac);
  CHECK(w.step == 2);
  CHECK(w.input_wait_frac > 0.0);
  CHECK(w.input_wait_frac <= 1.0);
  // The window from step 1 to step 2 holds two 300 ms waits; waiting is the
  // larger part unless a tiny step took longer than 600 ms.
  CHECK(w.input_wait_frac * w.window_s >= 0.55);
  CHECK(ctx.gauges().at("train.input_wait_frac") == Approx(w.input_wait_frac));
  stage.close();
}

TEST_CASE("train.catlip: input that ends before the first optimizer step fails the stage") {
  test::TempDir dir("nostep");
  std::map<std::string, ParamValue> given = {
      {"vocab", make_vocab(dir.path())}, {"dim", int64_t{32}},     {"depth", int64_t{1}},
      {"heads", int64_t{2}},             {"image_size", int64_t{32}}, {"patch_size", int64_t{8}},
      {"batch_size", int64_t{4}},        {"steps", int64_t{0}},      {"warmup_steps", int64_t{0}},
      {"threads", int64_t{1}},           {"device", std::string("cpu")}, {"export", false}};
  auto params = resolve_params(TrainStage::schema(), given);
  CollectEmitter out;
  SECTION("no input at all") {
    LocalContext ctx("trainer", "train.catlip", 0, 1, dir.path());
    TrainStage stage;
    bind_and_configure(stage, TrainStage::schema(), params, ctx);
    CHECK_THROWS_WITH(stage.flush(out), Catch::Contains("train: input ended before the first step: no training data "
                                                        "reached the trainer (0 item(s) received"));
    stage.close();
  }
  SECTION("a zero or non-finite std is refused at configure") {
    LocalContext ctx("trainer", "train.catlip", 0, 1, dir.path());
    for (double bad : {0.0, -1.0, std::numeric_limits<double>::infinity()}) {
      auto g = given;
      g["mean"] = std::vector<double>{0.5, 0.5, 0.5};
      g["std"] = std::vector<double>{0.5, bad, 0.5};
      TrainStage stage;
      CHECK_THROWS_WITH(configure_stage(stage, TrainStage::schema(), g, ctx),
                        Catch::Contains("std values must be finite and > 0"));
    }
  }
  SECTION("fewer samples than one batch") {
    LocalContext ctx("trainer", "train.catlip", 0, 1, dir.path());
    TrainStage stage;
    bind_and_configure(stage, TrainStage::schema(), params, ctx);
    for (auto& it : make_items(3)) {
      Sample s;
      s.origin = it.origin;
      s.set("image", it.image);
      s.set_ints("labels", it.labels);
      stage.process(std::move(s), out);
    }
    CHECK_THROWS_WITH(stage.flush(out), Catch::Contains("input ended before the first step") &&
                                            Catch::Contains("3 item(s) received"));
    CHECK_FALSE(fs::exists(dir.path() + "/export/model.safetensors"));
    stage.close();
  }
}
