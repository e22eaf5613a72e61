// Metrics against values computed by hand (see the comments for the working).
#include <catch2/catch.hpp>

#include <cmath>

#include "catlip/eval/ground_truth.h"
#include "catlip/eval/metrics.h"

using namespace catlip::eval;

TEST_CASE("average precision: distinct scores") {
  // Ranked: +(P1,R.5) -(P.5) +(P2/3,R1): AP = .5*1 + .5*2/3 = 5/6.
  REQUIRE(average_precision({0.9f, 0.8f, 0.7f, 0.6f}, {1, 0, 1, 0}) == Approx(5.0 / 6.0));
  // Perfect ranking.
  REQUIRE(average_precision({0.1f, 0.9f, 0.8f}, {0, 1, 1}) == Approx(1.0));
  // Worst ranking of one positive among 4: precision 1/4 at recall 1.
  REQUIRE(average_precision({0.9f, 0.8f, 0.7f, 0.1f}, {0, 0, 0, 1}) == Approx(0.25));
}

TEST_CASE("average precision: ties form one threshold, no positives is NaN") {
  // Constant scores: AP = prevalence (this is why the prior's mAP is the mean prevalence).
  REQUIRE(average_precision({0.5f, 0.5f, 0.5f, 0.5f}, {1, 0, 0, 0}) == Approx(0.25));
  // 0.9(-): P0 R0; {0.5(+),0.5(-)}: P1/3 R.5 -> 1/6; 0.1(+): P.5 R1 -> .25. AP = 5/12.
  REQUIRE(average_precision({0.9f, 0.5f, 0.5f, 0.1f}, {0, 1, 0, 1}) == Approx(5.0 / 12.0));
  REQUIRE(std::isnan(average_precision({0.3f, 0.2f}, {0, 0})));
}

TEST_CASE("mAP, F1 micro/macro and precision@k on a 3x3 example") {
  // rows = samples, cols = classes; targets s0 {0}, s1 {1}, s2 {0,1}; class 2 has no positive.
  std::vector<float> s = {0.9f, 0.2f, 0.1f,  //
                          0.3f, 0.8f, 0.4f,  //
                          0.6f, 0.1f, 0.2f};
  std::vector<std::vector<int64_t>> t = {{0}, {1}, {0, 1}};
  auto m = compute_metrics(s, 3, 3, t, 0.5, {1, 2});
  // class 0: [.9+, .6+, .3-] AP 1; class 1: [.8+, .2-, .1+] AP .5 + .5*2/3 = 5/6.
  REQUIRE(m.classes_scored == 2);
  REQUIRE(m.per_class[0].ap == Approx(1.0));
  REQUIRE(m.per_class[1].ap == Approx(5.0 / 6.0));
  REQUIRE(std::isnan(m.per_class[2].ap));
  REQUIRE(m.map == Approx((1.0 + 5.0 / 6.0) / 2));
  // At 0.5: predicted s0{0}, s1{1}, s2{0}. class0 tp2; class1 tp1 fn1 (F1 2/3).
  REQUIRE(m.per_class[0].tp == 2);
  REQUIRE(m.per_class[1].fn == 1);
  REQUIRE(m.f1_micro == Approx(6.0 / 7.0));        // tp3 fp0 fn1
  REQUIRE(m.f1_macro == Approx((1.0 + 2.0 / 3.0) / 2));  // classes with positives only
  REQUIRE(m.precision_micro == Approx(1.0));
  REQUIRE(m.recall_micro == Approx(0.75));
  // P@1: every top-1 is right. P@2: one of two right in each row.
  REQUIRE(m.precision_at_k[0] == Approx(1.0));
  REQUIRE(m.precision_at_k[1] == Approx(0.5));
}

TEST_CASE("precision@k skips samples without positives, top_k breaks ties by index") {
  std::vector<float> s = {0.5f, 0.5f, 0.1f,  //
                          0.9f, 0.1f, 0.2f};
  REQUIRE(top_k(s.data(), 3, 2) == std::vector<int64_t>{0, 1});
  // sample 0 has no positive; sample 1's top-1 (class 0) is wrong.
  REQUIRE(precision_at_k(s, 2, 3, {{}, {2}}, 1) == Approx(0.0));
  REQUIRE(precision_at_k(s, 2, 3, {{}, {2}}, 2) == Approx(0.5));
  REQUIRE(std::isnan(precision_at_k(s, 2, 3, {{}, {}}, 1)));
  // Out-of-range targets are ignored rather than crashing.
  auto m = compute_metrics(s, 2, 3, {{7, -1}, {0}}, 0.5, {1});
  REQUIRE(m.classes_scored == 1);
  REQUIRE(m.map == Approx(1.0));
}

TEST_CASE("top-1 accuracy") {
  std::vector<float> s = {0.1f, 0.9f, 0.8f, 0.2f, 0.3f, 0.4f};
  REQUIRE(top1_accuracy(s, 3, 2, {1, 0, 0}) == Approx(2.0 / 3.0));
}

TEST_CASE("ground truth from the synthetic json maps wnids, then lemmas, to rows") {
  EvalVocab v;
  v.wnids = {"n02084071", "n02121620"};
  v.lemmas = {"dog", "cat"};
  v.counts = {10, 5};
  v.by_wnid = {{"n02084071", 0}, {"n02121620", 1}};
  v.by_lemma = {{"dog", 0}, {"cat", 1}};
  auto g = parse_ground_truth(R"({"objects": ["cat", "ball"], "wnids": ["n02121620", "n02778669"]})", v);
  REQUIRE(g.present);
  REQUIRE(g.rows == std::vector<int64_t>{1});
  REQUIRE(g.outside == 1);
  auto h = parse_ground_truth(R"({"objects": ["dog", "cat"]})", v);
  REQUIRE(h.rows == std::vector<int64_t>{0, 1});
  auto bad = parse_ground_truth("{not json", v);
  REQUIRE(!bad.error.empty());
  REQUIRE(!bad.present);
  // Class labels: .cls index first, then json wnid, then json class name.
  std::vector<std::string> cw = {"n02084071", "n02121620"}, cn = {"dog", "cat"};
  std::string cls = "1", j1 = R"({"wnid": "n02084071"})", j2 = R"({"class": "cat"})", bad_cls = "9";
  REQUIRE(parse_class_label(&cls, nullptr, cw, cn) == 1);
  REQUIRE(parse_class_label(nullptr, &j1, cw, cn) == 0);
  REQUIRE(parse_class_label(&bad_cls, &j2, cw, cn) == 1);
  REQUIRE(parse_class_label(nullptr, nullptr, cw, cn) == -1);
  // A trailing newline is fine; trailing junk is not a class index.
  std::string nl = "1\n", junk = "0abc";
  REQUIRE(parse_class_label(&nl, nullptr, cw, cn) == 1);
  REQUIRE(parse_class_label(&junk, nullptr, cw, cn) == -1);
  REQUIRE(parse_class_label(&junk, &j2, cw, cn) == 1);
}
