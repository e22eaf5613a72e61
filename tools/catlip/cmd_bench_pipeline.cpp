// catlip bench pipeline: the whole CatLIP input side, shards -> decode +
// RandomResizedCrop + flip -> caption labels -> trainer-ready batches, as a
// real `catlip run` (one process per replica, ZeroMQ between them), against
// what users run today: a PyTorch DataLoader with worker processes doing
// tarfile + PIL + torchvision + NLTK per sample (CoreNet's path;
// tools/python/bench_pipeline_baseline.py), on the same shards in the same
// run. Both are timed as whole child processes: wall time, and CPU time of
// the process and all its descendants (wait4's rusage), so "per core" is
// samples per CPU-second of everything the run used, start-up included.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "cli.h"

using namespace catlip::cli;
namespace json = catlip::json;
namespace fs = std::filesystem;

namespace {

const char* kUsageLine =
    "usage: catlip bench pipeline [--samples N] [--size P] [--batch B] [--replicas R] [--workers W]\n"
    "                             [--out DIR] [--python PATH] [--script FILE] [--no-baseline]";

const char* kHelp =
    "\n\nThe whole CatLIP input side against the stack users have today, on the same shards:\n"
    "  catlip:   `catlip run` of shards.source -> image.decode (mode train: RandomResizedCrop 224\n"
    "            + flip; R replicas) -> text.labels (caption -> synsets -> vocabulary indices)\n"
    "            -> testing.collate (uint8 [B,224,224,3] + float multi-hot [B,V] batches, what the\n"
    "            trainer does before its forward pass), every replica its own process\n"
    "  PyTorch:  the venv's python, torch.utils.data.DataLoader with W workers over an\n"
    "            IterableDataset doing CoreNet's per-sample work: tarfile, PIL decode,\n"
    "            torchvision RandomResizedCrop(224) + RandomHorizontalFlip, uint8 tensor, NLTK\n"
    "            Treebank tokenizer + WordNetLemmatizer + the wn.synset rule, multi-hot labels\n"
    "            over the same vocabulary, batched by the DataLoader\n"
    "         (tools/python/bench_pipeline_baseline.py)\n"
    "First writes N synthetic P x P JPEG samples with captions (`catlip shards synth`) and\n"
    "builds their synset vocabulary (a text.parse -> text.synset_count -> text.vocab_merge\n"
    "graph; untimed). Each side is timed as a whole child process: wall time, and the CPU\n"
    "time of it and all its descendants (workers included), start-up included. Prints\n"
    "samples/s, samples per CPU-second (\"per core\") and their ratio (target >= 3x per core).\n\n"
    "  --samples N    samples (default 2000)\n"
    "  --size P       side of the synthetic images (default 256, so the 224 crop is a crop)\n"
    "  --batch B      batch size of both sides (default 64)\n"
    "  --replicas R   image.decode replicas (default 2)\n"
    "  --workers W    DataLoader worker processes (default 2)\n"
    "  --out DIR      keep shards, vocabulary, graphs, run dirs and logs in DIR (default: a\n"
    "                 temporary directory, removed at exit)\n"
    "  --python PATH  the baseline's interpreter (default: the project venv .venv/bin/python,\n"
    "                 tools/requirements.txt; skipped when it lacks torch/torchvision/PIL/nltk)\n"
    "  --script FILE  the baseline script (default: found beside the build or the sources)\n"
    "  --no-baseline  run the catlip side only\n";

struct Child {
  int rc = -1;
  double wall = 0, cpu = 0;
};

// Runs args[0] with args, stdout+stderr to `log`; wall and CPU time (user +
// system of the child and every descendant it waited for).
Child run_child(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  Child r;
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  if (pid < 0) return r;
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) ::dup2(fd, 1), ::dup2(fd, 2);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::execv(argv[0], argv.data());
    std::perror(argv[0]);
    _exit(127);
  }
  int st = 0;
  struct rusage ru {};
  while (::wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {
  }
  r.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string tail(const std::string& s, size_t n = 1500) { return s.size() > n ? "..." + s.substr(s.size() - n) : s; }

// The number `key` of a JSON object, or `def`.
double json_number(const json::Value& v, const std::string& key, double def = -1) {
  const json::Value* x = json::find(v, key);
  return x && x->is_number() ? json::number(*x) : def;
}

std::string find_script(const std::string& given, const std::string& exe_dir) {
  if (!given.empty()) return given;
  const char* name = "bench_pipeline_baseline.py";
  for (fs::path d : {fs::path(exe_dir) / "../../tools/python", fs::path(exe_dir) / "../tools/python",
                     fs::current_path() / "tools/python"}) {
    std::error_code ec;
    if (fs::is_regular_file(d / name, ec)) return fs::weakly_canonical(d / name, ec).string();
  }
  return "";
}

// Vocabulary rows of a text.vocab_merge TSV.
int vocab_rows(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  int n = 0;
  while (std::getline(f, line))
    if (!line.empty() && line[0] != '#' && line.rfind("index\t", 0) != 0) ++n;
  return n;
}

int cmd_bench_pipeline(int argc, char** argv) {
  Args a(argc, argv, {"help", "no-baseline"});
  if (a.has("help")) {
    std::cout << kUsageLine << kHelp;
    return kOk;
  }
  if (int rc = check_syntax(a, Syntax{"catlip bench pipeline", kUsageLine,
                                      {"samples", "size", "batch", "replicas", "workers", "out", "python", "script",
                                       "no-baseline"},
                                      0, 0}))
    return rc;
  long long n = 0, size = 0, batch = 0, replicas = 0, workers = 0;
  try {
    n = a.get_int("samples", 2000);
    size = a.get_int("size", 256);
    batch = a.get_int("batch", 64);
    replicas = a.get_int("replicas", 2);
    workers = a.get_int("workers", 2);
  } catch (const std::exception&) {
    std::cerr << "catlip bench pipeline: numeric option expected\n" << kUsageLine << "\n";
    return kUsage;
  }
  if (n < 1 || size < 32 || size > 4096 || batch < 1 || replicas < 1 || workers < 0) {
    std::cerr << "catlip bench pipeline: need --samples >= 1, 32 <= --size <= 4096, --batch >= 1, "
                 "--replicas >= 1, --workers >= 0\n"
              << kUsageLine << "\n";
    return kUsage;
  }
  const int crop = 224;
  const std::string self = catlip_front_end();
  const std::string exe_dir = fs::path(self).parent_path().string();
  const std::string python = a.get("python", default_python(argv[0]));

  // Work directory: --out (kept) or a temporary one (removed at exit).
  std::string dir;
  bool keep = a.has("out");
  if (keep) {
    dir = fs::absolute(a.get("out")).lexically_normal().string();
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      std::cerr << "catlip bench pipeline: cannot create " << dir << ": " << ec.message() << "\n";
      return kFailed;
    }
  } else {
    std::string tmpl = (fs::temp_directory_path() / "catlip-bench-pipeline-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) {
      std::perror("catlip bench pipeline: mkdtemp");
      return kFailed;
    }
    dir = tmpl;
  }
  struct Cleanup {
    std::string dir;
    bool keep;
    ~Cleanup() {
      std::error_code ec;
      if (!keep) fs::remove_all(dir, ec);
    }
  } cleanup{dir, keep};
  auto fail = [&](const std::string& what, const std::string& log) {
    std::cerr << "catlip bench pipeline: " << what << "\n" << tail(slurp(log)) << "\n";
    return kFailed;
  };

  // 1. Shards: 8 (or fewer) of them, so every decode replica and worker has some.
  const long long shards = std::min<long long>(8, n);
  const long long per_shard = (n + shards - 1) / shards;
  const std::string prefix = dir + "/data/bench";
  {
    Child c = run_child({self, "shards", "synth", prefix, "--samples", std::to_string(n), "--size",
                         std::to_string(size), "--samples-per-shard", std::to_string(per_shard)},
                        dir + "/synth.log");
    if (c.rc != 0) return fail("generating the shards failed", dir + "/synth.log");
  }
  std::vector<std::string> shard_files;
  double shard_bytes = 0;
  for (auto& e : fs::directory_iterator(dir + "/data"))
    if (e.path().extension() == ".tar") {
      shard_files.push_back(e.path().string());
      shard_bytes += double(fs::file_size(e.path()));
    }
  std::sort(shard_files.begin(), shard_files.end());
  std::string urls = "[";
  for (size_t i = 0; i < shard_files.size(); ++i) urls += (i ? ", \"" : "\"") + shard_files[i] + "\"";
  urls += "]";

  // 2. Vocabulary of these captions (every synset seen), untimed.
  const std::string vocab = dir + "/vocab.tsv";
  {
    std::ofstream(dir + "/vocab.toml")
        << "# catlip bench pipeline: the synset vocabulary of the benchmark's captions\n"
        << "[graph]\nname = \"bench-pipeline-vocab\"\n"
        << "[stages.read]\ntype = \"shards.source\"\nurls = " << urls << "\nshuffle_shards = false\n"
        << "[stages.parse]\ntype = \"text.parse\"\ninputs = [\"read\"]\nwrite_tokens = false\n"
        << "[stages.count]\ntype = \"text.synset_count\"\ninputs = [\"parse\"]\n"
        << "[stages.merge]\ntype = \"text.vocab_merge\"\ninputs = [\"count\"]\nmin_count = 1\noutput = \"" << vocab
        << "\"\n";
    Child c = run_child({self, "run", dir + "/vocab.toml", "--run-dir", dir + "/run-vocab", "--quiet"},
                        dir + "/vocab.log");
    if (c.rc != 0) return fail("the vocabulary graph failed", dir + "/vocab.log");
  }
  const int classes = vocab_rows(vocab);
  if (classes <= 0) return fail("the vocabulary " + vocab + " is empty", dir + "/vocab.log");

  std::printf("catlip bench pipeline: %lld samples (%lldx%lld synthetic JPEGs with captions, %zu shards, %.1f MB), "
              "crop %d, batch %lld, vocabulary %d synsets, %u cores\n",
              n, size, size, shard_files.size(), shard_bytes / 1e6, crop, batch, classes,
              std::thread::hardware_concurrency());
  std::fflush(stdout);

  // 3. catlip: the input side as a real run, timed as one child process tree.
  const std::string graph = dir + "/pipeline.toml";
  std::ofstream(graph) << "# catlip bench pipeline: shards -> decode + RandomResizedCrop + flip -> labels -> "
                          "trainer-ready batches\n"
                       << "[graph]\nname = \"bench-pipeline\"\n"
                       << "[stages.read]\ntype = \"shards.source\"\nurls = " << urls << "\nshuffle_shards = false\n"
                       << "[stages.decode]\ntype = \"image.decode\"\ninputs = [\"read\"]\nreplicas = " << replicas
                       << "\nmode = \"train\"\nsize = " << crop << "\n"
                       << "[stages.labels]\ntype = \"text.labels\"\ninputs = [\"decode\"]\nvocab = \"" << vocab << "\"\n"
                       << "[stages.batch]\ntype = \"testing.collate\"\ninputs = [\"labels\"]\nbatch_size = " << batch
                       << "\nclasses = " << classes << "\nsize = " << crop << "\n";
  const std::string run_dir = dir + "/run-catlip";
  Child cat = run_child({self, "run", graph, "--run-dir", run_dir, "--quiet"}, dir + "/catlip.log");
  // The collate sink's counters; -1 without a summary (the run failed).
  const bool summary = summary_figure(run_dir, "batch", "replicas", -1) >= 0;
  long long cat_samples = summary ? (long long)summary_figure(run_dir, "batch", "collate.samples") : -1;
  long long cat_labels = summary ? (long long)summary_figure(run_dir, "batch", "collate.labels") : -1;
  long long cat_batches = summary ? (long long)(summary_figure(run_dir, "batch", "collate.batches") +
                                                summary_figure(run_dir, "batch", "collate.partial_batches"))
                                  : -1;
  bool cat_ok = cat.rc == 0 && cat_samples == n;

  // 4. The PyTorch baseline on the same shards and vocabulary.
  enum { kRan, kSkipped, kFailedRun } base_state = kSkipped;
  std::string base_note, base_out;
  json::Value base_json;  // the baseline's result: the JSON object on its last line
  Child base;
  if (a.has("no-baseline")) {
    base_note = "skipped (--no-baseline)";
  } else {
    std::string script = find_script(a.get("script"), exe_dir);
    Child probe = run_child({python, "-c", "import torch, torchvision, PIL, numpy, nltk"}, dir + "/probe.log");
    if (script.empty()) {
      base_note = "skipped: tools/python/bench_pipeline_baseline.py not found (pass --script FILE)";
    } else if (probe.rc != 0) {
      base_note = "skipped: " + python + " lacks torch/torchvision/PIL/numpy/nltk (" +
                  tail(slurp(dir + "/probe.log"), 200) + ")";
      std::replace(base_note.begin(), base_note.end(), '\n', ' ');
    } else {
      std::vector<std::string> args = {python, script, "--vocab", vocab, "--batch", std::to_string(batch),
                                       "--workers", std::to_string(workers), "--size", std::to_string(crop)};
      args.insert(args.end(), shard_files.begin(), shard_files.end());
      base = run_child(args, dir + "/baseline.log");
      base_out = slurp(dir + "/baseline.log");
      auto j = base_out.rfind("{\"samples\"");
      std::string parse_error;
      if (base.rc == 0 && j != std::string::npos) {
        try {
          base_json = json::parse(base_out.substr(j, base_out.find('\n', j) - j), "baseline result");
        } catch (const std::exception& e) {
          parse_error = e.what();
        }
      }
      if (base.rc == 0 && j != std::string::npos && parse_error.empty()) {
        base_state = kRan;
      } else if (!parse_error.empty()) {
        base_state = kFailedRun;
        base_note = "FAILED: " + parse_error + ":\n" + tail(base_out);
      } else {
        base_state = kFailedRun;
        base_note = "FAILED (exit " + std::to_string(base.rc) + "):\n" + tail(base_out);
      }
    }
  }
  long long base_samples = base_state == kRan ? (long long)json_number(base_json, "samples") : -1;
  long long base_labels = base_state == kRan ? (long long)json_number(base_json, "labels") : -1;

  // 5. The table.
  const std::string cat_label = "catlip run: shards.source -> image.decode x" + std::to_string(replicas) +
                                " -> text.labels -> collate";
  const std::string base_label =
      "PyTorch DataLoader, " + std::to_string(workers) + " workers: tarfile+PIL+torchvision+NLTK";
  int w = int(std::max(cat_label.size(), base_label.size()));
  std::printf("%-*s %8s %8s %10s %8s %12s\n", w, "path", "samples", "wall s", "samples/s", "CPU s", "samples/CPU-s");
  auto row = [&](const std::string& label, long long samples, const Child& c) {
    std::printf("%-*s %8lld %8.2f %10.1f %8.2f %12.1f\n", w, label.c_str(), samples, c.wall,
                c.wall > 0 ? samples / c.wall : 0.0, c.cpu, c.cpu > 0 ? samples / c.cpu : 0.0);
  };
  if (cat.rc == 0) row(cat_label, cat_samples, cat);
  else std::printf("%-*s FAILED (exit %d)\n", w, cat_label.c_str(), cat.rc);
  if (base_state == kRan) row(base_label, base_samples, base);
  else std::printf("%-*s %s\n", w, base_label.c_str(), base_note.c_str());

  if (cat.rc == 0)
    std::printf("catlip: %lld of %lld samples in %lld batches, %.2f labels/sample%s\n", cat_samples, n, cat_batches,
                cat_samples > 0 ? double(cat_labels) / cat_samples : 0.0,
                cat_samples == n ? "" : "  <- NOT all samples arrived");
  if (base_state == kRan) {
    double setup = json_number(base_json, "setup_cpu_s", 0), loop = json_number(base_json, "loop_s", 0);
    const json::Value* tag = json::find(base_json, "pos_tag");
    bool tagged = tag && tag->is_boolean() && tag->get<bool>();
    const json::Value* versions = json::find(base_json, "versions");
    std::printf("PyTorch (%s): %lld samples, %.2f labels/sample; %s; of its CPU time %.2f s went to start-up before the\n"
                "  loader (imports, vocabulary), its loader loop took %.2f s wall; without start-up: %.1f samples/CPU-s%s\n",
                python.c_str(), base_samples, base_samples > 0 ? double(base_labels) / base_samples : 0.0,
                versions && versions->is_string() ? json::string(*versions).c_str() : "", setup, loop,
                base.cpu - setup > 0 ? base_samples / (base.cpu - setup) : 0.0,
                tagged ? "" : "\n  (no nltk.pos_tag: Debian lacks its model, so the baseline skips tagging, which CoreNet does)");
    if (cat_ok && base_samples > 0 && cat.cpu > 0 && base.cpu > 0) {
      double per_core = (cat_samples / cat.cpu) / (base_samples / base.cpu);
      double wall = (cat_samples / cat.wall) / (base_samples / base.wall);
      std::printf("catlip vs PyTorch: %.2fx samples per CPU-second (per core), %.2fx samples/s; "
                  "target >= 3x per core: %s\n",
                  per_core, wall, per_core >= 3.0 ? "met" : "NOT met");
    }
  }
  if (keep) std::printf("kept in %s (graph: %s)\n", dir.c_str(), graph.c_str());
  if (cat.rc != 0) return fail("the catlip run failed (exit " + std::to_string(cat.rc) + ")", dir + "/catlip.log");
  if (!cat_ok) return kFailed;
  return base_state == kFailedRun ? kFailed : kOk;
}

}  // namespace

CATLIP_COMMAND("bench pipeline", "Samples/s and per core of the whole input side vs a PyTorch DataLoader + NLTK",
               cmd_bench_pipeline);
