// catlip quickstart: the whole CatLIP method end to end on embedded synthetic
// data, in one command (tools/quickstart.sh runs setup.sh, then this):
//   1. synthetic train + held-out shards   (catlip shards synth)
//   2. vocabulary graph                    (configs/quickstart_vocab.toml)
//   3. training graph                      (configs/quickstart_train.toml)
//   4. evaluation graph                    (configs/quickstart_eval.toml)
//   5. Transfer Init                       (catlip transfer, in catlip-torch)
//   6. HTML report                         (catlip report)
// and prints the report path and the headline numbers. Each step is also
// runnable alone from configs/ (see the comments at the top of each file).
//
// `--compare clip` instead trains CatLIP and CLIP on the same data for the
// same wall-clock budget and compares them along it; `--compare all` trains
// the four objectives (CatLIP, CLIP, SigLIP, SuperClass) that way:
//   1. synthetic train + held-out shards
//   2. vocabulary graph + BPE tokenizer graph (configs/quickstart_bpe.toml)
//   3.. one training graph per objective, one after the other, each for the
//      same train.time_budget_s (quickstart_train.toml, quickstart_clip.toml,
//      quickstart_siglip.toml, quickstart_superclass.toml: the same image
//      tower, batch, threads and lr schedule)
//   last: every checkpoint of every run: zero-shot + linear probe against
//      training time (catlip compare, in catlip-torch) -> compare/compare.{json,html}
// Layout: data/, vocab/, bpe/, train/, clip/, siglip/, superclass/, compare/.
//
// Layout of OUT: data/ (shards, vocabularies, classes.txt), vocab/, train/,
// eval/, transfer/ (one run dir per step), report.html.
//
// Two vocabulary files: text.vocab_merge writes its TSV with the header
// "#index\twnid..." (text.labels reads that), while the trainer's loader
// requires the header "index\twnid..." exactly; until the two agree, the
// quickstart writes vocab_model.tsv (same rows, trainer header) for the model.
#include <algorithm>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "catlip/eval/report.h"
#include "catlip/graph.h"
#include "catlip/json.h"
#include "catlip/plugin_loader.h"
#include "catlip/supervisor.h"
#include "catlip/synth/categories.h"
#include "catlip/synth/generator.h"
#include "catlip/validate.h"
#include "cli.h"
#include "synth_writer.h"

using namespace catlip;
using namespace catlip::cli;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string exe_dir() { return fs::read_symlink("/proc/self/exe").parent_path().string(); }

std::string find_configs(const std::string& given) {
  if (!given.empty()) return given;
  std::vector<fs::path> cands = {fs::current_path() / "configs", fs::path(exe_dir()) / "../../configs",
                                 fs::path(exe_dir()) / "../configs"};
  for (auto& c : cands)
    if (fs::is_regular_file(c / "quickstart_train.toml")) return fs::weakly_canonical(c).string();
  throw std::runtime_error("cannot find configs/quickstart_train.toml (run from the repository root or pass --configs DIR)");
}

std::string list_toml(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::string("\"") + v[i] + "\"";
  return s + "]";
}

// Loads, validates and runs one graph; throws on failure.
void run_config(const std::string& file, const std::vector<std::string>& sets, const std::string& run_dir) {
  GraphSpec g;
  std::vector<Diagnostic> diags;
  LoadOptions lo;
  lo.sets = sets;
  bool ok = load_graph(file, lo, g, diags).ok();
  PluginLoader loader;
  std::map<std::string, Params> params;
  if (ok) ok = validate_graph(g, loader, diags, &params).ok();
  for (auto& d : diags) std::cerr << d.str() << "\n";
  if (!ok || !diags.empty()) throw std::runtime_error("invalid graph " + file);
  RunOptions opt;
  opt.run_dir = run_dir;
  opt.progress = 0;
  opt.plain_interval_s = 15;
  int rc = run_graph(g, params, opt);
  if (rc != 0) throw std::runtime_error("graph " + file + " failed (exit " + std::to_string(rc) + "); logs in " + run_dir);
}

int run_process(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    execv(argv[0], argv.data());
    std::perror(argv[0]);
    _exit(127);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// text.vocab_merge's TSV with the header the trainer's loader expects.
void write_model_vocab(const std::string& in, const std::string& out) {
  std::ifstream f(in);
  if (!f) throw std::runtime_error("vocabulary " + in + " was not written");
  std::ofstream o(out);
  std::string line;
  int rows = 0;
  o << "index\twnid\tlemma\tcount\tgloss\n";
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("index\t", 0) == 0) continue;
    o << line << "\n";
    ++rows;
  }
  if (rows == 0) throw std::runtime_error("vocabulary " + in + " is empty");
}

std::string fmt(double v, int p = 3) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", p, v);
  return b;
}

// Step 1 of both modes: synthetic train and held-out shards (or the ones in
// `data` with --reuse-data) and data/classes.txt.
void prepare_data(const Args& a, const std::string& data, long long n_train, long long n_val, const std::string& step,
                  std::vector<std::string>& train_shards, std::vector<std::string>& val_shards) {
  auto t = Clock::now();
  if (a.has("reuse-data") && fs::exists(data + "/train-000000.tar") && fs::exists(data + "/val-000000.tar")) {
    for (auto& e : fs::directory_iterator(data)) {
      auto n = e.path().filename().string();
      if (n.rfind("train-", 0) == 0 && e.path().extension() == ".tar") train_shards.push_back(e.path().string());
      if (n.rfind("val-", 0) == 0 && e.path().extension() == ".tar") val_shards.push_back(e.path().string());
    }
    std::sort(train_shards.begin(), train_shards.end());
    std::sort(val_shards.begin(), val_shards.end());
    std::cout << step << " reusing " << train_shards.size() << " train and " << val_shards.size() << " held-out shards\n";
  } else {
    synth::SynthOptions tr, va;
    tr.size = va.size = 64;
    // An easier setting than the full-variety default (up to 4 objects,
    // from 10% of the side, full clutter, any colour): at 64x64 those are
    // too small, busy and colour-blind for a tiny model to learn in the few
    // CPU minutes the quickstart has. Same as `catlip shards synth
    // --max-objects 3 --min-object 0.2 --clutter 0.3 --typical-colors`.
    tr.max_objects = va.max_objects = 3;
    tr.min_object = va.min_object = 0.2;
    tr.clutter = va.clutter = 0.3f;
    tr.typical_colors = va.typical_colors = true;
    tr.seed = va.seed = 0;
    va.val = true;
    // The two splits are independent: generate them in parallel.
    auto fut = std::async(std::launch::async, [&] {
      return write_synth_shards(data + "/val", n_val, (n_val + 1) / 2, va);
    });
    auto r = write_synth_shards(data + "/train", n_train, (n_train + 7) / 8, tr);
    train_shards = r.shards;
    val_shards = fut.get().shards;
    std::cout << step << " wrote " << n_train << " training samples (" << train_shards.size() << " shards) and " << n_val
              << " held-out samples (" << val_shards.size() << " shards) in " << fmt(since(t), 1) << " s\n";
  }
  // The class list of the synthetic set: .cls = index into it.
  {
    std::ofstream c(data + "/classes.txt");
    c << "# synthetic categories: line i = class i (.cls); wnid then name\n";
    for (auto& k : synth::kCategories) c << k.wnid << "\t" << k.name << "\n";
  }
}

// --compare all's default training seconds per objective: the whole run
// from a fresh clone (setup, build, data, four trainings, evaluation) fits
// in 25 minutes on a 2-core machine (README, "Four objectives").
constexpr int kBudgetAll = 120;

const char* kHelp =
    "usage: catlip quickstart [--out DIR] [options]\n\n"
    "Runs CatLIP end to end on synthetic data: generates train and held-out shards, builds\n"
    "the synset vocabulary, trains a tiny hybrid ViT (64x64, CNN stem, 8x8 tokens) with binary cross-entropy\n"
    "on caption synsets, evaluates it against the drawn objects, runs Transfer Init\n"
    "(zero-shot and synsets- vs random-init fine-tuning) and writes an HTML report.\n"
    "Prints the report path and the held-out mAP vs the label-frequency prior.\n\n"
    "  --out DIR             output directory (default runs/quickstart)\n"
    "  --train-samples N     synthetic training samples (default 48000)\n"
    "  --val-samples N       held-out samples (default 1000)\n"
    "  --epochs N            training epochs (default 1)\n"
    "  --batch-size N        training batch (default 32)\n"
    "  --decode-replicas N   image.decode processes (default 1)\n"
    "  --transfer-steps N    Transfer Init fine-tuning steps (default 30)\n"
    "  --configs DIR         where quickstart_*.toml live (default: ./configs or beside the build)\n"
    "  --reuse-data          keep existing shards in OUT/data (skip generation)\n"
    "  --set S.P=V           extra override for the training graph (repeatable)\n"
    "  --no-transfer         skip Transfer Init\n"
    "  --compare clip|all    instead: train CatLIP and CLIP (clip), or CatLIP, CLIP, SigLIP and\n"
    "                        SuperClass (all), with the same image tower, data, batch and lr\n"
    "                        schedule, for the same wall-clock budget each, one after the\n"
    "                        other, then evaluate every checkpoint of each (zero-shot and\n"
    "                        linear probe) against training time: OUT/compare/compare.html,\n"
    "                        compare.json and a table with the time to target accuracy and\n"
    "                        the CPU seconds each run got (--train-samples defaults to 24000;\n"
    "                        the data repeats if the budget outlasts it)\n";

int run_compare_mode(const Args& a, bool all, long long n_train, long long n_val, long long batch, long long dec,
                     double budget);

int cmd_quickstart(int argc, char** argv) {
  Args a(argc, argv, {"help", "reuse-data", "no-transfer"});
  if (a.has("help")) {
    std::cout << kHelp << "  --budget-s S          with --compare: training seconds per model (default 150 for\n"
              << "                        clip, " << kBudgetAll << " for all)\n";
    return kOk;
  }
  if (int rc = check_syntax(a, Syntax{"catlip quickstart", "usage: catlip quickstart [--out DIR] [options]", {"set", "configs", "out", "batch-size", "decode-replicas", "epochs", "train-samples", "transfer-steps", "val-samples", "no-transfer", "reuse-data", "compare", "budget-s"}, 0, 0})) return rc;
  auto bad = a.unknown({"out", "train-samples", "val-samples", "epochs", "batch-size", "decode-replicas",
                        "transfer-steps", "configs", "reuse-data", "set", "no-transfer", "compare", "budget-s"});
  if (!a.error().empty() || !bad.empty() || !a.positional().empty()) {
    std::cerr << "catlip quickstart: " << (!a.error().empty() ? a.error() : !bad.empty() ? "unknown option " + bad[0] : std::string("unexpected argument"))
              << " (see --help)\n";
    return kUsage;
  }
  long long n_train = 0, n_val = 0, epochs = 0, batch = 0, dec = 0, tsteps = 0;
  double budget = 0;
  const bool compare = a.has("compare");
  const bool all = compare && a.get("compare") == "all";
  if (compare && !all && a.get("compare") != "clip") {
    std::cerr << "catlip quickstart: --compare takes 'clip' (CatLIP and CLIP) or 'all' (CatLIP, CLIP, SigLIP and "
                 "SuperClass)\n";
    return kUsage;
  }
  if (!compare && a.has("budget-s")) {
    std::cerr << "catlip quickstart: --budget-s goes with --compare clip|all\n";
    return kUsage;
  }
  try {
    n_train = a.get_int("train-samples", compare ? 24000 : 48000);
    budget = a.get_double("budget-s", all ? kBudgetAll : 150);
    n_val = a.get_int("val-samples", 1000);
    epochs = a.get_int("epochs", 1);
    batch = a.get_int("batch-size", 32);
    dec = a.get_int("decode-replicas", 1);
    tsteps = a.get_int("transfer-steps", 30);
  } catch (const std::exception&) {
    std::cerr << "catlip quickstart: numeric option expected (see --help)\n";
    return kUsage;
  }
  if (n_train < 64 || n_val < 16 || epochs < 1 || batch < 1 || dec < 1 || tsteps < 0) {
    std::cerr << "catlip quickstart: need --train-samples >= 64, --val-samples >= 16, --epochs/--batch-size/--decode-replicas >= 1\n";
    return kUsage;
  }
  if (compare) {
    if (!(budget >= 1)) {
      std::cerr << "catlip quickstart: need --budget-s >= 1\n";
      return kUsage;
    }
    return run_compare_mode(a, all, n_train, n_val, batch, dec, budget);
  }
  auto t_all = Clock::now();
  try {
    const std::string out = fs::absolute(a.get("out", "runs/quickstart")).lexically_normal().string();
    const std::string configs = find_configs(a.get("configs"));
    const std::string data = out + "/data";
    // Start from clean run dirs: the trainer appends to train_metrics.jsonl and
    // the report would mix two runs.
    for (const char* sub : {"vocab", "train", "eval", "transfer"}) fs::remove_all(out + "/" + sub);
    fs::remove(out + "/report.html");
    fs::create_directories(data);
    std::cout << "quickstart: output in " << out << "\n";

    // 1. data: 8 train shards and 2 held-out shards (the configs' default patterns).
    std::vector<std::string> train_shards, val_shards;
    prepare_data(a, data, n_train, n_val, "[1/6]", train_shards, val_shards);
    const int64_t train_n = n_train;
    const std::string vocab = data + "/vocab.tsv", model_vocab = data + "/vocab_model.tsv";
    setenv("DATA", data.c_str(), 1);
    setenv("VOCAB", vocab.c_str(), 1);
    setenv("MODEL_VOCAB", model_vocab.c_str(), 1);
    setenv("CHECKPOINT", (out + "/train").c_str(), 1);

    // 2. vocabulary.
    auto t = Clock::now();
    std::cout << "[2/6] vocabulary graph (" << configs << "/quickstart_vocab.toml)\n" << std::flush;
    run_config(configs + "/quickstart_vocab.toml", {"read.urls=" + list_toml(train_shards)}, out + "/vocab");
    write_model_vocab(vocab, model_vocab);
    std::cout << "[2/6] vocabulary written to " << vocab << " in " << fmt(since(t), 1) << " s\n";

    // 3. training: steps = what the epochs provide, cosine over all of them.
    t = Clock::now();
    const int64_t steps = std::max<int64_t>(1, train_n * epochs / batch);
    std::vector<std::string> sets = {"read.urls=" + list_toml(train_shards), "read.epochs=" + std::to_string(epochs),
                                     "decode.replicas=" + std::to_string(dec),
                                     "train.batch_size=" + std::to_string(batch), "train.steps=" + std::to_string(steps),
                                     "train.schedule_steps=" + std::to_string(steps)};
    for (auto& s : a.all("set")) sets.push_back(s);
    std::cout << "[3/6] training graph (" << configs << "/quickstart_train.toml): " << steps << " steps of " << batch
              << " images\n" << std::flush;
    run_config(configs + "/quickstart_train.toml", sets, out + "/train");
    std::cout << "[3/6] trained in " << fmt(since(t), 1) << " s\n";

    // 4. evaluation.
    t = Clock::now();
    std::cout << "[4/6] evaluation graph (" << configs << "/quickstart_eval.toml)\n" << std::flush;
    run_config(configs + "/quickstart_eval.toml", {"read.urls=" + list_toml(val_shards)}, out + "/eval");
    std::cout << "[4/6] evaluated in " << fmt(since(t), 1) << " s\n";

    // 5. Transfer Init on the class-labeled synthetic set (.cls).
    if (!a.has("no-transfer")) {
      t = Clock::now();
      std::cout << "[5/6] Transfer Init (catlip transfer)\n" << std::flush;
      std::vector<std::string> args = {exe_dir() + "/catlip-torch", "transfer", "--checkpoint", out + "/train",
                                       "--vocab", model_vocab, "--classes", data + "/classes.txt",
                                       "--out", out + "/transfer", "--steps", std::to_string(tsteps),
                                       "--train-samples", "2000", "--test-samples", std::to_string(n_val),
                                       "--threads", "2"};
      for (auto& s : train_shards) args.insert(args.end(), {"--train", s});
      for (auto& s : val_shards) args.insert(args.end(), {"--test", s});
      // The ImageNet-1k class list ships in the repository (configs/data).
      if (fs::path cov = fs::path(configs) / "data" / "imagenet_wnids.txt"; fs::is_regular_file(cov))
        args.insert(args.end(), {"--coverage", fs::weakly_canonical(cov).string()});
      else
        std::cerr << "warning: " << cov.string() << " is missing; no ImageNet coverage line\n";
      int rc = run_process(args);
      if (rc != 0) throw std::runtime_error("catlip transfer failed (exit " + std::to_string(rc) + ")");
      std::cout << "[5/6] Transfer Init in " << fmt(since(t), 1) << " s\n";
    }

    // 6. report.
    auto info = eval::write_report(out);
    std::cout << "[6/6] report: " << info.html_path << "\n\n";
    std::cout << "held-out mAP vs synthetic ground truth: " << fmt(info.map_gt) << "   (label-frequency prior: "
              << fmt(info.prior_map_gt) << ")\n";
    std::cout << "held-out mAP vs caption labels:         " << fmt(info.map_captions) << "\n";
    if (info.zero_shot >= 0) {
      std::cout << "Transfer Init zero-shot accuracy:       " << fmt(info.zero_shot) << "   (chance " << fmt(info.chance)
                << ")\n";
      try {
        const json::Value v = json::read_file(out + "/transfer/transfer.json");
        for (auto& [name, h] : json::object(json::at(json::at(v, "finetune"), "heads")).items()) {
          const json::Value& fa = json::at(h, "final_accuracy");
          double acc = fa.is_number() ? json::number(fa) : std::nan("");  // null: NaN
          std::cout << "fine-tune init_head=" << name << ":" << std::string(std::max<size_t>(1, 20 - name.size()), ' ')
                    << fmt(acc) << "   (after " << tsteps << " steps)\n";
        }
      } catch (const std::exception&) {
        // no transfer.json (Transfer Init failed and said why above): nothing to print
      }
    }
    std::cout << "total " << fmt(since(t_all), 1) << " s\nreport: " << info.html_path << "\n";
    return kOk;
  } catch (const std::exception& e) {
    std::cerr << "catlip quickstart: " << e.what() << "\n";
    return kFailed;
  }
}


// --compare clip|all: CatLIP and CLIP, or all four, for the same wall-clock
// budget each.
int run_compare_mode(const Args& a, bool all, long long n_train, long long n_val, long long batch, long long dec,
                     double budget) {
  auto t_all = Clock::now();
  struct Run {
    const char* name;       // as printed
    const char* objective;  // catlip compare's --<objective> DIR
    const char* config;     // in configs/
    const char* dir;        // under OUT
  };
  std::vector<Run> runs = {{"CatLIP", "catlip", "quickstart_train.toml", "train"},
                           {"CLIP", "clip", "quickstart_clip.toml", "clip"}};
  if (all) {
    runs.push_back({"SigLIP", "siglip", "quickstart_siglip.toml", "siglip"});
    runs.push_back({"SuperClass", "superclass", "quickstart_superclass.toml", "superclass"});
  }
  const int n_steps = 3 + int(runs.size());
  auto step = [&](int k) { return "[" + std::to_string(k) + "/" + std::to_string(n_steps) + "]"; };
  try {
    const std::string out = fs::absolute(a.get("out", "runs/quickstart")).lexically_normal().string();
    const std::string configs = find_configs(a.get("configs"));
    for (auto& r : runs)
      if (!fs::is_regular_file(configs + "/" + r.config)) throw std::runtime_error(configs + " lacks " + r.config);
    if (!fs::is_regular_file(configs + "/quickstart_bpe.toml"))
      throw std::runtime_error(configs + " lacks quickstart_bpe.toml");
    const std::string data = out + "/data";
    for (const char* sub : {"vocab", "bpe", "train", "clip", "siglip", "superclass", "compare"})
      fs::remove_all(out + "/" + sub);
    fs::create_directories(data);
    std::string names;
    for (size_t i = 0; i < runs.size(); ++i)
      names += (i ? (i + 1 == runs.size() ? " and " : ", ") : "") + std::string(runs[i].name);
    std::cout << "quickstart --compare " << (all ? "all" : "clip") << ": " << names << ", " << fmt(budget, 0)
              << " s of training each; output in " << out << "\n";

    std::vector<std::string> train_shards, val_shards;
    prepare_data(a, data, n_train, n_val, step(1), train_shards, val_shards);
    const std::string vocab = data + "/vocab.tsv", model_vocab = data + "/vocab_model.tsv",
                      tokenizer = data + "/bpe.txt";
    setenv("DATA", data.c_str(), 1);
    setenv("VOCAB", vocab.c_str(), 1);
    setenv("MODEL_VOCAB", model_vocab.c_str(), 1);
    setenv("TOKENIZER", tokenizer.c_str(), 1);

    // 2. CatLIP's synset vocabulary and the BPE tokenizer (CLIP, SigLIP,
    // SuperClass), both from the training captions.
    auto t = Clock::now();
    std::cout << step(2) << " vocabulary and BPE tokenizer graphs\n" << std::flush;
    run_config(configs + "/quickstart_vocab.toml", {"read.urls=" + list_toml(train_shards)}, out + "/vocab");
    write_model_vocab(vocab, model_vocab);
    run_config(configs + "/quickstart_bpe.toml", {"read.urls=" + list_toml(train_shards)}, out + "/bpe");
    std::cout << step(2) << " " << vocab << " and " << tokenizer << " in " << fmt(since(t), 1) << " s\n";

    // 3.. Training, one model after the other (never two at once: they
    // would share the cores). The same overrides for every graph: endless
    // data (the budget ends training), the budget, the cosine over the
    // budget's time (schedule_steps = 0: each model anneals fully within the
    // same wall clock, whatever its step time), and a checkpoint every
    // budget/8 seconds, all kept: evenly spaced points on the time axis.
    const double every_s = budget / 8.0;
    std::vector<std::string> sets = {"read.urls=" + list_toml(train_shards),
                                     "read.epochs=0",
                                     "decode.replicas=" + std::to_string(dec),
                                     "train.batch_size=" + std::to_string(batch),
                                     "train.steps=0",
                                     "train.schedule_steps=0",
                                     "train.time_budget_s=" + fmt(budget, 3),
                                     "train.checkpoint_every=0",
                                     "train.checkpoint_every_s=" + fmt(every_s, 3),
                                     "train.keep_checkpoints=0"};
    for (auto& s : a.all("set")) sets.push_back(s);
    int k = 3;
    for (auto& r : runs) {
      t = Clock::now();
      std::cout << step(k) << " " << r.name << " training (" << configs << "/" << r.config << "): " << fmt(budget, 0)
                << " s, checkpoint every " << fmt(every_s, 1) << " s, cosine over the budget\n"
                << std::flush;
      run_config(configs + "/" + r.config, sets, out + "/" + r.dir);
      std::cout << step(k) << " " << r.name << " trained in " << fmt(since(t), 1) << " s (start-up included)\n";
      ++k;
    }

    // Last: every checkpoint of every run on the held-out set.
    t = Clock::now();
    std::cout << step(n_steps) << " evaluating every checkpoint (catlip compare)\n" << std::flush;
    std::vector<std::string> args = {exe_dir() + "/catlip-torch", "compare", "--vocab", model_vocab, "--classes",
                                     data + "/classes.txt", "--out", out + "/compare", "--train-samples",
                                     std::to_string(std::min<long long>(1000, n_train)), "--test-samples",
                                     std::to_string(n_val), "--threads", "2"};
    for (auto& r : runs) args.insert(args.end(), {std::string("--") + r.objective, out + "/" + r.dir});
    for (auto& s : train_shards) args.insert(args.end(), {"--train", s});
    for (auto& s : val_shards) args.insert(args.end(), {"--test", s});
    int rc = run_process(args);
    if (rc != 0) throw std::runtime_error("catlip compare failed (exit " + std::to_string(rc) + ")");
    std::cout << step(n_steps) << " evaluated in " << fmt(since(t), 1) << " s\n\n";
    std::cout << "comparison: " << out << "/compare/compare.html\n          " << out << "/compare/compare.json\n";
    std::cout << "total " << fmt(since(t_all), 1) << " s\n";
    return kOk;
  } catch (const std::exception& e) {
    std::cerr << "catlip quickstart: " << e.what() << "\n";
    return kFailed;
  }
}
}  // namespace

CATLIP_COMMAND("quickstart", "Run CatLIP end to end on synthetic data and write a report", cmd_quickstart);
