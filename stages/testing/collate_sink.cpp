// testing.collate (collate_sink.h): a sink that batches images and multi-hot labels as a
// trainer does, without LibTorch, for benchmarks of the input side.
#include "collate_sink.h"

#include <chrono>
#include <cstring>
#include <stdexcept>

namespace catlip::testing {

static double collate_now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

StageSchema CollateSink::schema() {
  StageSchema s;
  s.type = "testing.collate";
  s.kind = StageKind::Sink;
  s.doc = "Collates samples into trainer-ready batches without LibTorch: each uint8 [H,W,3] image is "
          "copied into a contiguous [batch,H,W,3] buffer and its sparse labels into a dense float "
          "multi-hot [batch,classes] matrix (what train.catlip does before its forward pass), then "
          "the batch is dropped. Counters collate.samples, collate.batches, collate.labels; gauges "
          "first_item_s and last_item_s (monotonic clock) as testing.null. For benchmarks.";
  s.reads = {"image", "labels"};
  s.params = {
      Param("batch_size", &CollateSink::batch_).def(64).range(1, 1 << 20).describe("Samples per batch"),
      Param("classes", &CollateSink::classes_).def(0).range(0, 1 << 24)
          .describe("Width of the multi-hot label matrix (the vocabulary size; 0: labels not collated)"),
      Param("size", &CollateSink::size_).def(0).range(0, 16384)
          .describe("Required image height and width (0: any, but every image of a batch alike)"),
      Param("image", &CollateSink::image_field_).def("image").describe("Image tensor field (uint8 [H,W,3])"),
      Param("labels", &CollateSink::labels_field_).def("labels").describe("Int-list field of label indices"),
  };
  return s;
}

void CollateSink::configure() {
  multi_hot_.assign(static_cast<size_t>(batch_ * classes_), 0.0f);
}

void CollateSink::process(Sample&& s, Emitter&) {
  double t = collate_now_s();
  if (!seen_++) ctx().gauge("first_item_s", t);
  ctx().gauge("last_item_s", t);
  const Tensor* img = s.tensor(image_field_);
  if (!img) {
    ctx().count("skipped.no_image");
    return;
  }
  const auto& sh = img->shape;
  if (img->dtype != DType::U8 || sh.size() != 3 || sh[2] != 3 || sh[0] <= 0 || sh[1] <= 0 || !img->valid() ||
      (size_ > 0 && (sh[0] != size_ || sh[1] != size_))) {
    ctx().count("skipped.bad_image");
    return;
  }
  if (fill_ > 0 && (sh[0] != h_ || sh[1] != w_)) {
    ctx().count("skipped.image_size_mismatch");
    return;
  }
  if (fill_ == 0) {
    h_ = sh[0], w_ = sh[1];
    images_.resize(static_cast<size_t>(batch_ * h_ * w_ * 3));
  }
  size_t bytes = img->data.size();
  std::memcpy(images_.data() + static_cast<size_t>(fill_) * bytes, img->data.data(), bytes);
  if (classes_ > 0) {
    float* row = multi_hot_.data() + static_cast<size_t>(fill_ * classes_);
    std::memset(row, 0, sizeof(float) * static_cast<size_t>(classes_));
    int64_t n = 0;
    if (const IntList* l = s.ints(labels_field_))
      for (int64_t i : *l) {
        if (i < 0 || i >= classes_) {
          ctx().count("skipped.label_out_of_range");
          continue;
        }
        row[i] = 1.0f;
        ++n;
      }
    if (n == 0) ctx().count("collate.no_labels");
    ctx().count("collate.labels", n);
  }
  ctx().count("collate.samples");
  if (++fill_ == batch_) complete_batch();
}

void CollateSink::complete_batch() {
  // Touch the batch (first and last byte of every image, the multi-hot rows)
  // so the copies are real work, as the forward pass would read them.
  size_t per = static_cast<size_t>(h_ * w_ * 3);
  for (int64_t i = 0; i < fill_; ++i) checksum_ += images_[i * per] + images_[(i + 1) * per - 1];
  for (int64_t i = 0; i < fill_ * classes_; ++i) checksum_ += multi_hot_[i] != 0.0f;
  ctx().count(fill_ == batch_ ? "collate.batches" : "collate.partial_batches");
  fill_ = 0;
}

void CollateSink::flush(Emitter&) {
  if (fill_ > 0) complete_batch();
  ctx().gauge("collate.checksum", static_cast<double>(checksum_ % (uint64_t{1} << 52)));
}

}  // namespace catlip::testing
