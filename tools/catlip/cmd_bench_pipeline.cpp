// catlip bench pipeline: the whole CatLIP input side, shards -> decode +
// RandomResizedCrop + flip -> caption labels -> trainer-ready batches, as a
// real `catlip run` (one process per replica, ZeroMQ between them), against
// the strongest loaders users have (WebDataset + DataLoader, SPDL, DALI on
// CPU: tools/python/bench_peers.py, peer_bench.h) on the same shards, in the
// same run, pinned to the same cores. Each side is timed as a whole child
// process tree: wall time, and CPU time of the process and all its
// descendants (wait4's rusage), so "per CPU-second" counts everything the
// run used, start-up included. Each side also runs over the first shard alone
// (1/8 of the samples): the difference of the two runs' CPU time is the
// steady-state cost of the other 7/8, start-up cancelled out, measured the
// same way for every side.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "catlip/json.h"
#include "cli.h"
#include "bench_common.h"
#include "peer_bench.h"

using namespace catlip::cli;
namespace pb = catlip::cli::peers;
using pb::Child;
using pb::PeerResult;
namespace fs = std::filesystem;

namespace {

const char* kUsageLine =
    "usage: catlip bench pipeline [--samples N] [--size P] [--batch B] [--replicas R] [--workers W]\n"
    "                             [--cores C] [--seed S] [--out DIR] [--python PATH] [--script FILE] [--no-peers]\n"
    "                             [--no-steady]";

const char* kHelp =
    "\n\nThe whole CatLIP input side against the strongest loaders users have, on the same shards,\n"
    "doing the same work (decode, RandomResizedCrop 224 with scale (0.08,1) and ratio (3/4,4/3),\n"
    "horizontal flip, caption -> multi-hot labels, uint8 [B,224,224,3] + float [B,V] batches):\n"
    "  catlip:      `catlip run` of shards.source -> text.labels -> image.decode (mode train;\n"
    "               R replicas) -> testing.collate, every replica its own process\n"
    "  webdataset:  WebDataset 1.x pipeline in a torch DataLoader with W workers, PIL decode,\n"
    "               torchvision v2 RandomResizedCrop + RandomHorizontalFlip (OpenCLIP's path)\n"
    "  spdl:        spdl.pipeline (W threads) with spdl.io decode and an FFmpeg crop/scale/hflip filter\n"
    "  dali:        DALI on CPU (W threads): readers.webdataset, decoders.image_random_crop, resize, flip\n"
    "The peers run tools/python/bench_peers.py in the project venv and label captions with the same\n"
    "NLTK code (CoreNet's path: Treebank tokenizer, WordNetLemmatizer, the wn.synset rule;\n"
    "tools/python/bench_labels.py) over the same vocabulary. A peer whose package is missing\n"
    "prints a SKIPPED row with the reason.\n"
    "First writes N synthetic P x P JPEG samples with captions (`catlip shards synth`) and\n"
    "builds their synset vocabulary (untimed). Each side runs pinned to the same C CPUs and is\n"
    "timed as a whole child process tree: wall time, and the CPU time of it and all its\n"
    "descendants (workers included), start-up included. Prints samples/s, samples per\n"
    "CPU-second and catlip/peer per CPU-second against the targets: >= 3x WebDataset,\n"
    ">= 1.5x SPDL, >= 1.0x DALI CPU. Then the steady state: every side runs again over the\n"
    "first shard alone (1/8 of the samples), and (N - N/8) / (CPU of the full run - CPU of\n"
    "the one-shard run) is its samples per CPU-second with start-up cancelled out (imports,\n"
    "processes, vocabulary), the same measure for every side; start-up = the one-shard run's\n"
    "CPU less its samples at that rate. At the default size WebDataset's imports and\n"
    "vocabulary, measured before its loader starts, are about 2% of its CPU time; the\n"
    "estimate, which also counts its worker processes (each loads WordNet) and warm-up,\n"
    "about 6% (2 cores).\n\n"
    "  --samples N    samples (default 64000: about 10 minutes on 2 cores)\n"
    "  --size P       side of the synthetic images (default 256, so the 224 crop is a crop)\n"
    "  --batch B      batch size of every side (default 64)\n"
    "  --replicas R   image.decode replicas (default 2)\n"
    "  --workers W    the peers' worker processes or threads (default 2)\n"
    "  --cores C      pin every side to the first C CPUs this process may use (default 2; 0: no pinning)\n"
    "  --seed S       the peers' seed (default 0)\n"
    "  --out DIR      keep shards, vocabulary, graphs, run dirs and logs in DIR (default: a\n"
    "                 temporary directory, removed at exit)\n"
    "  --python PATH  the peers' interpreter (default: the project venv .venv/bin/python)\n"
    "  --script FILE  the peers' script (default: tools/python/bench_peers.py beside the build)\n"
    "  --no-peers     run the catlip side only (--no-baseline: the same)\n"
    "  --no-steady    skip the one-shard runs (start-up included figures only)\n";

struct Options {
  bool steady = true;
  long long n = 64000, size = 256, batch = 64, replicas = 2, workers = 2, cores = 2, seed = 0;
};

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  double one = -1;
  f >> one;
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", one);
  return one >= 0 ? b : "?";
}

// 3. catlip: the input side as a real run, timed as one child process tree.
struct CatlipSide {
  Child child;
  long long samples = -1, labels = -1, batches = -1;
};

// `name` is "catlip" (every shard) or "catlip-small" (the first shard):
// DIR/pipeline.toml or pipeline-small.toml, run dir DIR/run-NAME, log
// DIR/NAME.log. Captions are labelled before decoding, while samples are small
// (docs/graph-reference.md).
CatlipSide run_catlip(const std::string& self, const std::string& dir, const std::string& name,
                      const std::string& urls, const std::string& vocab, int classes, const Options& o,
                      const std::vector<int>& cpus) {
  const int crop = 224;
  const std::string graph = dir + (name == "catlip" ? "/pipeline.toml" : "/pipeline-small.toml");
  std::ofstream(graph) << "# catlip bench pipeline: shards -> labels -> decode + RandomResizedCrop + flip -> "
                          "trainer-ready batches\n"
                       << "[graph]\nname = \"bench-pipeline\"\n"
                       << "[stages.read]\ntype = \"shards.source\"\nurls = " << urls << "\nshuffle_shards = false\n"
                       << "[stages.labels]\ntype = \"text.labels\"\ninputs = [\"read\"]\nvocab = \"" << vocab << "\"\n"
                       << "[stages.decode]\ntype = \"image.decode\"\ninputs = [\"labels\"]\nreplicas = " << o.replicas
                       << "\nmode = \"train\"\nsize = " << crop << "\n"
                       << "[stages.batch]\ntype = \"testing.collate\"\ninputs = [\"decode\"]\nbatch_size = " << o.batch
                       << "\nclasses = " << classes << "\nsize = " << crop << "\n";
  const std::string run_dir = dir + "/run-" + name;
  CatlipSide r;
  r.child = pb::run_child({self, "run", graph, "--run-dir", run_dir, "--quiet"}, dir + "/" + name + ".log", cpus);
  // The collate sink's counters; -1 without a summary (the run failed).
  if (summary_figure(run_dir, "batch", "replicas", -1) >= 0) {
    r.samples = (long long)summary_figure(run_dir, "batch", "collate.samples");
    r.labels = (long long)summary_figure(run_dir, "batch", "collate.labels");
    r.batches = (long long)(summary_figure(run_dir, "batch", "collate.batches") +
                            summary_figure(run_dir, "batch", "collate.partial_batches"));
  }
  return r;
}

// 5. The table: catlip's row, then one per peer (figures, SKIPPED or FAILED).
void print_results(const CatlipSide& cat, const std::vector<PeerResult>& peers, const Options& o,
                   const std::string& python, bool ran_peers) {
  const Child& c = cat.child;
  const double cat_rate = c.cpu > 0 && cat.samples > 0 ? cat.samples / c.cpu : 0;
  pb::print_header("samples");
  if (c.rc == 0)
    pb::print_row({"catlip", double(cat.samples), c.wall, c.wall > 0 ? cat.samples / c.wall : 0, c.cpu, cat_rate,
               "catlip run: shards.source -> text.labels -> image.decode x" + std::to_string(o.replicas) +
                   " -> testing.collate"},
              0, 0);
  else
    std::printf("%-11s FAILED (exit %d)\n", "catlip", c.rc);
  for (const PeerResult& p : peers) {
    if (p.state != PeerResult::kRan) {
      pb::print_unrun(p);
      continue;
    }
    const Child& k = p.child;
    pb::print_row({p.spec.loader, p.samples, k.wall, k.wall > 0 ? p.samples / k.wall : 0, k.cpu,
               k.cpu > 0 ? p.samples / k.cpu : 0, p.versions},
              c.rc == 0 ? cat_rate : 0, p.spec.target);
  }
  if (c.rc == 0)
    std::printf("catlip: %lld of %lld samples in %lld batches, %.2f labels/sample%s\n", cat.samples, o.n, cat.batches,
                cat.samples > 0 ? double(cat.labels) / cat.samples : 0.0,
                cat.samples == o.n ? "" : "  <- NOT all samples arrived");
  if (!ran_peers) {
    std::printf("peers: skipped (--no-peers)\n");
    return;
  }
  std::printf("peers (%s, tools/python/bench_peers.py, %lld workers or threads each):\n", python.c_str(), o.workers);
  for (const PeerResult& p : peers) {
    std::printf("  %-10s %s\n", p.spec.loader.c_str(), p.spec.what.c_str());
    if (p.state != PeerResult::kRan) continue;
    const double warm = p.child.cpu - p.setup_cpu;
    const double warm_rate = warm > 0 ? p.samples / warm : 0.0;
    std::printf("  %-10s %.2f labels/sample; %.2f CPU-s of start-up before its loader (imports, vocabulary);\n"
                "  %-10s without it %.1f samples/CPU-s (catlip/peer %.2fx, catlip's start-up still counted)\n",
                "", p.samples > 0 ? p.labels / p.samples : 0.0, p.setup_cpu, "", warm_rate,
                warm_rate > 0 ? cat_rate / warm_rate : 0.0);
  }
  std::printf("labels: every peer runs the same NLTK labeller (no nltk.pos_tag model: Debian lacks it, so the\n"
              "  peers skip tagging, which CoreNet does); catlip tags and keeps nouns.\n");
}

// The steady state of one side from its full run and its one-shard run: the
// marginal CPU per sample, start-up cancelled out.
struct Steady {
  bool ok = false;
  double rate = 0;     // samples per CPU-second beyond start-up
  double startup = 0;  // CPU-s: the one-shard run's CPU less its samples at `rate`
  double share = 0;    // startup / the full run's CPU
};

Steady steady_state(double n_full, double cpu_full, double n_small, double cpu_small) {
  Steady s;
  if (n_full <= n_small || cpu_full <= cpu_small || n_small <= 0) return s;
  s.ok = true;
  s.rate = (n_full - n_small) / (cpu_full - cpu_small);
  s.startup = std::max(0.0, cpu_small - n_small / s.rate);
  s.share = s.startup / cpu_full;
  return s;
}

// The steady-state table: one row per side that ran both times.
void print_steady(const CatlipSide& cat, const CatlipSide& cat_small, const std::vector<PeerResult>& peers,
                  const std::vector<PeerResult>& small, long long n_small) {
  std::printf("\nsteady state: (N - %lld) / (CPU of the full run - CPU of a run over the first shard alone, %lld "
              "samples); start-up cancels out\n",
              n_small, n_small);
  std::printf("%-11s %14s %14s %15s %11s %11s  %s\n", "loader", "samples/CPU-s", "CPU ms/sample", "start-up CPU-s",
              "of its CPU", "catlip/peer", "target");
  const Steady c = cat.child.rc == 0 && cat_small.child.rc == 0
                       ? steady_state(cat.samples, cat.child.cpu, cat_small.samples, cat_small.child.cpu)
                       : Steady{};
  auto row = [&](const std::string& name, const Steady& st, double target) {
    if (!st.ok) {
      std::printf("%-11s -  (needs both runs, and more CPU for more samples)\n", name.c_str());
      return;
    }
    char ratio[32] = "-", goal[48] = "-";
    if (target > 0 && c.ok) {
      const double x = c.rate / st.rate;
      std::snprintf(ratio, sizeof ratio, "%.2fx", x);
      std::snprintf(goal, sizeof goal, ">= %.1fx %s", target, x >= target ? "met" : "MISSED");
    }
    std::printf("%-11s %14.1f %14.3f %15.2f %10.1f%% %11s  %s\n", name.c_str(), st.rate, 1000.0 / st.rate, st.startup,
                100.0 * st.share, ratio, goal);
  };
  row("catlip", c, 0);
  for (size_t i = 0; i < peers.size() && i < small.size(); ++i) {
    const PeerResult &p = peers[i], &q = small[i];
    if (p.state != PeerResult::kRan || q.state != PeerResult::kRan) continue;
    const Steady st = steady_state(p.samples, p.child.cpu, q.samples, q.child.cpu);
    row(p.spec.loader, st, p.spec.target);
    if (p.spec.loader == "webdataset" && st.ok) {
      // Two measures: what its one-shard run costs beyond the marginal rate
      // (the estimate above: imports, vocabulary, worker processes each
      // loading WordNet, warm-up), and what it measured itself before its
      // loader started (imports and vocabulary alone).
      const double direct = p.child.cpu > 0 ? p.setup_cpu / p.child.cpu : 0;
      std::printf("%-11s start-up is %.1f%% of the baseline's CPU time by this estimate, %.1f%% measured before its "
                  "loader (imports, vocabulary)%s\n",
                  "", 100.0 * st.share, 100.0 * direct,
                  st.share < 0.05 ? ""
                                  : "\n            <- over 5%: the start-up-included figures above are that far from "
                                    "steady state (this table is not); raise --samples to close the gap");
    }
  }
  if (c.ok) std::printf("catlip: %.3f CPU ms per sample in steady state (%.2f CPU-s of start-up)\n", 1000.0 / c.rate,
                        c.startup);
}

Options parse_options(const Args& a) {
  Options o;
  o.steady = !a.has("no-steady");
  o.n = a.get_int("samples", o.n);
  o.size = a.get_int("size", 256);
  o.batch = a.get_int("batch", 64);
  o.replicas = a.get_int("replicas", 2);
  o.workers = a.get_int("workers", 2);
  o.cores = a.get_int("cores", 2);
  o.seed = a.get_int("seed", 0);
  return o;
}

int cmd_bench_pipeline(int argc, char** argv) {
  Args a(argc, argv, {"help", "no-baseline", "no-peers", "no-steady"});
  if (a.has("help")) {
    std::cout << kUsageLine << kHelp;
    return kOk;
  }
  if (int rc = check_syntax(a, Syntax{"catlip bench pipeline", kUsageLine,
                                      {"samples", "size", "batch", "replicas", "workers", "cores", "seed", "out",
                                       "python", "script", "no-baseline", "no-peers", "no-steady"},
                                      0, 0}))
    return rc;
  Options o;
  try {
    o = parse_options(a);
  } catch (const std::exception&) {
    std::cerr << "catlip bench pipeline: numeric option expected\n" << kUsageLine << "\n";
    return kUsage;
  }
  if (o.n < 1 || o.size < 32 || o.size > 4096 || o.batch < 1 || o.replicas < 1 || o.workers < 0 || o.cores < 0) {
    std::cerr << "catlip bench pipeline: need --samples >= 1, 32 <= --size <= 4096, --batch >= 1, "
                 "--replicas >= 1, --workers >= 0, --cores >= 0\n"
              << kUsageLine << "\n";
    return kUsage;
  }
  const std::string self = catlip_front_end();
  const std::string exe_dir = fs::path(self).parent_path().string();
  const std::string python = a.get("python", default_python(argv[0]));
  const std::vector<int> cpus = pb::pick_cpus(int(o.cores));

  // Work directory: --out (kept) or a temporary one (removed at exit).
  bench::WorkDir work;
  if (std::string error; !work.open(a.get("out"), "pipeline", error)) {
    std::cerr << "catlip bench pipeline: " << error << "\n";
    return kFailed;
  }
  const std::string dir = work.path();
  const bool keep = work.kept();
  auto fail = [&](const std::string& what, const std::string& log) {
    std::cerr << "catlip bench pipeline: " << what << "\n" << pb::tail(pb::slurp(log)) << "\n";
    return kFailed;
  };

  double shard_bytes = 0;
  const std::vector<std::string> shards = bench::write_shards(self, dir, o.n, o.size, shard_bytes);
  if (shards.empty()) return fail("generating the shards failed", dir + "/synth.log");
  const std::string urls = bench::toml_list(shards);
  const std::string vocab = dir + "/vocab.tsv";
  if (!bench::write_vocab(self, dir, urls, vocab)) return fail("the vocabulary graph failed", dir + "/vocab.log");
  const int classes = bench::vocab_rows(vocab);
  if (classes <= 0) return fail("the vocabulary " + vocab + " is empty", dir + "/vocab.log");

  std::printf("catlip bench pipeline: %lld samples (%lldx%lld synthetic JPEGs with captions, %zu shards, %.1f MB), "
              "crop 224, batch %lld, vocabulary %d synsets; each side pinned to CPUs %s of %u; load average %s\n",
              o.n, o.size, o.size, shards.size(), shard_bytes / 1e6, o.batch, classes, pb::cpus_text(cpus).c_str(),
              std::thread::hardware_concurrency(), load_average().c_str());
  std::fflush(stdout);

  // The one-shard runs first (each side: small, then full), so both of a
  // side's runs see the machine in a similar state.
  const long long per_shard = (o.n + std::min<long long>(8, o.n) - 1) / std::min<long long>(8, o.n);
  const bool steady = o.steady && shards.size() > 1;
  CatlipSide cat_small;
  if (steady) cat_small = run_catlip(self, dir, "catlip-small", bench::toml_list({shards[0]}), vocab, classes, o, cpus);
  CatlipSide cat = run_catlip(self, dir, "catlip", urls, vocab, classes, o, cpus);
  const bool cat_ok = cat.child.rc == 0 && cat.samples == o.n;

  // 4. The peers on the same shards and vocabulary.
  const bool ran_peers = !a.has("no-peers") && !a.has("no-baseline");
  std::vector<PeerResult> peers, peers_small;
  const std::string script = pb::find_python_script(a.get("script"), exe_dir, "bench_peers.py");
  const std::vector<std::string> peer_args = {"--task", "pipeline", "--vocab", vocab, "--batch",
                                              std::to_string(o.batch), "--workers", std::to_string(o.workers),
                                              "--size", "224", "--seed", std::to_string(o.seed)};
  if (ran_peers && steady) {
    fs::create_directories(dir + "/small");
    peers_small = pb::run_peers(python, script, peer_args, {shards[0]}, dir + "/small", cpus,
                                cat_small.samples > 0 ? cat_small.samples : per_shard);
  }
  if (ran_peers) peers = pb::run_peers(python, script, peer_args, shards, dir, cpus, o.n);
  print_results(cat, peers, o, python, ran_peers);
  if (steady) print_steady(cat, cat_small, peers, peers_small, cat_small.samples > 0 ? cat_small.samples : per_shard);
  std::printf("load average at the end: %s\n", load_average().c_str());
  if (keep) std::printf("kept in %s (graph: %s/pipeline.toml)\n", dir.c_str(), dir.c_str());
  if (cat.child.rc != 0)
    return fail("the catlip run failed (exit " + std::to_string(cat.child.rc) + ")", dir + "/catlip.log");
  if (!cat_ok) return kFailed;
  for (const PeerResult& p : peers)
    if (p.state == PeerResult::kFailed) return kFailed;
  return kOk;
}

}  // namespace

CATLIP_COMMAND("bench pipeline",
               "Samples per CPU-second of the whole input side vs WebDataset+DataLoader, SPDL, DALI CPU",
               cmd_bench_pipeline);
