// `catlip bench clip`: a CatLIP training step against a CLIP training step on
// the very same image tower (catlip::model::ViT, same config, batch and
// threads), for a list of batch sizes. The CatLIP paper reports CLIP-level
// accuracy with 2.7x less pre-training time; per-sample compute explains only
// ~1.2x of it, the rest being the system (text tower, similarity matrices,
// feature gather across ranks). This bench measures those parts here.
//
// The steps, exactly as the trainer's objectives do them:
//   CatLIP: ViT (head = V synsets) -> catlip_bce_loss on a multi-hot target
//           (multi_hot) -> backward -> clip_grad_norm(1) -> AdamW step.
//   CLIP:   ClipModel: encode_image (the same ViT, head = image projection)
//           and encode_text (TextTransformer on pad_tokens rows of 12..32
//           tokens: SOT, random ids, EOT = vocab-1), L2 normalise, clip_loss
//           (symmetric InfoNCE; with --ranks, against every rank's features
//           from DataParallel::gather_with_grad) -> backward ->
//           clip_grad_norm(1) -> AdamW step -> clamp_logit_scale.
// Both models and optimizers live side by side; for each batch size the two
// steps take turns (CatLIP, CLIP, CLIP split; after --warmup untimed rounds),
// so drifting load on a shared machine touches them alike.
//
// The CLIP breakdown comes from a third, "split" CLIP step that does the same
// work with the autograd graph cut at the towers' outputs:
//   image f  encode_image(x)                     -> img
//   text f   encode_text(ids)                    -> txt
//   loss f   normalise(img') and normalise(txt') of detached copies img',
//            txt' (leaves requiring grad), [gather], similarity + InfoNCE
//   loss b   loss.backward(): into img'.grad, txt'.grad and logit_scale
//            (with --ranks: includes the gather's backward allreduce)
//   image b  img.backward(img'.grad)             (the image tower's graph)
//   text b   txt.backward(txt'.grad)             (the text tower's graph)
//   opt      [finish_backward], clip_grad_norm, AdamW step, clamp
// The towers' graphs are disjoint, so the three backward calls do exactly the
// work of one loss.backward(); the unsplit step is timed too (the "CLIP
// s/step" column) and the split step's total is printed beside it as a check.
// "loss+sim" thus holds normalisation, the two [B, W*B] similarity matmuls,
// the logit scale, both cross-entropies and (with --ranks) the gather; its
// share is of the split step's total. The table shows each point's fastest
// step (least disturbed by other processes on the machine; the breakdown is
// that of the fastest split step, so its parts add up) and the ratio of the
// medians as well.
//
// `--ranks 2`: two processes of this binary (re-executed with --dp-rank, two
// TCPStores on free loopback ports: one DataParallel group per model, so
// each allreduces only its own gradients), threads/ranks threads each, the
// batch list per rank (global batch = ranks x per-rank). CatLIP gets the
// overlapped gradient allreduce (attach, begin_backward, finish_backward as
// the trainer); CLIP the same plus the feature gather with gradient, whose
// seconds (forward allgathers + backward allreduces, take_gather_seconds) are
// the "gather" column. A step lasts as long as its slowest rank (max over
// ranks per step); parts are averaged over ranks.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "catlip/model/clip_config.h"
#include "catlip/model/clip_model.h"
#include "catlip/model/vit.h"
#include "catlip/train/data_parallel.h"
#include "catlip/train/loss.h"
#include "catlip/train/optim.h"
#include "cli.h"

using namespace catlip::model;
using namespace catlip::train;
using Clock = std::chrono::steady_clock;

namespace {

struct Spec {
  ViTConfig vit;  // num_classes = the CatLIP vocabulary
  TextConfig text;
  std::vector<int64_t> batches{32, 64, 128, 256, 512, 1024};
  int threads = 2, steps = 3, warmup = 1, ranks = 1;
  int64_t min_tokens = 12;
  int threads_per_rank() const { return std::max(1, threads / ranks); }
};

double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// One timed step. CatLIP and CLIP fill total (and allreduce with --ranks);
// the split CLIP step fills every part.
struct Rec {
  double total = 0, img_f = 0, img_b = 0, txt_f = 0, txt_b = 0, loss_f = 0, loss_b = 0, opt = 0, gather = 0,
         allreduce = 0;
  double img() const { return img_f + img_b; }
  double txt() const { return txt_f + txt_b; }
  double loss() const { return loss_f + loss_b; }
  static constexpr int kFields = 10;
  double* field(int k) { return &total + k; }
  double get(int k) const { return (&total)[k]; }
};

NamedTensors named_params(torch::nn::Module& m, std::vector<torch::Tensor>* params) {
  NamedTensors named;
  for (auto& kv : m.named_parameters(true)) {
    named.emplace_back(kv.key(), kv.value());
    params->push_back(kv.value());
  }
  return named;
}

int64_t count(const std::vector<torch::Tensor>& ps) {
  int64_t n = 0;
  for (auto& p : ps) n += p.numel();
  return n;
}

struct Models {
  ViT catlip{nullptr};
  ClipModel clip{nullptr};
  std::vector<torch::Tensor> cat_params, clip_params;
  std::unique_ptr<AdamW> cat_opt, clip_opt;
  explicit Models(const Spec& s) {
    torch::manual_seed(0);
    catlip = ViT(s.vit);
    clip = ClipModel(s.vit, s.text);
    catlip->train();
    clip->train();
    cat_opt = std::make_unique<AdamW>(named_params(*catlip, &cat_params), AdamWOptions{});
    clip_opt = std::make_unique<AdamW>(named_params(*clip, &clip_params), AdamWOptions{});
  }
};

// One batch: images, CatLIP multi-hot targets, CLIP caption tokens.
struct Batch {
  torch::Tensor x, y, ids;
  double mean_tokens = 0;
};

Batch make_batch(const Spec& s, int64_t B, int rank) {
  std::mt19937_64 rng(uint64_t(1000 * B + rank));
  Batch b;
  torch::manual_seed(int64_t(1000 * B + rank));
  b.x = torch::rand({B, 3, s.vit.image_size, s.vit.image_size});
  // CatLIP: 1..8 synsets per image.
  std::vector<std::vector<int64_t>> labels(static_cast<size_t>(B)), rows(static_cast<size_t>(B));
  std::uniform_int_distribution<int64_t> nl(1, 8), lab(0, s.vit.num_classes - 1), tok(1, s.text.vocab_size - 3),
      len(std::min(s.min_tokens, s.text.context_length), s.text.context_length);
  for (auto& l : labels) {
    for (int64_t k = nl(rng); k-- > 0;) l.push_back(lab(rng));
    std::sort(l.begin(), l.end());
    l.erase(std::unique(l.begin(), l.end()), l.end());
  }
  b.y = multi_hot(labels, s.vit.num_classes, torch::kCPU);
  // CLIP: <|startoftext|> ids... <|endoftext|> (the tokenizer's last two ids).
  for (auto& r : rows) {
    int64_t n = len(rng);
    r.push_back(s.text.vocab_size - 2);
    for (int64_t k = 2; k < n; ++k) r.push_back(tok(rng));
    r.push_back(s.text.vocab_size - 1);
    b.mean_tokens += double(n) / double(B);
  }
  b.ids = pad_tokens(rows, torch::kCPU);
  return b;
}

namespace F = torch::nn::functional;

torch::Tensor normalise(const torch::Tensor& t) { return F::normalize(t, F::NormalizeFuncOptions().dim(-1)); }

torch::Tensor contrast(Models& m, const torch::Tensor& img, const torch::Tensor& txt, DataParallel* dp) {
  if (!dp) return clip_loss(img, txt, m.clip->logit_scale, img, txt, 0);
  auto all_img = dp->gather_with_grad(img);
  auto all_txt = dp->gather_with_grad(txt);
  return clip_loss(img, txt, m.clip->logit_scale, all_img, all_txt, int64_t(dp->rank()) * img.size(0));
}

Rec catlip_step(Models& m, const Batch& b, DataParallel* dp) {
  Rec r;
  auto t0 = Clock::now();
  auto loss = catlip_bce_loss(m.catlip->forward(b.x), b.y);
  m.cat_opt->zero_grad();
  if (dp) dp->begin_backward(true);
  loss.backward();
  if (dp) r.allreduce = dp->finish_backward();
  clip_grad_norm(m.cat_params, 1.0);
  m.cat_opt->step(1e-4);
  loss.item<double>();
  r.total = secs(t0, Clock::now());
  return r;
}

Rec clip_step(Models& m, const Batch& b, DataParallel* dp) {
  Rec r;
  auto t0 = Clock::now();
  auto img = normalise(m.clip->encode_image(b.x));
  auto txt = normalise(m.clip->encode_text(b.ids));
  auto loss = contrast(m, img, txt, dp);
  m.clip_opt->zero_grad();
  if (dp) dp->begin_backward(true);
  loss.backward();
  if (dp) r.allreduce = dp->finish_backward();
  clip_grad_norm(m.clip_params, 1.0);
  m.clip_opt->step(1e-4);
  m.clip->clamp_logit_scale(100);
  loss.item<double>();
  r.total = secs(t0, Clock::now());
  if (dp) r.gather = dp->take_gather_seconds();
  return r;
}

// The same work as clip_step, the graph cut at the towers' outputs (see the
// file header).
Rec clip_split_step(Models& m, const Batch& b, DataParallel* dp) {
  Rec r;
  if (dp) dp->take_gather_seconds();
  auto t0 = Clock::now();
  m.clip_opt->zero_grad();
  if (dp) dp->begin_backward(true);
  auto img = m.clip->encode_image(b.x);
  auto t1 = Clock::now();
  auto txt = m.clip->encode_text(b.ids);
  auto t2 = Clock::now();
  auto img_d = img.detach().requires_grad_(true), txt_d = txt.detach().requires_grad_(true);
  auto loss = contrast(m, normalise(img_d), normalise(txt_d), dp);
  auto t3 = Clock::now();
  loss.backward();
  auto t4 = Clock::now();
  img.backward(img_d.grad());
  auto t5 = Clock::now();
  txt.backward(txt_d.grad());
  auto t6 = Clock::now();
  if (dp) r.allreduce = dp->finish_backward();
  clip_grad_norm(m.clip_params, 1.0);
  m.clip_opt->step(1e-4);
  m.clip->clamp_logit_scale(100);
  loss.item<double>();
  auto t7 = Clock::now();
  r.img_f = secs(t0, t1);
  r.txt_f = secs(t1, t2);
  r.loss_f = secs(t2, t3);
  r.loss_b = secs(t3, t4);
  r.img_b = secs(t4, t5);
  r.txt_b = secs(t5, t6);
  r.opt = secs(t6, t7);
  r.total = secs(t0, t7);
  if (dp) r.gather = dp->take_gather_seconds();
  return r;
}

const char* const kKinds[] = {"catlip", "clip", "split"};

// Per batch size and kind: the timed steps (after warmup), in order.
using Results = std::map<int64_t, std::map<std::string, std::vector<Rec>>>;

// Runs every batch size; dps are null on one rank. Calls `sink` after each
// batch size with its records.
template <typename Sink>
void run_points(const Spec& s, int rank, DataParallel* dp_cat, DataParallel* dp_clip, Sink sink) {
  Models m(s);
  if (dp_cat) {
    dp_cat->attach(m.cat_params);
    dp_cat->broadcast_from_rank0(m.cat_params, "CatLIP weights");
    dp_clip->attach(m.clip_params);
    dp_clip->broadcast_from_rank0(m.clip_params, "CLIP weights");
  }
  for (int64_t B : s.batches) {
    Batch b = make_batch(s, B, rank);
    std::map<std::string, std::vector<Rec>> out;
    for (int i = 0; i < s.warmup + s.steps; ++i) {
      // Ranks start each step aligned (untimed), as the trainer's "have a
      // batch" agreement before every step.
      if (dp_cat) dp_cat->all_true(true);
      Rec c = catlip_step(m, b, dp_cat);
      if (dp_clip) dp_clip->all_true(true);
      Rec f = clip_step(m, b, dp_clip);
      if (dp_clip) dp_clip->all_true(true);
      Rec p = clip_split_step(m, b, dp_clip);
      if (i >= s.warmup) {
        out["catlip"].push_back(c);
        out["clip"].push_back(f);
        out["split"].push_back(p);
      }
    }
    sink(B, b, out);
  }
}

// ---- --ranks N: one process per rank ----


// Prints "clip-rec B KIND total img_f ... allreduce" per timed step.
int dp_worker(const Spec& s, int rank, const std::string& ep_cat, const std::string& ep_clip) {
  at::set_num_threads(s.threads_per_rank());
  auto join = [&](const std::string& ep) {
    DistOptions o;
    o.rank = rank;
    o.world_size = s.ranks;
    o.endpoint = ep;
    o.timeout_s = 600;
    o.bucket_mb = 5;  // the trainer's default
    return std::make_unique<DataParallel>(o, torch::kCPU);
  };
  auto dp_cat = join(ep_cat);
  auto dp_clip = join(ep_clip);
  run_points(s, rank, dp_cat.get(), dp_clip.get(),
             [](int64_t B, const Batch&, std::map<std::string, std::vector<Rec>>& out) {
               for (auto& [kind, recs] : out)
                 for (auto& r : recs) {
                   std::printf("clip-rec %lld %s", (long long)B, kind.c_str());
                   for (int k = 0; k < Rec::kFields; ++k) std::printf(" %.6f", r.get(k));
                   std::printf("\n");
                 }
               std::fflush(stdout);
             });
  return catlip::cli::kOk;
}

std::string quote(const std::string& a) {
  std::string q = "'";
  for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs the ranks; per batch and kind, step i = max of the ranks' totals,
// mean of their parts.
bool dp_run(const Spec& s, const std::vector<std::string>& args, Results* res, std::string* err) {
  int p1 = catlip::cli::free_loopback_port(), p2 = catlip::cli::free_loopback_port();
  if (p1 <= 0 || p2 <= 0 || p1 == p2) {
    *err = "no free TCP ports on 127.0.0.1";
    return false;
  }
  std::string exe = "/proc/" + std::to_string(::getpid()) + "/exe";
  std::vector<FILE*> procs;
  for (int r = 0; r < s.ranks; ++r) {
    std::ostringstream cmd;
    cmd << quote(exe) << " bench clip";
    for (auto& a : args) cmd << " " << quote(a);
    cmd << " --dp-rank " << r << " --endpoint tcp://127.0.0.1:" << p1 << " --endpoint-clip tcp://127.0.0.1:" << p2
        << " 2>&1";
    FILE* p = ::popen(cmd.str().c_str(), "r");
    if (!p) {
      *err = "cannot start rank " + std::to_string(r);
      for (FILE* q : procs) ::pclose(q);
      return false;
    }
    procs.push_back(p);
  }
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
      std::string tag, kind;
      long long B = 0;
      Rec rec;
      f >> tag >> B >> kind;
      for (int k = 0; k < Rec::kFields; ++k) f >> *rec.field(k);
      if (tag != "clip-rec" || !f) continue;
      per_rank[size_t(r)][B][kind].push_back(rec);
      ++found;
    }
    if (rc != 0 || found != s.batches.size() * 3 * size_t(s.steps)) {
      ok = false;
      *err += "rank " + std::to_string(r) + " failed (exit status " + std::to_string(rc) + "):\n" + text;
    }
  }
  if (!ok) return false;
  for (int64_t B : s.batches)
    for (std::string kind : kKinds) {
      auto& dst = (*res)[B][kind];
      for (int i = 0; i < s.steps; ++i) {
        Rec agg;
        for (int r = 0; r < s.ranks; ++r) {
          const Rec& x = per_rank[size_t(r)][B][kind][size_t(i)];
          agg.total = std::max(agg.total, x.total);
          for (int k = 1; k < Rec::kFields; ++k) *agg.field(k) += x.get(k) / s.ranks;
        }
        dst.push_back(agg);
      }
    }
  return true;
}

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

Row print_row(const Spec& s, int64_t B, const std::map<std::string, std::vector<Rec>>& k) {
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
    double share = 100 * sp.loss() / sp.total;
    std::printf("%6lld", (long long)B);
    if (dp) std::printf(" %7lld", (long long)(B * s.ranks));
    std::printf(" %8.4f %8.4f %7.3f %7.3f %8.4f %8.4f %9.4f %7.4f %7.2f", cat.total, clip.total, ratio, ratio_med,
                sp.img(), sp.txt(), sp.loss(), sp.opt, share);
    if (dp)
      std::printf(" %8.4f %9.4f %9.4f", med_of("clip", &Rec::gather), med_of("catlip", &Rec::allreduce),
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
         "                         [--tokenizer-vocab 4096] [--min-tokens 12]\n\n"
         "Times a CatLIP training step (ViT with a --vocab-size synset head, BCE, AdamW) and a\n"
         "CLIP step on the same ViT (+ text transformer, InfoNCE, AdamW) at each batch size,\n"
         "with CLIP's time split into image tower, text tower and loss + similarity matrix\n"
         "(forward + backward each). Prints the fastest steps, the CLIP/CatLIP ratio (fastest\n"
         "and medians), the loss share and the per-sample FLOP ratio.\n\n"
         "--ranks N: N processes of this binary over c10d Gloo on 127.0.0.1, threads/N threads\n"
         "each, --batches per rank; CatLIP allreduces gradients, CLIP also gathers features\n"
         "with gradient (the gather column).\n";
  return catlip::cli::kOk;
}

int cmd_bench_clip(int argc, char** argv) {
  if (catlip::cli::wants_help(argc, argv)) return usage();
  Spec s;
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
  int dp_rank = -1;
  std::string ep_cat, ep_clip, batches_s;
  std::vector<std::string> pass;  // options a rank process gets
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument("needs a value");
      return argv[++i];
    };
    try {
      bool internal = false;
      if (a == "--batches") batches_s = next();
      else if (a == "--steps") s.steps = std::stoi(next());
      else if (a == "--warmup") s.warmup = std::stoi(next());
      else if (a == "--threads") s.threads = std::stoi(next());
      else if (a == "--ranks") s.ranks = std::stoi(next());
      else if (a == "--vocab-size") s.vit.num_classes = std::stoll(next());
      else if (a == "--dim") s.vit.dim = std::stoll(next());
      else if (a == "--depth") s.vit.depth = std::stoll(next());
      else if (a == "--heads") s.vit.heads = std::stoll(next());
      else if (a == "--image") s.vit.image_size = std::stoll(next());
      else if (a == "--patch") s.vit.patch_size = std::stoll(next());
      else if (a == "--stem") s.vit.stem = next();
      else if (a == "--embed-dim") s.text.embed_dim = std::stoll(next());
      else if (a == "--text-width") s.text.width = std::stoll(next());
      else if (a == "--text-depth") s.text.depth = std::stoll(next());
      else if (a == "--text-heads") s.text.heads = std::stoll(next());
      else if (a == "--context") s.text.context_length = std::stoll(next());
      else if (a == "--tokenizer-vocab") s.text.vocab_size = std::stoll(next());
      else if (a == "--min-tokens") s.min_tokens = std::stoll(next());
      else if (a == "--dp-rank") dp_rank = std::stoi(next()), internal = true;      // internal: one rank
      else if (a == "--endpoint") ep_cat = next(), internal = true;                 // internal: CatLIP's group
      else if (a == "--endpoint-clip") ep_clip = next(), internal = true;           // internal: CLIP's group
      else {
        std::cerr << "catlip bench clip: unknown option " << a
                  << catlip::cli::did_you_mean(a, {"batches", "steps", "warmup", "threads", "ranks", "vocab-size", "dim",
                                                   "depth", "heads", "image", "patch", "stem", "embed-dim",
                                                   "text-width", "text-depth", "text-heads", "context",
                                                   "tokenizer-vocab", "min-tokens"})
                  << "\n";
        usage();
        return catlip::cli::kUsage;
      }
      if (!internal) {
        pass.push_back(a);
        pass.push_back(argv[i]);
      }
    } catch (const std::exception& e) {
      std::cerr << "bench clip: " << a << ": " << e.what() << "\n";
      return catlip::cli::kUsage;
    }
  }
  if (!batches_s.empty()) {
    s.batches.clear();
    std::stringstream bs(batches_s);
    for (std::string item; std::getline(bs, item, ',');) {
      try {
        size_t used = 0;
        long long b = std::stoll(item, &used);
        if (used != item.size() || b < 1) throw std::invalid_argument(item);
        s.batches.push_back(b);
      } catch (const std::exception&) {
        std::cerr << "bench clip: --batches: '" << item << "' is not a batch size >= 1\n";
        return catlip::cli::kUsage;
      }
    }
  }
  std::string bad;
  if (s.batches.empty()) bad = "--batches is empty";
  else if (s.steps < 1 || s.warmup < 0 || s.threads < 1 || s.ranks < 1)
    bad = "--steps, --threads, --ranks must be >= 1, --warmup >= 0";
  else if (s.vit.num_classes < 1) bad = "--vocab-size must be >= 1";
  else if (s.text.vocab_size < 4) bad = "--tokenizer-vocab must be >= 4";
  else if (s.min_tokens < 2) bad = "--min-tokens must be >= 2 (SOT and EOT)";
  else if (auto e = s.vit.check(); !e.empty()) bad = e;
  else if (auto e2 = s.text.check(); !e2.empty()) bad = e2;
  else if (dp_rank >= 0 && (s.ranks < 2 || ep_cat.empty() || ep_clip.empty()))
    bad = "--dp-rank needs --ranks >= 2 and both endpoints";
  if (!bad.empty()) {
    std::cerr << "bench clip: " << bad << "\n";
    return catlip::cli::kUsage;
  }
  if (dp_rank >= 0) {
    try {
      return dp_worker(s, dp_rank, ep_cat, ep_clip);
    } catch (const std::exception& e) {
      std::cerr << "bench clip: rank " << dp_rank << ": " << e.what() << "\n";
      return catlip::cli::kFailed;
    }
  }

  // The header: what runs, on what.
  {
    Models probe(s);
    const int tpr = s.threads_per_rank();
    std::printf("bench clip: CatLIP vs CLIP training step on the same image tower\n");
    std::printf("image tower: ViT dim %lld, depth %lld, heads %lld, image %lld, patch %lld (%lld tokens), stem %s\n",
                (long long)s.vit.dim, (long long)s.vit.depth, (long long)s.vit.heads, (long long)s.vit.image_size,
                (long long)s.vit.patch_size, (long long)(s.vit.num_patches() + 1), s.vit.stem.c_str());
    std::printf("CatLIP: head %lld synsets, multi-hot BCE; %lld parameters\n", (long long)s.vit.num_classes,
                (long long)count(probe.cat_params));
    std::printf("CLIP: embed %lld; text width %lld, depth %lld, heads %lld, context %lld, tokenizer vocab %lld, "
                "captions of %lld..%lld tokens; symmetric InfoNCE; %lld parameters\n",
                (long long)s.text.embed_dim, (long long)s.text.width, (long long)s.text.depth,
                (long long)s.text.heads, (long long)s.text.context_length, (long long)s.text.vocab_size,
                (long long)std::min(s.min_tokens, s.text.context_length), (long long)s.text.context_length,
                (long long)count(probe.clip_params));
    std::printf("both: AdamW + grad-norm clipping 1.0; fp32 on the CPU (LibTorch %s); %d step%s after %d warmup per "
                "point, taking turns\n",
                TORCH_VERSION, s.steps, s.steps == 1 ? "" : "s", s.warmup);
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
  if (s.ranks > 1) {
    Results res;
    std::string err;
    if (!dp_run(s, pass, &res, &err)) {
      std::cerr << "bench clip: " << err << "\n";
      return catlip::cli::kFailed;
    }
    print_table_header(s);
    for (int64_t B : s.batches) {
      Batch b = make_batch(s, B, 0);  // rank 0's captions (for the token counts)
      mean_tokens += b.mean_tokens / double(s.batches.size());
      padded = std::max(padded, b.ids.size(1));
      rows.push_back(print_row(s, B, res.at(B)));
    }
  } else {
    at::set_num_threads(s.threads);
    print_table_header(s);
    run_points(s, 0, nullptr, nullptr, [&](int64_t B, const Batch& b, std::map<std::string, std::vector<Rec>>& out) {
      mean_tokens += b.mean_tokens / double(s.batches.size());
      padded = std::max(padded, b.ids.size(1));
      rows.push_back(print_row(s, B, out));
    });
  }
  print_summary(s, rows, mean_tokens, padded);
  return catlip::cli::kOk;
}

}  // namespace

CATLIP_COMMAND("bench clip", "Time a CatLIP vs a CLIP training step on the same image tower", cmd_bench_clip);
