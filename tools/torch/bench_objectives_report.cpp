// `catlip bench objectives`' tables and --json (bench_objectives.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "bench_objectives.h"
#include "catlip/json.h"

namespace catlip::bench::objectives {

namespace json = catlip::json;

std::vector<Point> make_points(const Spec& s, const std::vector<int64_t>& global_batches, const Results& res,
                               const std::vector<const ObjectiveStep*>& steps, int64_t padded_tokens) {
  std::vector<Point> pts;
  for (size_t bi = 0; bi < s.batches.size(); ++bi) {
    const int64_t B = s.batches[bi], N = global_batches[bi];
    const Records& recs = res.at(B);
    Point cat;
    for (const ObjectiveStep* st : steps) {
      const auto& v = recs.at(st->name());
      Point p;
      p.ranks = s.ranks;
      p.batch = N;
      p.per_rank = B;
      p.objective = st->name();
      p.title = st->title();
      p.fastest = *std::min_element(v.begin(), v.end(), [](const Rec& a, const Rec& b) { return a.total < b.total; });
      std::vector<double> totals, grads, feats, counts;
      for (auto& r : v) {
        totals.push_back(r.total);
        grads.push_back(r.grad_bytes);
        feats.push_back(r.feature_bytes);
        counts.push_back(r.count_bytes);
      }
      p.median_s = median(totals);
      p.flops = st->flops(N, padded_tokens);
      if (s.ranks > 1) {
        p.measured = {median(grads), median(feats), median(counts)};
        p.formula = st->expected_bytes(B, s.ranks);
      }
      if (st == steps.front()) cat = p;  // CatLIP: the first objective
      p.ratio = p.fastest.total / cat.fastest.total;
      p.ratio_median = p.median_s / cat.median_s;
      p.flop_ratio = p.flops / cat.flops;
      p.bytes_ratio = cat.measured.total() > 0 ? p.measured.total() / cat.measured.total() : 0;
      pts.push_back(p);
    }
  }
  return pts;
}

void print_points(const Spec& s, const std::vector<Point>& pts) {
  const bool dp = s.ranks > 1;
  std::printf("%6s %6s %-10s %8s %8s %7s %7s %8s %8s %9s %8s %8s %7s", "batch", "/rank", "objective", "fastest",
              "median", "ratio", "ratio", "image", "text", "loss+comm", "comm", "opt", "FLOP");
  if (dp) std::printf(" %9s %7s %6s", "exchange", "bytes", "bytes");
  std::printf("\n%6s %6s %-10s %8s %8s %7s %7s %8s %8s %9s %8s %8s %7s", "", "", "", "s/step", "s/step", "fastest",
              "medians", "f+b s", "f+b s", "f+b s", "s", "s", "ratio");
  if (dp) std::printf(" %9s %7s %6s", "MB/step", "ratio", "=formula");
  std::printf("\n");
  for (const Point& p : pts) {
    const Rec& r = p.fastest;
    std::printf("%6lld %6lld %-10s %8.4f %8.4f %7.3f %7.3f %8.4f %8.4f %9.4f %8.4f %8.4f %7.3f", (long long)p.batch,
                (long long)p.per_rank, p.objective.c_str(), r.total, p.median_s, p.ratio, p.ratio_median, r.image,
                r.text, r.loss + r.allreduce, r.comm, r.opt - r.allreduce, p.flop_ratio);
    if (dp) {
      const bool match = p.measured.grads == p.formula.grads && p.measured.features == p.formula.features &&
                         p.measured.counts == p.formula.counts;
      std::printf(" %9.3f %7.3f %6s", p.measured.total() / 1e6, p.bytes_ratio, match ? "yes" : "NO");
    }
    std::printf("\n");
  }
  if (dp) {
    std::printf("\nbytes each rank hands to collectives per step (measured: counted by DataParallel; formula: "
                "bench_objectives_steps.cpp):\n");
    std::printf("%6s %-10s %14s %14s %14s %14s %14s\n", "batch", "objective", "gradients", "features", "IDF counts",
                "total", "formula");
    for (const Point& p : pts)
      std::printf("%6lld %-10s %14.0f %14.0f %14.0f %14.0f %14.0f\n", (long long)p.batch, p.objective.c_str(),
                  p.measured.grads, p.measured.features, p.measured.counts, p.measured.total(), p.formula.total());
  }
  std::printf("\n");
  std::fflush(stdout);
}

void print_ratio_table(const std::vector<Point>& pts, const std::vector<std::string>& titles) {
  std::printf("step time / CatLIP's, fastest steps (medians); FLOP ratio; bytes per rank and step / CatLIP's:\n");
  std::printf("%5s %6s", "ranks", "batch");
  for (size_t k = 1; k < titles.size(); ++k) std::printf(" %-30s", titles[k].c_str());
  std::printf("\n");
  for (size_t i = 0; i < pts.size();) {
    const Point& first = pts[i];
    std::printf("%5d %6lld", first.ranks, (long long)first.batch);
    size_t j = i + 1;
    for (; j < pts.size() && pts[j].batch == first.batch && pts[j].ranks == first.ranks; ++j) {
      const Point& p = pts[j];
      char cell[64];
      if (p.ranks > 1)
        std::snprintf(cell, sizeof cell, "%.3f (%.3f) F%.3f B%.3f", p.ratio, p.ratio_median, p.flop_ratio,
                      p.bytes_ratio);
      else
        std::snprintf(cell, sizeof cell, "%.3f (%.3f) F%.3f", p.ratio, p.ratio_median, p.flop_ratio);
      std::printf(" %-30s", cell);
    }
    std::printf("\n");
    i = j;
  }
  std::fflush(stdout);
}

namespace {

double num6(double v) { return json::round_sig(v, 6); }

json::Ordered bytes_json(const Bytes& b) {
  return {{"grads", int64_t(b.grads)},
          {"features", int64_t(b.features)},
          {"counts", int64_t(b.counts)},
          {"total", int64_t(b.total())}};
}

}  // namespace

bool write_json(const std::string& path, const Spec& s, const std::vector<std::string>& objectives,
                const std::vector<Point>& pts) {
  json::Ordered points = json::Ordered::array();
  for (const Point& p : pts) {
    const Rec& r = p.fastest;
    json::Ordered o = {{"ranks", p.ranks},
                       {"batch", p.batch},
                       {"batch_per_rank", p.per_rank},
                       {"objective", p.objective},
                       {"fastest_s", num6(r.total)},
                       {"median_s", num6(p.median_s)},
                       {"ratio", num6(p.ratio)},
                       {"ratio_median", num6(p.ratio_median)},
                       {"image_s", num6(r.image)},
                       {"text_s", num6(r.text)},
                       {"loss_comm_s", num6(r.loss + r.allreduce)},
                       {"comm_s", num6(r.comm)},
                       {"allreduce_wait_s", num6(r.allreduce)},
                       {"opt_s", num6(r.opt - r.allreduce)},
                       {"flops_per_sample", num6(p.flops)},
                       {"flop_ratio", num6(p.flop_ratio)}};
    if (p.ranks > 1) {
      o["bytes"] = bytes_json(p.measured);
      o["bytes_formula"] = bytes_json(p.formula);
      o["bytes_ratio"] = num6(p.bytes_ratio);
    }
    points.push_back(std::move(o));
  }
  json::Ordered objs = json::Ordered::array();
  for (auto& o : objectives) objs.push_back(o);
  json::Ordered j = {{"command", "bench objectives"},
                     {"dim", s.vit.dim},
                     {"depth", s.vit.depth},
                     {"heads", s.vit.heads},
                     {"image", s.vit.image_size},
                     {"patch", s.vit.patch_size},
                     {"stem", s.vit.stem},
                     {"vocab", s.vit.num_classes},
                     {"embed_dim", s.text.embed_dim},
                     {"text_width", s.text.width},
                     {"text_depth", s.text.depth},
                     {"text_heads", s.text.heads},
                     {"context", s.text.context_length},
                     {"tokenizer_vocab", s.text.vocab_size},
                     {"device", s.device},
                     {"threads", s.threads},
                     {"steps", s.steps},
                     {"warmup", s.warmup},
                     {"libtorch", TORCH_VERSION},
                     {"objectives", std::move(objs)},
                     {"points", std::move(points)}};
  std::ofstream f(path);
  f << json::dump(j, 2) << "\n";  // one key per line; one line per point
  return bool(f);
}

}  // namespace catlip::bench::objectives
