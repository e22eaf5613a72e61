// `catlip bench objectives`: a training step of each of the four
// pre-training objectives train.catlip, train.clip, train.siglip and
// train.superclass on the very same image tower (catlip::model::ViT, same
// config, batch, threads), at each global batch size and rank count, with
// each step split into image tower, text tower (CLIP, SigLIP) and loss +
// communication, the per-sample FLOP ratio to CatLIP, and at several ranks
// the bytes each rank hands to collectives per step (counted, and checked
// against the formula). The steps are the trainer's: bench_objectives.h
// (what a step is and how it is split), bench_objectives_steps.cpp (the
// objectives; how FLOPs and bytes are counted), bench_objectives_run.cpp
// (taking turns, --ranks as processes over c10d Gloo).
//
// --batches are global: at R ranks each rank gets batch / R (so the same
// samples per step at every rank count; the contrastive losses see the same
// N). The objectives take turns at each point (after --warmup untimed
// rounds), so drifting load on a shared machine touches them alike; each
// point shows the fastest step (its breakdown adds up) and the median.
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "bench_objectives.h"
#include "cli.h"

namespace catlip::bench::objectives {
namespace {

int usage() {
  std::cout
      << "usage: catlip bench objectives [--objectives catlip,clip,siglip,superclass] [--batches 32,256,1024]\n"
         "                               [--ranks 1,2] [--steps 3] [--warmup 1] [--threads 2] [--json FILE]\n"
         "                               [--device cpu|cuda[:N]] [--size tiny|small|base|large|huge]\n"
         "                               [--dim 64] [--depth 2] [--heads 2] [--image 32] [--patch 4]\n"
         "                               [--stem patchify] [--vocab-size 2000] [--embed-dim 64]\n"
         "                               [--text-width 64] [--text-depth 2] [--text-heads 2] [--context 32]\n"
         "                               [--tokenizer-vocab 4096] [--min-tokens 12]\n\n"
         "Times a training step of CatLIP (ViT + --vocab-size synset head, BCE), CLIP (the same ViT\n"
         "projecting to --embed-dim + a text transformer, InfoNCE, features all-gathered), SigLIP\n"
         "(the same towers, sigmoid loss, texts round the ring of ranks) and SuperClass (the ViT with\n"
         "one output per BPE id of --tokenizer-vocab, online IDF, softmax CE), all with AdamW, in\n"
         "turns, at each global batch size and rank count. Each step is split into image tower,\n"
         "text tower and loss + communication (forward + backward each; opt = clipping + AdamW).\n"
         "Prints the fastest and median step, their ratio to CatLIP, the per-sample FLOP ratio,\n"
         "and at several ranks the bytes each rank hands to collectives per step (counted, and\n"
         "checked against the formula), then every point's ratios to CatLIP.\n\n"
         "  --batches LIST   global batch sizes; at R ranks each rank takes batch/R\n"
         "  --ranks LIST     rank counts; R > 1: R processes over c10d Gloo on 127.0.0.1 (NCCL with\n"
         "                   --device cuda, rank r on cuda:r), --threads/R threads each\n"
         "  --json FILE      write every figure as JSON (docs/benchmarks.md is made from it)\n\n"
         "At the papers' scale on GPUs (ViT-B/16 at 224, CLIP's text tower, 49408 BPE ids):\n"
         "  catlip bench objectives --device cuda --size base --image 224 --patch 16 --vocab-size 24320 \\\n"
         "    --embed-dim 512 --text-width 512 --text-depth 12 --text-heads 8 --context 77 \\\n"
         "    --tokenizer-vocab 49408 --batches 32,256,1024 --ranks 1,2\n";
  return cli::kOk;
}

void print_header(const Spec& s, const std::vector<std::string>& objectives, const std::vector<int>& ranks,
                  const std::vector<const ObjectiveStep*>& steps) {
  std::printf("bench objectives: %zu pre-training objectives, one training step each on the same image tower\n",
              objectives.size());
  std::printf("image tower: ViT dim %lld, depth %lld, heads %lld, image %lld, patch %lld (%lld tokens), stem %s\n",
              (long long)s.vit.dim, (long long)s.vit.depth, (long long)s.vit.heads, (long long)s.vit.image_size,
              (long long)s.vit.patch_size, (long long)(s.vit.num_patches() + 1), s.vit.stem.c_str());
  for (const ObjectiveStep* st : steps)
    std::printf("%s: %s; %lld parameters\n", st->title().c_str(), st->describe().c_str(),
                (long long)st->parameter_count());
  std::printf("text tower: width %lld, depth %lld, heads %lld, context %lld, embed %lld, tokenizer vocab %lld, "
              "captions of %lld..%lld tokens\n",
              (long long)s.text.width, (long long)s.text.depth, (long long)s.text.heads,
              (long long)s.text.context_length, (long long)s.text.embed_dim, (long long)s.text.vocab_size,
              (long long)std::min(s.min_tokens, s.text.context_length), (long long)s.text.context_length);
  std::string rs;
  for (int r : ranks) rs += (rs.empty() ? "" : ", ") + std::to_string(r);
  std::printf("all: AdamW + grad-norm clipping 1.0; fp32 on %s (LibTorch %s); %d step%s after %d warmup per point, "
              "objectives taking turns; ranks %s, %d thread%s in all\n",
              s.device.c_str(), TORCH_VERSION, s.steps, s.steps == 1 ? "" : "s", s.warmup, rs.c_str(), s.threads,
              s.threads == 1 ? "" : "s");
  std::printf("columns: the fastest step's parts (image, text, loss+comm = loss f+b with its collectives + the "
              "exposed gradient-allreduce wait; comm = the loss's collectives; opt = clipping + AdamW); FLOP ratio: "
              "per-sample forward matmuls of towers + similarity / CatLIP's\n\n");
  std::fflush(stdout);
}

struct Options {
  Common c;
  std::vector<int> ranks{1, 2};
  std::vector<std::string> objectives{"catlip", "clip", "siglip", "superclass"};
  std::string json_path;
};

// kOk, or kUsage after printing what is wrong.
int parse(int argc, char** argv, Options* o) {
  Spec& s = o->c.spec;
  s.vit.dim = 64;
  s.vit.depth = 2;
  s.vit.heads = 2;
  s.vit.image_size = 32;
  s.vit.patch_size = 4;  // 65 image tokens against 32 text tokens (ViT-B/16 and CLIP: 197 against 77)
  s.vit.num_classes = 2000;
  s.text.vocab_size = 4096;
  s.text.context_length = 32;
  s.text.width = 64;
  s.text.depth = 2;
  s.text.heads = 2;
  s.text.embed_dim = 64;
  std::string ranks_s, objectives_s;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    try {
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument("needs a value");
        return argv[++i];
      };
      if (a == "--ranks") ranks_s = next();
      else if (a == "--objectives") objectives_s = next();
      else if (a == "--json") o->json_path = next();
      else if (!parse_common(argc, argv, i, &o->c)) {
        auto known = kCommonOptions;
        known.insert(known.end(), {"objectives", "json"});
        std::cerr << "catlip bench objectives: unknown option " << a << cli::did_you_mean(a, known) << "\n";
        usage();
        return cli::kUsage;
      }
    } catch (const std::exception& e) {
      std::cerr << "bench objectives: " << a << ": " << e.what() << "\n";
      return cli::kUsage;
    }
  }
  std::string bad;
  if (!ranks_s.empty()) {
    o->ranks.clear();
    std::stringstream rs(ranks_s);
    for (std::string item; std::getline(rs, item, ',');) {
      size_t used = 0;
      int r = 0;
      try {
        r = std::stoi(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != item.size() || r < 1) bad = "--ranks: '" + item + "' is not a rank count >= 1";
      else o->ranks.push_back(r);
    }
    if (o->ranks.empty() && bad.empty()) bad = "--ranks is empty";
  }
  try {
    s.batches = parse_batches(o->c.batches.empty() ? "32,256,1024" : o->c.batches);
  } catch (const std::exception& e) {
    if (bad.empty()) bad = e.what();
  }
  if (!objectives_s.empty()) {
    o->objectives.clear();
    std::stringstream ss(objectives_s);
    for (std::string n; std::getline(ss, n, ',');) {
      bool known = false;
      for (const char* k : kObjectiveNames) known |= n == k;
      if (!known) bad = bad.empty() ? "--objectives: '" + n + "' is not catlip, clip, siglip or superclass" : bad;
      else if (std::find(o->objectives.begin(), o->objectives.end(), n) == o->objectives.end())
        o->objectives.push_back(n);
    }
  }
  // CatLIP is the reference: always there, first.
  o->objectives.erase(std::remove(o->objectives.begin(), o->objectives.end(), "catlip"), o->objectives.end());
  o->objectives.insert(o->objectives.begin(), "catlip");
  if (bad.empty()) bad = check_spec(s);
  if (bad.empty() && o->c.dp_rank >= 0 && (o->ranks.size() != 1 || o->ranks[0] < 2 || o->c.endpoints.empty()))
    bad = "--dp-rank needs a single --ranks >= 2 and --endpoints";
  for (int r : o->ranks)
    for (int64_t B : s.batches)
      if (bad.empty() && B % r != 0)
        bad = "--batches: " + std::to_string(B) + " does not split evenly over " + std::to_string(r) + " ranks";
  if (!bad.empty()) {
    std::cerr << "bench objectives: " << bad << "\n";
    return cli::kUsage;
  }
  return cli::kOk;
}

std::vector<Kind> kinds_of(const std::vector<std::string>& objectives) {
  std::vector<Kind> kinds;
  for (auto& n : objectives) kinds.push_back({n, n, true});
  return kinds;
}

// One rank count's records; false with *err.
bool run_rank_count(const Options& o, const Spec& s, Results* res, std::string* err) {
  const auto kinds = kinds_of(o.objectives);
  if (s.ranks == 1) {
    at::set_num_threads(s.threads);
    run_points(s, kinds, 0, {}, [&](int64_t B, const Batch&, Records& out) { (*res)[B] = out; });
    return true;
  }
  std::vector<std::string> args = o.c.pass;
  std::string objs;
  for (auto& n : o.objectives) objs += (objs.empty() ? "" : ",") + n;
  args.insert(args.end(), {"--objectives", objs, "--ranks", std::to_string(s.ranks)});
  return run_ranks(s, kinds, "bench objectives", args, res, err);
}

int cmd_bench_objectives(int argc, char** argv) {
  if (cli::wants_help(argc, argv)) return usage();
  Options o;
  if (int rc = parse(argc, argv, &o); rc != cli::kOk) return rc;
  const std::vector<int64_t> global = o.c.spec.batches;
  if (o.c.dp_rank >= 0) {
    Spec s = o.c.spec;
    s.ranks = o.ranks[0];
    for (auto& B : s.batches) B /= s.ranks;
    try {
      return rank_main(s, kinds_of(o.objectives), o.c.dp_rank, o.c.endpoints);
    } catch (const std::exception& e) {
      std::cerr << "bench objectives: rank " << o.c.dp_rank << ": " << e.what() << "\n";
      return cli::kFailed;
    }
  }
  try {
    // Probes: the models as every rank builds them, for the header, FLOPs and byte formulas.
    std::vector<std::unique_ptr<ObjectiveStep>> probes;
    std::vector<const ObjectiveStep*> steps;
    std::vector<std::string> titles;
    for (auto& n : o.objectives) {
      probes.push_back(make_objective_step(n, o.c.spec, torch::kCPU));
      steps.push_back(probes.back().get());
      titles.push_back(probes.back()->title());
    }
    print_header(o.c.spec, o.objectives, o.ranks, steps);
    std::vector<Point> all;
    for (int R : o.ranks) {
      Spec s = o.c.spec;
      s.ranks = R;
      for (auto& B : s.batches) B /= R;
      const int tpr = s.threads_per_rank();
      if (R > 1)
        std::printf("%d ranks (processes) x %d thread%s, c10d Gloo on 127.0.0.1; global batch = %d x per rank\n", R,
                    tpr, tpr == 1 ? "" : "s", R);
      else
        std::printf("1 rank x %d thread%s\n", s.threads, s.threads == 1 ? "" : "s");
      std::fflush(stdout);
      Results res;
      std::string err;
      if (!run_rank_count(o, s, &res, &err)) {
        std::cerr << "bench objectives: " << err << "\n";
        return cli::kFailed;
      }
      const int64_t padded = make_batch(s, s.batches.back(), 0, torch::kCPU).padded;
      auto pts = make_points(s, global, res, steps, padded);
      print_points(s, pts);
      all.insert(all.end(), pts.begin(), pts.end());
    }
    print_ratio_table(all, titles);
    if (!o.json_path.empty()) {
      if (!write_json(o.json_path, o.c.spec, o.objectives, all)) {
        std::cerr << "bench objectives: cannot write " << o.json_path << "\n";
        return cli::kFailed;
      }
      std::printf("wrote %s\n", o.json_path.c_str());
    }
  } catch (const std::exception& e) {
    std::cerr << "bench objectives: " << e.what() << "\n";
    return cli::kFailed;
  }
  return cli::kOk;
}

}  // namespace

// Inside the namespace: the unity build compiles it with the other benches.
CATLIP_COMMAND("bench objectives",
               "Time CatLIP, CLIP, SigLIP and SuperClass training steps on the same image tower, with ratios",
               cmd_bench_objectives);

}  // namespace catlip::bench::objectives
