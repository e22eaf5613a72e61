// The implementation of catlip/eval/metrics.h: AP, mAP, F1, precision@k and top-1
// accuracy, with scikit-learn's conventions.
#include "catlip/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace catlip::eval {

double average_precision(const std::vector<float>& scores, const std::vector<uint8_t>& labels) {
  const size_t n = std::min(scores.size(), labels.size());
  int64_t pos = 0;
  for (size_t i = 0; i < n; ++i) pos += labels[i] ? 1 : 0;
  if (pos == 0) return std::numeric_limits<double>::quiet_NaN();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  double ap = 0, prev_recall = 0;
  int64_t tp = 0, seen = 0;
  for (size_t i = 0; i < n;) {
    // One threshold per distinct score: take every tied sample at once.
    size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) {
      tp += labels[order[j]] ? 1 : 0;
      ++seen;
      ++j;
    }
    double recall = double(tp) / double(pos), precision = double(tp) / double(seen);
    ap += (recall - prev_recall) * precision;
    prev_recall = recall;
    i = j;
  }
  return ap;
}

std::vector<int64_t> top_k(const float* row, int64_t c, int k) {
  std::vector<int64_t> idx(static_cast<size_t>(c));
  std::iota(idx.begin(), idx.end(), int64_t{0});
  int kk = int(std::min<int64_t>(k, c));
  std::partial_sort(idx.begin(), idx.begin() + kk, idx.end(), [&](int64_t a, int64_t b) {
    return row[a] > row[b] || (row[a] == row[b] && a < b);
  });
  idx.resize(size_t(kk));
  return idx;
}

double precision_at_k(const std::vector<float>& scores, int64_t n, int64_t c,
                      const std::vector<std::vector<int64_t>>& targets, int k) {
  double sum = 0;
  int64_t used = 0;
  for (int64_t i = 0; i < n && i < int64_t(targets.size()); ++i) {
    const auto& t = targets[size_t(i)];
    bool any = false;
    for (auto x : t) any |= (x >= 0 && x < c);
    if (!any || k <= 0) continue;
    auto top = top_k(scores.data() + i * c, c, k);
    int hit = 0;
    for (auto j : top) hit += std::find(t.begin(), t.end(), j) != t.end() ? 1 : 0;
    sum += double(hit) / double(k);
    ++used;
  }
  return used ? sum / double(used) : std::numeric_limits<double>::quiet_NaN();
}

static double f1_of(int64_t tp, int64_t fp, int64_t fn) {
  return tp == 0 ? 0.0 : 2.0 * double(tp) / double(2 * tp + fp + fn);
}

MultiLabelMetrics compute_metrics(const std::vector<float>& scores, int64_t n, int64_t c,
                                  const std::vector<std::vector<int64_t>>& targets, double threshold,
                                  const std::vector<int>& ks) {
  MultiLabelMetrics m;
  m.samples = n;
  m.threshold = threshold;
  m.ks = ks;
  m.per_class.resize(size_t(c));
  // Dense 0/1 targets, one column at a time for AP.
  std::vector<uint8_t> dense(size_t(n * c), 0);
  for (int64_t i = 0; i < n && i < int64_t(targets.size()); ++i)
    for (auto x : targets[size_t(i)])
      if (x >= 0 && x < c) dense[size_t(i * c + x)] = 1;
  std::vector<float> col(static_cast<size_t>(n));
  std::vector<uint8_t> lab(static_cast<size_t>(n));
  int64_t tp_all = 0, fp_all = 0, fn_all = 0;
  double ap_sum = 0, f1_sum = 0;
  for (int64_t j = 0; j < c; ++j) {
    ClassStats& s = m.per_class[size_t(j)];
    for (int64_t i = 0; i < n; ++i) {
      float sc = scores[size_t(i * c + j)];
      uint8_t y = dense[size_t(i * c + j)];
      col[size_t(i)] = sc;
      lab[size_t(i)] = y;
      s.positives += y;
      bool pred = sc >= threshold;
      if (pred && y) ++s.tp;
      else if (pred) ++s.fp;
      else if (y) ++s.fn;
    }
    s.f1 = f1_of(s.tp, s.fp, s.fn);
    tp_all += s.tp, fp_all += s.fp, fn_all += s.fn;
    if (s.positives > 0) {
      s.ap = average_precision(col, lab);
      ap_sum += s.ap;
      f1_sum += s.f1;
      ++m.classes_scored;
    } else {
      s.ap = std::numeric_limits<double>::quiet_NaN();
    }
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  m.map = m.classes_scored ? ap_sum / double(m.classes_scored) : nan;
  m.f1_macro = m.classes_scored ? f1_sum / double(m.classes_scored) : nan;
  m.f1_micro = f1_of(tp_all, fp_all, fn_all);
  m.precision_micro = tp_all + fp_all ? double(tp_all) / double(tp_all + fp_all) : 0.0;
  m.recall_micro = tp_all + fn_all ? double(tp_all) / double(tp_all + fn_all) : 0.0;
  for (int k : ks) m.precision_at_k.push_back(precision_at_k(scores, n, c, targets, k));
  return m;
}

double top1_accuracy(const std::vector<float>& scores, int64_t n, int64_t c, const std::vector<int64_t>& labels) {
  if (n <= 0 || c <= 0) return std::numeric_limits<double>::quiet_NaN();
  int64_t right = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* r = scores.data() + i * c;
    int64_t best = std::max_element(r, r + c) - r;
    right += (i < int64_t(labels.size()) && labels[size_t(i)] == best) ? 1 : 0;
  }
  return double(right) / double(n);
}

}  // namespace catlip::eval
