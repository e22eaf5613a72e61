// catlip/eval/metrics.h - multi-label ranking and threshold metrics, without
// LibTorch (unit-tested against hand-computed values).
//
// Scores are row-major [n_samples x n_classes]; targets are per-sample sorted
// (or not) lists of positive class indices. Conventions, chosen to match
// scikit-learn so figures are comparable with published ones:
//   * average_precision: sum over distinct score thresholds (descending) of
//     (R_k - R_{k-1}) * P_k; tied scores form one threshold (so a constant
//     score gives AP = prevalence). Undefined (NaN) without positives.
//   * mAP: mean AP over classes with at least one positive.
//   * F1 at a threshold (score >= threshold is a prediction): micro over all
//     (sample, class) cells; macro = mean per-class F1 over classes with at
//     least one positive (F1 = 0 when tp = 0).
//   * precision@k: over samples with at least one positive, the fraction of
//     their k highest-scoring classes that are positive (ties: lower index first).
#pragma once

#include <cstdint>
#include <vector>

namespace catlip::eval {

// AP of one class: scores[i] with labels[i] in {0,1}. NaN if no positive.
double average_precision(const std::vector<float>& scores, const std::vector<uint8_t>& labels);

struct ClassStats {
  int64_t positives = 0;
  double ap = 0;  // NaN when positives == 0
  int64_t tp = 0, fp = 0, fn = 0;  // at the threshold
  double f1 = 0;
};

struct MultiLabelMetrics {
  int64_t samples = 0;
  int64_t classes_scored = 0;  // classes with >= 1 positive
  double map = 0;
  double f1_micro = 0, f1_macro = 0;
  double precision_micro = 0, recall_micro = 0;
  double threshold = 0.5;
  std::vector<int> ks;
  std::vector<double> precision_at_k;  // one per ks entry
  std::vector<ClassStats> per_class;
};

// scores: n x c row-major. targets: n lists of positive classes (entries out
// of [0, c) are ignored).
MultiLabelMetrics compute_metrics(const std::vector<float>& scores, int64_t n, int64_t c,
                                  const std::vector<std::vector<int64_t>>& targets, double threshold,
                                  const std::vector<int>& ks);

// Precision@k alone (see above); NaN when no sample has a positive.
double precision_at_k(const std::vector<float>& scores, int64_t n, int64_t c,
                      const std::vector<std::vector<int64_t>>& targets, int k);

// Indices of the k highest scores of one row (descending; ties: lower index).
std::vector<int64_t> top_k(const float* row, int64_t c, int k);

// Single-label classification accuracy: argmax of each row vs the label.
double top1_accuracy(const std::vector<float>& scores, int64_t n, int64_t c, const std::vector<int64_t>& labels);

}  // namespace catlip::eval
