// Runs the ObjectiveSteps (bench_objectives.h): on one rank in this
// process, or as --ranks N processes of the bench over c10d Gloo, and the
// command-line options the two benches share.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "bench_objectives.h"
#include "catlip/model/model_io.h"
#include "catlip/train/data_parallel.h"
#include "cli.h"

namespace catlip::bench::objectives {

using train::DataParallel;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

namespace {

// The distinct objectives of `kinds`, in order of first appearance.
std::vector<std::string> objectives_of(const std::vector<Kind>& kinds) {
  std::vector<std::string> out;
  for (auto& k : kinds)
    if (std::find(out.begin(), out.end(), k.objective) == out.end()) out.push_back(k.objective);
  return out;
}

torch::Device rank_device(const Spec& s, int rank) {
  torch::Device d = model::resolve_device(s.device);
  if (d.is_cuda() && s.ranks > 1) return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(rank));
  return d;
}

std::string quote(const std::string& a) {
  std::string q = "'";
  for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

void run_points(const Spec& s, const std::vector<Kind>& kinds, int rank,
                const std::map<std::string, DataParallel*>& dps,
                const std::function<void(int64_t, const Batch&, Records&)>& sink) {
  const torch::Device device = rank_device(s, rank);
  std::map<std::string, std::unique_ptr<ObjectiveStep>> steps;
  for (auto& name : objectives_of(kinds)) {
    auto st = make_objective_step(name, s, device);
    if (auto it = dps.find(name); it != dps.end() && it->second) {
      it->second->attach(st->params());
      it->second->broadcast_from_rank0(st->params(), name + " weights");
    }
    steps[name] = std::move(st);
  }
  auto dp_of = [&](const std::string& name) -> DataParallel* {
    auto it = dps.find(name);
    return it == dps.end() ? nullptr : it->second;
  };
  for (int64_t B : s.batches) {
    Batch b = make_batch(s, B, rank, device);
    Records out;
    for (int i = 0; i < s.warmup + s.steps; ++i)
      for (auto& k : kinds) {
        DataParallel* dp = dp_of(k.objective);
        // Ranks start each step aligned (untimed), as the trainer's "have a
        // batch" agreement before every step.
        if (dp) dp->all_true(true);
        Rec r = steps[k.objective]->step(b, dp, k.split);
        if (i >= s.warmup) out[k.key].push_back(r);
      }
    sink(B, b, out);
  }
}

int rank_main(const Spec& s, const std::vector<Kind>& kinds, int rank, const std::vector<std::string>& endpoints) {
  at::set_num_threads(s.threads_per_rank());
  const auto names = objectives_of(kinds);
  if (endpoints.size() != names.size())
    throw std::invalid_argument("--endpoints: " + std::to_string(names.size()) + " needed, " +
                                std::to_string(endpoints.size()) + " given");
  std::vector<std::unique_ptr<DataParallel>> groups;
  std::map<std::string, DataParallel*> dps;
  for (size_t k = 0; k < names.size(); ++k) {
    train::DistOptions o;
    o.rank = rank;
    o.world_size = s.ranks;
    o.endpoint = endpoints[k];
    o.timeout_s = 600;
    o.bucket_mb = 5;  // the trainer's default
    groups.push_back(std::make_unique<DataParallel>(o, rank_device(s, rank)));
    dps[names[k]] = groups.back().get();
  }
  // "obj-rec B KEY fields..." per timed step.
  run_points(s, kinds, rank, dps, [](int64_t B, const Batch&, Records& out) {
    for (auto& [key, recs] : out)
      for (auto& r : recs) {
        std::printf("obj-rec %lld %s", (long long)B, key.c_str());
        for (int k = 0; k < Rec::kFields; ++k) std::printf(" %.9g", r.get(k));
        std::printf("\n");
      }
    std::fflush(stdout);
  });
  return cli::kOk;
}

bool run_ranks(const Spec& s, const std::vector<Kind>& kinds, const std::string& command,
               const std::vector<std::string>& args, Results* res, std::string* err) {
  const auto names = objectives_of(kinds);
  std::vector<int> ports;
  for (size_t k = 0; k < names.size(); ++k) {
    int p = cli::free_loopback_port();
    if (p <= 0 || std::find(ports.begin(), ports.end(), p) != ports.end()) {
      *err = "no free TCP ports on 127.0.0.1";
      return false;
    }
    ports.push_back(p);
  }
  std::string eps;
  for (int p : ports) eps += (eps.empty() ? "" : ",") + std::string("tcp://127.0.0.1:") + std::to_string(p);
  std::string exe = "/proc/" + std::to_string(::getpid()) + "/exe";
  std::vector<FILE*> procs;
  for (int r = 0; r < s.ranks; ++r) {
    std::ostringstream cmd;
    cmd << quote(exe) << " " << command;
    for (auto& a : args) cmd << " " << quote(a);
    cmd << " --dp-rank " << r << " --endpoints " << eps << " 2>&1";
    FILE* p = ::popen(cmd.str().c_str(), "r");
    if (!p) {
      *err = "cannot start rank " + std::to_string(r);
      for (FILE* q : procs) ::pclose(q);
      return false;
    }
    procs.push_back(p);
  }
  // The ranks' outputs are read one after the other: each is a few kB (a
  // line per timed step), within a pipe's buffer, so no rank blocks on
  // writing while another waits for it in a collective.
  std::vector<Results> per_rank(size_t(s.ranks));
  bool ok = true;
  for (int r = 0; r < s.ranks; ++r) {
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, procs[size_t(r)])) > 0) text.append(buf, n);
    int rc = ::pclose(procs[size_t(r)]);
    std::istringstream lines(text);
    size_t found = 0;
    for (std::string line; std::getline(lines, line);) {
      std::istringstream f(line);
      std::string tag, key;
      long long B = 0;
      Rec rec;
      f >> tag >> B >> key;
      for (int k = 0; k < Rec::kFields; ++k) f >> *rec.field(k);
      if (tag != "obj-rec" || !f) continue;
      per_rank[size_t(r)][B][key].push_back(rec);
      ++found;
    }
    if (rc != 0 || found != s.batches.size() * kinds.size() * size_t(s.steps)) {
      ok = false;
      *err += "rank " + std::to_string(r) + " failed (exit status " + std::to_string(rc) + "):\n" + text;
    }
  }
  if (!ok) return false;
  for (int64_t B : s.batches)
    for (auto& k : kinds) {
      auto& dst = (*res)[B][k.key];
      for (int i = 0; i < s.steps; ++i) {
        Rec agg;
        for (int r = 0; r < s.ranks; ++r) {
          const Rec& x = per_rank[size_t(r)][B][k.key][size_t(i)];
          agg.total = std::max(agg.total, x.total);  // a step lasts as long as its slowest rank
          for (int f = 1; f < Rec::kFields; ++f) *agg.field(f) += x.get(f) / s.ranks;
        }
        dst.push_back(agg);
      }
    }
  return true;
}

// ---- options ----

const std::vector<std::string> kCommonOptions = {
    "batches", "steps", "warmup", "threads", "ranks", "vocab-size", "size", "dim", "depth", "heads", "image",
    "patch", "stem", "embed-dim", "text-width", "text-depth", "text-heads", "context", "tokenizer-vocab",
    "min-tokens", "device"};

bool parse_common(int argc, char** argv, int& i, Common* c) {
  Spec& s = c->spec;
  const std::string a = argv[i];
  auto next = [&]() -> std::string {
    if (i + 1 >= argc) throw std::invalid_argument("needs a value");
    return argv[++i];
  };
  auto num = [&](const std::string& v) {
    size_t used = 0;
    long long x = std::stoll(v, &used);
    if (used != v.size()) throw std::invalid_argument("'" + v + "' is not a whole number");
    return static_cast<int64_t>(x);
  };
  if (a == "--dp-rank") {  // internal: this process is one rank
    c->dp_rank = int(num(next()));
    return true;
  }
  if (a == "--endpoints") {  // internal: one group per objective
    std::stringstream ss(next());
    for (std::string e; std::getline(ss, e, ',');) c->endpoints.push_back(e);
    return true;
  }
  if (a == "--batches") c->batches = next();
  else if (a == "--steps") s.steps = int(num(next()));
  else if (a == "--warmup") s.warmup = int(num(next()));
  else if (a == "--threads") s.threads = int(num(next()));
  else if (a == "--ranks") s.ranks = int(num(next()));
  else if (a == "--vocab-size") s.vit.num_classes = num(next());
  else if (a == "--size") {
    std::string n = next();
    if (!model::vit_size(n, &s.vit)) throw std::invalid_argument("'" + n + "' is not tiny, small, base, large or huge");
  } else if (a == "--dim") s.vit.dim = num(next());
  else if (a == "--depth") s.vit.depth = num(next());
  else if (a == "--heads") s.vit.heads = num(next());
  else if (a == "--image") s.vit.image_size = num(next());
  else if (a == "--patch") s.vit.patch_size = num(next());
  else if (a == "--stem") s.vit.stem = next();
  else if (a == "--embed-dim") s.text.embed_dim = num(next());
  else if (a == "--text-width") s.text.width = num(next());
  else if (a == "--text-depth") s.text.depth = num(next());
  else if (a == "--text-heads") s.text.heads = num(next());
  else if (a == "--context") s.text.context_length = num(next());
  else if (a == "--tokenizer-vocab") s.text.vocab_size = num(next());
  else if (a == "--min-tokens") s.min_tokens = num(next());
  else if (a == "--device") s.device = next();
  else return false;
  c->pass.push_back(a);
  c->pass.push_back(argv[i]);
  return true;
}

std::vector<int64_t> parse_batches(const std::string& list) {
  std::vector<int64_t> out;
  std::stringstream bs(list);
  for (std::string item; std::getline(bs, item, ',');) {
    size_t used = 0;
    long long b = 0;
    try {
      b = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || b < 1)
      throw std::invalid_argument("--batches: '" + item + "' is not a batch size >= 1");
    out.push_back(b);
  }
  if (out.empty()) throw std::invalid_argument("--batches is empty");
  return out;
}

std::string check_spec(const Spec& s) {
  if (s.batches.empty()) return "--batches is empty";
  if (s.steps < 1 || s.warmup < 0 || s.threads < 1 || s.ranks < 1)
    return "--steps, --threads, --ranks must be >= 1, --warmup >= 0";
  if (s.vit.num_classes < 1) return "--vocab-size must be >= 1";
  if (s.text.vocab_size < 4) return "--tokenizer-vocab must be >= 4";
  if (s.min_tokens < 2) return "--min-tokens must be >= 2 (SOT and EOT)";
  if (s.device != "cpu" && s.device.rfind("cuda", 0) != 0) return "--device must be cpu or cuda[:N]";
  if (auto e = s.vit.check(); !e.empty()) return e;
  if (auto e = s.text.check(); !e.empty()) return e;
  return "";
}

}  // namespace catlip::bench::objectives
