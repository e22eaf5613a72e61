// catlip bench soak: a real input graph for many epochs under random faults.
// Synthetic shards -> text.labels x2 -> image.decode x2 -> testing.jsonl, as
// `catlip run` processes, while the bench kill -9s and pauses (SIGSTOP, then
// SIGCONT) random replicas of the restartable stages. It samples every
// process's resident memory twice a second, and at the end checks:
//   * every sample of every epoch reached the sink exactly once (the sink is
//     stateful, so the runtime drops re-sent duplicates before it);
//   * the restarts in summary.json match the kills it injected (a pause
//     shorter than the liveness timeout restarts nothing);
//   * memory is flat: each stage's RSS in the last tenth of the run against
//     the tenth after the first one (start-up excluded), epoch boundaries
//     included (WebDataset #365 is the failure users hit).
// The number of epochs is set from --minutes and a first, fault-free epoch.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "cli.h"
#include "peer_bench.h"

using namespace catlip::cli;
namespace pb = catlip::cli::peers;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Named, not anonymous: catlip-bench is a unity build, and the other benches
// have their own Options, kHelp, parse_options.
namespace bench_soak {

const char* kUsageLine =
    "usage: catlip bench soak [--minutes M] [--samples N] [--size P] [--fault-every-s S] [--pause-s P]\n"
    "                         [--seed S] [--out DIR]";

const char* kHelp =
    "\n\nRuns a real input graph for about M minutes under random faults and reports memory,\n"
    "restarts and samples lost or doubled:\n"
    "  shards.source (N synthetic P x P JPEGs with captions a epoch) -> text.labels x2 ->\n"
    "  image.decode x2 (RandomResizedCrop 224 + flip: 150 KB a sample)\n"
    "  -> testing.jsonl (stateful: the runtime drops re-sent duplicates before it)\n"
    "Every S seconds a random replica of labels or decode gets kill -9 (2 in 3) or a pause of\n"
    "P seconds (SIGSTOP, then SIGCONT; below the liveness timeout, so no restart). Resident\n"
    "memory of every process is sampled twice a second while every stage runs. The epochs are\n"
    "set from M and fault-free runs of 1 and 4 epochs. Exit 0 only when every sample of every\n"
    "epoch arrived exactly once, the restarts equal the kills, and no stage's memory grew by\n"
    "more than 10% (and 8 MB) from the second tenth of the run to the last. Faults stop at 85% of the expected length, so none\n"
    "hits a replica draining at the end.\n\n"
    "  --minutes M        soak length (default 10; fractions allowed)\n"
    "  --samples N        samples per epoch (default 2000)\n"
    "  --size P           side of the synthetic images (default 256)\n"
    "  --fault-every-s S  seconds between faults (default 4)\n"
    "  --pause-s P        length of a pause (default 1)\n"
    "  --seed S           fault schedule seed (default 0)\n"
    "  --out DIR          keep shards, graph, run dir and logs in DIR (default: a temporary\n"
    "                     directory, removed at exit)\n";

struct Options {
  double minutes = 10, fault_every_s = 4, pause_s = 1;
  long long samples = 2000, size = 256, seed = 0;
};

std::string read_all(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The run's processes: the supervisor and its workers, whose argv[0] is
// "catlip:<stage>/<replica>" and whose command line names the run dir.
struct Proc {
  int pid;
  std::string stage;  // "supervisor" or the stage name
};

std::vector<Proc> run_processes(pid_t supervisor, const std::string& run_dir) {
  std::vector<Proc> out = {{int(supervisor), "supervisor"}};
  const std::string needle = std::string(" --run-dir ") + run_dir + " ";
  for (auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::string cmd = read_all("/proc/" + name + "/cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.rfind("catlip:", 0) != 0 || cmd.find(needle) == std::string::npos) continue;
    const std::string tag = cmd.substr(7, cmd.find(' ') - 7);  // stage/replica
    out.push_back({std::stoi(name), tag.substr(0, tag.find('/'))});
  }
  return out;
}

double rss_mb(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  return 0;
}

std::string graph_toml(const std::string& urls, const std::string& vocab, long long epochs) {
  std::ostringstream g;
  g << "# catlip bench soak: a real input graph under random faults\n"
    << "[graph]\nname = \"bench-soak\"\nmax_restarts = 1000\n"
    << "[stages.read]\ntype = \"shards.source\"\nurls = " << urls << "\nepochs = " << epochs << "\nseed = 1\n"
    << "[stages.labels]\ntype = \"text.labels\"\ninputs = [\"read\"]\nreplicas = 2\nvocab = \"" << vocab << "\"\n"
    << "[stages.decode]\ntype = \"image.decode\"\ninputs = [\"labels\"]\nreplicas = 2\nmode = \"train\"\nsize = 224\n"
    << "[stages.sink]\ntype = \"testing.jsonl\"\ninputs = [\"decode\"]\nfields = [\"labels\"]\n";
  return g.str();
}

// Every (epoch, url, key) the sink wrote, counted.
struct Delivery {
  std::map<long long, std::map<std::string, int>> per_epoch;  // epoch -> "url\tkey" -> times
  long long lines = 0;
};

Delivery read_delivery(const std::string& file) {
  Delivery d;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    auto field = [&](const char* name) {
      auto at = line.find(std::string("\"") + name + "\":");
      if (at == std::string::npos) return std::string();
      at += std::string(name).size() + 3;
      if (line[at] == '"') return line.substr(at + 1, line.find('"', at + 1) - at - 1);
      return line.substr(at, line.find_first_of(",}", at) - at);
    };
    ++d.lines;
    d.per_epoch[std::atoll(field("epoch").c_str())][field("url") + "\t" + field("key")]++;
  }
  return d;
}

int restarts_of(const std::string& run_dir, const std::string& stage) {
  return int(summary_figure(run_dir, stage, "restarts", -1));
}

struct Sample {
  double t;
  std::map<std::string, double> rss;  // stage -> largest replica's RSS (MB)
};

// The largest RSS of a stage over tenth k (0..9) of the samples; -1 when
// none of them saw the stage.
double peak(const std::vector<Sample>& s, const std::string& stage, int k) {
  double m = -1;
  const size_t from = s.size() * k / 10, to = s.size() * (k + 1) / 10;
  for (size_t i = from; i < to; ++i)
    if (s[i].rss.count(stage)) m = std::max(m, s[i].rss.at(stage));
  return m;
}

Options parse_options(const Args& a) {
  Options o;
  o.minutes = a.get_double("minutes", o.minutes);
  o.samples = a.get_int("samples", o.samples);
  o.size = a.get_int("size", o.size);
  o.fault_every_s = a.get_double("fault-every-s", o.fault_every_s);
  o.pause_s = a.get_double("pause-s", o.pause_s);
  o.seed = a.get_int("seed", o.seed);
  return o;
}

// The soak run itself: spawns it, samples memory, injects faults until it
// ends. Returns its exit code; fills samples and the faults done per stage.
// Faults stop after `fault_until` seconds, so none hits a replica that is
// already draining at the end of the run.
int soak_run(const std::string& self, const std::string& dir, const Options& o, double fault_until,
             std::vector<Sample>& samples, std::map<std::string, int>& kills, std::map<std::string, int>& pauses,
             double& wall) {
  const std::string run_dir = dir + "/run-soak";
  auto t0 = Clock::now();
  pid_t sup = pb::spawn_child({self, "run", dir + "/soak.toml", "--run-dir", run_dir, "--progress", "plain"},
                              dir + "/soak.log");
  if (sup < 0) return -1;
  std::mt19937_64 rng(static_cast<uint64_t>(o.seed));
  double next_fault = o.fault_every_s;
  int st = 0;
  for (;;) {
    pid_t r = ::waitpid(sup, &st, WNOHANG);
    if (r == sup) break;
    const double t = std::chrono::duration<double>(Clock::now() - t0).count();
    Sample s{t, {}};
    std::vector<Proc> procs = run_processes(sup, run_dir);
    for (auto& p : procs) s.rss[p.stage] = std::max(s.rss[p.stage], rss_mb(p.pid));
    // Only while every stage runs: start-up and shutdown are not the run.
    if (s.rss.size() == 5) samples.push_back(s);
    if (t >= next_fault && t < fault_until) {
      next_fault += o.fault_every_s;
      std::vector<Proc> victims;
      for (auto& p : procs)
        if (p.stage == "labels" || p.stage == "decode") victims.push_back(p);
      if (!victims.empty()) {
        const Proc v = victims[rng() % victims.size()];
        if (rng() % 3 != 2) {
          if (::kill(v.pid, SIGKILL) == 0) kills[v.stage]++;
        } else if (::kill(v.pid, SIGSTOP) == 0) {
          pauses[v.stage]++;
          std::this_thread::sleep_for(std::chrono::duration<double>(o.pause_s));
          ::kill(v.pid, SIGCONT);
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  wall = std::chrono::duration<double>(Clock::now() - t0).count();
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int cmd_bench_soak(int argc, char** argv) {
  Args a(argc, argv, {"help"});
  if (a.has("help")) {
    std::cout << kUsageLine << kHelp;
    return kOk;
  }
  if (int rc = check_syntax(a, Syntax{"catlip bench soak", kUsageLine,
                                      {"minutes", "samples", "size", "fault-every-s", "pause-s", "seed", "out"}, 0, 0}))
    return rc;
  Options o;
  try {
    o = parse_options(a);
  } catch (const std::exception&) {
    std::cerr << "catlip bench soak: numeric option expected\n" << kUsageLine << "\n";
    return kUsage;
  }
  if (!(o.minutes > 0) || o.samples < 8 || o.size < 32 || o.size > 4096 || !(o.fault_every_s >= 1) || !(o.pause_s > 0) || o.pause_s >= 10) {
    std::cerr << "catlip bench soak: need --minutes > 0, --samples >= 8, 32 <= --size <= 4096, --fault-every-s >= 1, "
                 "0 < --pause-s < 10\n"
              << kUsageLine << "\n";
    return kUsage;
  }
  const std::string self = catlip_front_end();
  // Work directory: --out (kept) or a temporary one (removed at exit).
  bench::WorkDir work;
  if (std::string error; !work.open(a.get("out"), "soak", error)) {
    std::cerr << "catlip bench soak: " << error << "\n";
    return kFailed;
  }
  const std::string dir = work.path();
  const bool keep = work.kept();
  auto fail = [&](const std::string& what, const std::string& log) {
    std::cerr << "catlip bench soak: " << what << "\n" << pb::tail(pb::slurp(log)) << "\n";
    return kFailed;
  };

  double bytes = 0;
  const std::vector<std::string> shards = bench::write_shards(self, dir, o.samples, o.size, bytes);
  if (shards.empty()) return fail("generating the shards failed", dir + "/synth.log");
  const std::string urls = bench::toml_list(shards), vocab = dir + "/vocab.tsv";
  if (!bench::write_vocab(self, dir, urls, vocab)) return fail("the vocabulary graph failed", dir + "/vocab.log");

  // Fault-free runs of 1 and 4 epochs set the number of epochs: the time of
  // an epoch beyond start-up is a third of their difference.
  pb::Child cal[2];
  for (int i = 0; i < 2; ++i) {
    const std::string name = "calibrate-" + std::to_string(i == 0 ? 1 : 4);
    std::ofstream(dir + "/" + name + ".toml") << graph_toml(urls, vocab, i == 0 ? 1 : 4);
    cal[i] = pb::run_child({self, "run", dir + "/" + name + ".toml", "--run-dir", dir + "/run-" + name, "--quiet"},
                           dir + "/" + name + ".log");
    if (cal[i].rc != 0)
      return fail("the fault-free run " + name + " failed (exit " + std::to_string(cal[i].rc) + ")",
                  dir + "/" + name + ".log");
  }
  const double epoch_s = std::max(0.05, (cal[1].wall - cal[0].wall) / 3), startup_s = std::max(0.0, cal[0].wall - epoch_s);
  const long long epochs = std::max<long long>(2, (long long)((o.minutes * 60 - startup_s) / epoch_s));
  std::ofstream(dir + "/soak.toml") << graph_toml(urls, vocab, epochs);
  const double expected_s = startup_s + epochs * epoch_s;
  std::printf("catlip bench soak: %lld samples a epoch (%zu shards), %lld epochs (a fault-free epoch takes %.2f s "
              "after %.1f s of start-up: about %.1f minutes), a fault every %.0f s (kill -9, or a %.1f s pause, of a "
              "labels or decode replica)\n",
              o.samples, shards.size(), epochs, epoch_s, startup_s, expected_s / 60, o.fault_every_s, o.pause_s);
  std::fflush(stdout);

  std::vector<Sample> samples;
  std::map<std::string, int> kills, pauses;
  double wall = 0;
  const int rc = soak_run(self, dir, o, 0.85 * expected_s, samples, kills, pauses, wall);
  const std::string run_dir = dir + "/run-soak";

  // Memory over time: one row a tenth of the run.
  const std::vector<std::string> stages = {"supervisor", "read", "labels", "decode", "sink"};
  std::printf("\nresident memory, MB (largest replica of each stage; %zu samples, two a second while every stage ran, over %.0f s):\n%8s",
              samples.size(), wall, "until s");
  for (auto& s : stages) std::printf(" %11s", s.c_str());
  std::printf("\n");
  for (int k = 0; k < 10; ++k) {
    const size_t last = std::min(samples.size(), samples.size() * (k + 1) / 10);
    if (last == 0 || last <= samples.size() * k / 10) continue;
    std::printf("%8.0f", samples[last - 1].t);
    for (auto& s : stages) {
      const double m = peak(samples, s, k);
      if (m < 0) std::printf(" %11s", "-");
      else std::printf(" %11.1f", m);
    }
    std::printf("\n");
  }
  bool flat = samples.size() >= 10;
  std::printf("memory growth (the last tenth's peak against the second tenth's):");
  for (auto& s : stages) {
    const double early = peak(samples, s, 1), late = peak(samples, s, 9);
    const bool grew = early < 0 || late < 0 || (late > early * 1.10 && late - early > 8);
    flat = flat && !grew;
    std::printf(" %s %+.1f MB%s", s.c_str(), late - early, grew ? " (GREW or unseen)" : "");
  }
  std::printf("%s\n", samples.size() >= 10 ? "" : "  <- under 10 memory samples: run longer");

  // Delivery: every sample of every epoch exactly once.
  const Delivery d = read_delivery(run_dir + "/samples.jsonl");
  long long lost = 0, doubled = 0, complete = 0;
  for (long long e = 0; e < epochs; ++e) {
    auto it = d.per_epoch.find(e);
    const long long distinct = it == d.per_epoch.end() ? 0 : (long long)it->second.size();
    lost += std::max(0LL, o.samples - distinct);
    if (it != d.per_epoch.end())
      for (auto& [id, n] : it->second) doubled += n - 1;
    complete += distinct == o.samples;
  }
  std::printf("samples: %lld lines for %lld epochs x %lld; %lld of %lld epochs complete, %lld lost, %lld doubled\n",
              d.lines, epochs, o.samples, complete, epochs, lost, doubled);

  // Faults against restarts.
  bool restarts_match = true;
  for (const char* s : {"labels", "decode"}) {
    const int r = restarts_of(run_dir, s);
    restarts_match = restarts_match && r == kills[s];
    std::printf("%-7s %3d kills, %3d pauses, %3d restarts%s\n", s, kills[s], pauses[s], r,
                r == kills[s] ? "" : "  <- restarts differ from kills");
  }
  const bool ok = rc == 0 && lost == 0 && doubled == 0 && restarts_match && flat;
  std::printf("run exit %d; %s\n", rc, ok ? "soak passed" : "SOAK FAILED");
  if (keep) std::printf("kept in %s (run dir %s)\n", dir.c_str(), run_dir.c_str());
  if (rc != 0) return fail("the soak run failed (exit " + std::to_string(rc) + ")", dir + "/soak.log");
  return ok ? kOk : kFailed;
}

}  // namespace bench_soak

CATLIP_COMMAND("bench soak", "A real graph for N minutes under random kills and pauses: memory, restarts, lost or doubled",
               bench_soak::cmd_bench_soak);
