// `catlip bench clip`: a CatLIP training step against a CLIP training step on
// the very same image tower (catlip::model::ViT, same config, batch and
// threads), for a list of batch sizes (per rank). The CatLIP paper reports
// CLIP-level accuracy with 2.7x less pre-training time; per-sample compute
// explains only ~1.2x of it, the rest being the system (text tower,
// similarity matrices, feature gather across ranks). This bench measures
// those parts here; `catlip bench objectives` does the same for all four
// objectives (SigLIP and SuperClass too) and is the one to extend.
//
// The steps are bench objectives' (bench_objectives.h): CatLIP's and
// CLIP's ObjectiveSteps, each timed as one graph ("CatLIP s/step", "CLIP
// s/step"), and CLIP's again split at the towers' outputs, whose parts are
// the breakdown (image f+b, text f+b, loss+sim f+b with the feature gather,
// opt = clipping + AdamW + the exposed allreduce wait). The split step's
// total is printed beside the unsplit one as a check. The three take turns
// at each batch size (after --warmup untimed rounds), so drifting load on a
// shared machine touches them alike. The table shows each point's fastest
// step (least disturbed by other processes; the breakdown is that of the
// fastest split step, so its parts add up) and the ratio of the medians.
//
// `--ranks 2`: two processes of this binary over c10d Gloo (one
// DataParallel group per model), threads/ranks threads each, the batch list
// per rank (global batch = ranks x per-rank). CatLIP gets the overlapped
// gradient allreduce; CLIP the same plus the feature gather with gradient,
// whose seconds are the "gather" column. A step lasts as long as its
// slowest rank (max over ranks per step); parts are averaged over ranks.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "bench_objectives.h"
#include "cli.h"

// In its own namespace: the unity build compiles it with the other benches.
namespace catlip::bench::clip {

using namespace catlip::bench::objectives;
using catlip::model::ViTConfig;

namespace {

const std::vector<Kind> kKinds = {{"catlip", "catlip", false}, {"clip", "clip", false}, {"split", "clip", true}};

// ---- the report ----

struct Row {
  int64_t B;
  double ratio, ratio_med, share;
};

void print_table_header(const Spec& s) {
  const bool dp = s.ranks > 1;
  std::printf("%6s", "batch");
  if (dp) std::printf(" %7s", "global");
  std::printf(" %8s %8s %7s %7s %8s %8s %9s %7s %7s", "CatLIP", "CLIP", "CLIP/", "ratio", "img f+b", "text f+b",
              "loss+sim", "opt", "loss");
  if (dp) std::printf(" %8s %9s %9s", "gather", "allreduce", "allreduce");
  std::printf(" %8s\n", "split");
  std::printf("%6s", "");
  if (dp) std::printf(" %7s", "");
  std::printf(" %8s %8s %7s %7s %8s %8s %9s %7s %7s", "s/step", "s/step", "CatLIP", "medians", "s", "s", "f+b s", "s",
              "share %");
  if (dp) std::printf(" %8s %9s %9s", "s", "CatLIP s", "CLIP s");
  std::printf(" %8s\n", "s/step");
  std::fflush(stdout);
}

Row print_row(const Spec& s, int64_t B, const Records& k) {
  const bool dp = s.ranks > 1;
  {
    auto totals = [&](const std::string& kind) {
      std::vector<double> v;
      for (auto& r : k.at(kind)) v.push_back(r.total);
      return v;
    };
    auto fastest = [&](const std::string& kind) {
      const auto& v = k.at(kind);
      return *std::min_element(v.begin(), v.end(), [](const Rec& a, const Rec& b) { return a.total < b.total; });
    };
    auto med_of = [&](const std::string& kind, double Rec::*f) {
      std::vector<double> v;
      for (auto& r : k.at(kind)) v.push_back(r.*f);
      return median(v);
    };
    Rec cat = fastest("catlip"), clip = fastest("clip"), sp = fastest("split");
    double ratio = clip.total / cat.total, ratio_med = median(totals("clip")) / median(totals("catlip"));
    double share = 100 * sp.loss / sp.total;
    std::printf("%6lld", (long long)B);
    if (dp) std::printf(" %7lld", (long long)(B * s.ranks));
    std::printf(" %8.4f %8.4f %7.3f %7.3f %8.4f %8.4f %9.4f %7.4f %7.2f", cat.total, clip.total, ratio, ratio_med,
                sp.image, sp.text, sp.loss, sp.opt, share);
    if (dp)
      std::printf(" %8.4f %9.4f %9.4f", med_of("clip", &Rec::comm), med_of("catlip", &Rec::allreduce),
                  med_of("clip", &Rec::allreduce));
    std::printf(" %8.4f\n", sp.total);
    std::fflush(stdout);
    return {B, ratio, ratio_med, share};
  }
}

void print_summary(const Spec& s, const std::vector<Row>& rows, double mean_tokens, int64_t padded_tokens) {
  const bool dp = s.ranks > 1;

  // Per-sample forward FLOPs (the matmuls; a training step is ~3x).
  ViTConfig img_tower = s.vit;
  img_tower.num_classes = s.text.embed_dim;
  const double f_cat = s.vit.forward_flops(), f_img = img_tower.forward_flops(),
               f_txt = s.text.forward_flops(padded_tokens);
  std::printf("\nper-sample forward FLOPs: CatLIP %.1f M (ViT + %lld-way head); CLIP %.1f M (image %.1f M + text "
              "%.1f M at the padded %lld tokens; %.1f M at the mean %.1f tokens)\n",
              f_cat / 1e6, (long long)s.vit.num_classes, (f_img + f_txt) / 1e6, f_img / 1e6, f_txt / 1e6,
              (long long)padded_tokens, s.text.forward_flops(int64_t(std::lround(mean_tokens))) / 1e6, mean_tokens);
  const int64_t last_global = s.batches.back() * s.ranks;
  std::printf("similarity matrices add 2 x 2 x %lld x %lld FLOPs per sample at batch %lld (%.3f%% of CLIP's)\n",
              (long long)last_global, (long long)s.text.embed_dim, (long long)s.batches.back(),
              100.0 * 4.0 * double(last_global) * double(s.text.embed_dim) / (f_img + f_txt));
  const Row &first = rows.front(), &last = rows.back();
  std::printf("per-sample FLOP ratio CLIP/CatLIP: %.3f; measured step-time ratio CLIP/CatLIP: %.3f at batch %lld .. "
              "%.3f at batch %lld (fastest steps), %.3f .. %.3f (medians)\n",
              (f_img + f_txt) / f_cat, first.ratio, (long long)first.B, last.ratio, (long long)last.B, first.ratio_med,
              last.ratio_med);
  std::printf("loss+similarity share of the CLIP step: %.2f%% at batch %lld -> %.2f%% at batch %lld (%.2fx)%s\n",
              first.share, (long long)first.B, last.share, (long long)last.B,
              first.share > 0 ? last.share / first.share : 0.0,
              dp ? "; includes the feature gather" : "");
}

int usage() {
  std::cout
      << "usage: catlip bench clip [--batches 32,64,128,256,512,1024] [--steps 3] [--warmup 1] [--threads 2]\n"
         "                         [--ranks 1] [--vocab-size 2000] [--dim 128] [--depth 4] [--heads 4]\n"
         "                         [--image 64] [--patch 8] [--stem patchify] [--embed-dim 128]\n"
         "                         [--text-width 128] [--text-depth 4] [--text-heads 4] [--context 32]\n"
         "                         [--tokenizer-vocab 4096] [--min-tokens 12] [--size NAME] [--device cpu|cuda]\n\n"
         "Times a CatLIP training step (ViT with a --vocab-size synset head, BCE, AdamW) and a\n"
         "CLIP step on the same ViT (+ text transformer, InfoNCE, AdamW) at each batch size,\n"
         "with CLIP's time split into image tower, text tower and loss + similarity matrix\n"
         "(forward + backward each). Prints the fastest steps, the CLIP/CatLIP ratio (fastest\n"
         "and medians), the loss share and the per-sample FLOP ratio.\n\n"
         "--ranks N: N processes of this binary over c10d Gloo on 127.0.0.1, threads/N threads\n"
         "each, --batches per rank; CatLIP allreduces gradients, CLIP also gathers features\n"
         "with gradient (the gather column). `catlip bench objectives` adds SigLIP and SuperClass.\n";
  return catlip::cli::kOk;
}

int cmd_bench_clip(int argc, char** argv) {
  if (catlip::cli::wants_help(argc, argv)) return usage();
  Common c;
  Spec& s = c.spec;
  s.batches = {32, 64, 128, 256, 512, 1024};
  s.vit.dim = 128;
  s.vit.depth = 4;
  s.vit.heads = 4;
  s.vit.image_size = 64;
  s.vit.patch_size = 8;
  s.vit.stem = "patchify";
  s.vit.num_classes = 2000;
  s.text.vocab_size = 4096;
  s.text.context_length = 32;
  s.text.width = 128;
  s.text.depth = 4;
  s.text.heads = 4;
  s.text.embed_dim = 128;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    try {
      if (!parse_common(argc, argv, i, &c)) {
        std::cerr << "catlip bench clip: unknown option " << a << catlip::cli::did_you_mean(a, kCommonOptions)
                  << "\n";
        usage();
        return catlip::cli::kUsage;
      }
    } catch (const std::exception& e) {
      std::cerr << "bench clip: " << a << ": " << e.what() << "\n";
      return catlip::cli::kUsage;
    }
  }
  std::string bad;
  try {
    if (!c.batches.empty()) s.batches = parse_batches(c.batches);
  } catch (const std::exception& e) {
    bad = e.what();
  }
  if (bad.empty()) bad = check_spec(s);
  if (bad.empty() && c.dp_rank >= 0 && (s.ranks < 2 || c.endpoints.empty()))
    bad = "--dp-rank needs --ranks >= 2 and --endpoints";
  if (!bad.empty()) {
    std::cerr << "bench clip: " << bad << "\n";
    return catlip::cli::kUsage;
  }
  if (c.dp_rank >= 0) {
    try {
      return rank_main(s, kKinds, c.dp_rank, c.endpoints);
    } catch (const std::exception& e) {
      std::cerr << "bench clip: rank " << c.dp_rank << ": " << e.what() << "\n";
      return catlip::cli::kFailed;
    }
  }

  // The header: what runs, on what.
  {
    auto cat = make_objective_step("catlip", s, torch::kCPU);
    auto clip = make_objective_step("clip", s, torch::kCPU);
    const int tpr = s.threads_per_rank();
    std::printf("bench clip: CatLIP vs CLIP training step on the same image tower\n");
    std::printf("image tower: ViT dim %lld, depth %lld, heads %lld, image %lld, patch %lld (%lld tokens), stem %s\n",
                (long long)s.vit.dim, (long long)s.vit.depth, (long long)s.vit.heads, (long long)s.vit.image_size,
                (long long)s.vit.patch_size, (long long)(s.vit.num_patches() + 1), s.vit.stem.c_str());
    std::printf("CatLIP: head %lld synsets, multi-hot BCE; %lld parameters\n", (long long)s.vit.num_classes,
                (long long)cat->parameter_count());
    std::printf("CLIP: embed %lld; text width %lld, depth %lld, heads %lld, context %lld, tokenizer vocab %lld, "
                "captions of %lld..%lld tokens; symmetric InfoNCE; %lld parameters\n",
                (long long)s.text.embed_dim, (long long)s.text.width, (long long)s.text.depth,
                (long long)s.text.heads, (long long)s.text.context_length, (long long)s.text.vocab_size,
                (long long)std::min(s.min_tokens, s.text.context_length), (long long)s.text.context_length,
                (long long)clip->parameter_count());
    std::printf("both: AdamW + grad-norm clipping 1.0; fp32 on %s (LibTorch %s); %d step%s after %d warmup per "
                "point, taking turns\n",
                s.device.c_str(), TORCH_VERSION, s.steps, s.steps == 1 ? "" : "s", s.warmup);
    if (s.ranks > 1)
      std::printf("%d ranks (processes) x %d thread%s, c10d Gloo on 127.0.0.1, batches per rank; CatLIP: "
                  "gradient allreduce; CLIP: + feature gather with gradient\n",
                  s.ranks, tpr, tpr == 1 ? "" : "s");
    else
      std::printf("1 rank x %d thread%s\n", s.threads, s.threads == 1 ? "" : "s");
    std::printf("fastest step per point; breakdown from the fastest split CLIP step (its total in the last column); "
                "opt = clipping + AdamW%s\n\n",
                s.ranks > 1 ? " + exposed allreduce wait" : "");
    std::fflush(stdout);
  }

  std::vector<Row> rows;
  double mean_tokens = 0;
  int64_t padded = 0;
  Results res;
  try {
    if (s.ranks > 1) {
      std::string err;
      if (!run_ranks(s, kKinds, "bench clip", c.pass, &res, &err)) {
        std::cerr << "bench clip: " << err << "\n";
        return catlip::cli::kFailed;
      }
    } else {
      at::set_num_threads(s.threads);
      print_table_header(s);
      run_points(s, kKinds, 0, {}, [&](int64_t B, const Batch&, Records& out) {
        res[B] = out;
        rows.push_back(print_row(s, B, out));  // as each batch size completes
      });
    }
  } catch (const std::exception& e) {
    std::cerr << "bench clip: " << e.what() << "\n";
    return catlip::cli::kFailed;
  }
  if (s.ranks > 1) print_table_header(s);
  for (int64_t B : s.batches) {
    Batch b = make_batch(s, B, 0, torch::kCPU);  // rank 0's captions (for the token counts)
    mean_tokens += b.mean_tokens / double(s.batches.size());
    padded = std::max(padded, b.padded);
    if (s.ranks > 1) rows.push_back(print_row(s, B, res.at(B)));
  }
  print_summary(s, rows, mean_tokens, padded);
  return catlip::cli::kOk;
}

}  // namespace

CATLIP_COMMAND("bench clip", "Time a CatLIP vs a CLIP training step on the same image tower", cmd_bench_clip);

}  // namespace catlip::bench::clip
