// The implementation of catlip/image/decode_stage.h: the `image.decode` stage, with its
// optional thread pool that keeps samples in order.
#include "catlip/image/decode_stage.h"

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <new>
#include <stdexcept>
#include <thread>

namespace catlip::image {

struct ImageDecodeStage::Work {
  Sample sample;
  std::string field;  // which field held the image ("" if none)
  DecodeOutcome outcome;
  Blob pixels;  // size x size x 3, from Emitter::allocate (the shared-memory pool on a node-local link)
  bool done = false;  // guarded by Pool::mu
};

// A fixed set of threads taking Work items; completion is signalled per item.
struct ImageDecodeStage::Pool {
  std::mutex mu;
  std::condition_variable work_cv, done_cv;
  std::deque<Work*> queue;
  std::deque<std::unique_ptr<Work>> pending;  // submission order, owned here
  std::vector<std::thread> threads;
  bool stopping = false;

  void start(int n, const ImageDecodeStage* stage) {
    for (int i = 0; i < n; ++i)
      threads.emplace_back([this, stage] {
        for (;;) {
          Work* w;
          {
            std::unique_lock lk(mu);
            work_cv.wait(lk, [&] { return stopping || !queue.empty(); });
            if (queue.empty()) return;
            w = queue.front();
            queue.pop_front();
          }
          stage->run(*w);
          {
            std::lock_guard lk(mu);
            w->done = true;
          }
          done_cv.notify_all();
        }
      });
  }
  void stop() {
    {
      std::lock_guard lk(mu);
      stopping = true;
      queue.clear();
    }
    work_cv.notify_all();
    for (auto& t : threads) t.join();
    threads.clear();
  }
};

ImageDecodeStage::ImageDecodeStage() = default;
ImageDecodeStage::~ImageDecodeStage() { close(); }

StageSchema ImageDecodeStage::schema() {
  StageSchema s;
  s.type = "image.decode";
  s.restartable = true;  // one image in, one out: no state across items
  s.kind = StageKind::Transform;
  s.doc =
      "Decodes the sample's image (JPEG via libjpeg-turbo with DCT-scaled, region-only decode; PNG; WebP) and "
      "applies the CatLIP/CoreNet transform: train = RandomResizedCrop + horizontal flip, eval = resize shorter "
      "side + center crop. Output `image`: uint8 HWC [size,size,3] RGB (grayscale replicated, CMYK converted, "
      "alpha composited on white); the encoded field is erased. Bad images are skipped and counted as "
      "skipped.empty_image / unknown_format / too_many_pixels / decode_error / no_image.";
  s.params = {
      Param("mode", &ImageDecodeStage::spec_, &TransformSpec::mode)
          .values({{"train", TransformSpec::Train}, {"eval", TransformSpec::Eval}}).def(TransformSpec::Train)
          .describe("train: RandomResizedCrop + flip; eval: Resize(resize) + CenterCrop(size)"),
      Param("size", &ImageDecodeStage::spec_, &TransformSpec::size).def(224).range(1, 8192).describe("output height and width in pixels"),
      Param("resize", &ImageDecodeStage::spec_, &TransformSpec::resize).def(0).range(0, 16384)
          .describe("eval: shorter side after resizing, before the center crop; 0 = round(size * 256 / 224)"),
      Param("scale", &ImageDecodeStage::scale_).def({0.08, 1.0}).range(0.0, 1.0)
          .describe("train: [min, max] fraction of the image area covered by the crop"),
      Param("ratio", &ImageDecodeStage::ratio_).def({3.0 / 4.0, 4.0 / 3.0}).range(0.01, 100.0)
          .describe("train: [min, max] crop aspect ratio w/h, sampled log-uniformly"),
      Param("flip", &ImageDecodeStage::spec_, &TransformSpec::flip_prob).def(0.5).range(0.0, 1.0).describe("train: probability of a horizontal flip"),
      Param("max_pixels", &ImageDecodeStage::spec_, &TransformSpec::max_pixels).def(kDefaultMaxPixels).at_least(1)
          .describe("images whose header declares more pixels are skipped before decoding (decompression bombs)"),
      Param("seed", &ImageDecodeStage::seed_).def(0)
          .describe("augmentation seed; a sample's crop depends only on (seed, key, epoch)"),
      Param("threads", &ImageDecodeStage::threads_).def(1).range(1, 256)
          .describe("decode threads inside this replica (1 = decode in the calling thread)"),
      Param("inflight", &ImageDecodeStage::inflight_).def(0).range(0, 65536)
          .describe("samples held in flight when threads > 1; 0 = 4 * threads"),
      Param("scaled_decode", &ImageDecodeStage::spec_, &TransformSpec::scaled_decode).def(true)
          .describe("let libjpeg-turbo shrink JPEGs in the DCT domain when the output needs fewer pixels"),
      Param("fields", &ImageDecodeStage::fields_).def({"jpg", "jpeg", "png", "webp"})
          .describe("byte fields holding the encoded image; the first present is decoded, all are erased"),
      Param("output", &ImageDecodeStage::output_).def("image").describe("name of the output tensor field"),
  };
  s.reads = {"jpg", "jpeg", "png", "webp"};
  s.writes = {"image"};
  return s;
}

void ImageDecodeStage::configure() {
  // Derived from the bound values: resize and inflight (0 = computed
  // default); scale and ratio are checked and combined into spec_.rrc.
  if (spec_.resize == 0) spec_.resize = static_cast<int>((int64_t{spec_.size} * 256 + 112) / 224);
  if (spec_.resize < spec_.size)
    throw std::invalid_argument("image.decode: resize (" + std::to_string(spec_.resize) +
                                ") must be at least size (" + std::to_string(spec_.size) + ")");
  const auto &scale = scale_, &ratio = ratio_;
  if (scale.size() != 2 || scale[0] > scale[1] || scale[1] <= 0)
    throw std::invalid_argument("image.decode: scale must be [min, max] with 0 <= min <= max, max > 0");
  if (ratio.size() != 2 || ratio[0] > ratio[1])
    throw std::invalid_argument("image.decode: ratio must be [min, max] with min <= max");
  spec_.rrc = RandomResizedCropParams{scale[0], scale[1], ratio[0], ratio[1]};
  if (inflight_ == 0) inflight_ = static_cast<size_t>(4 * threads_);
  if (threads_ > 1) {
    pool_ = std::make_unique<Pool>();
    pool_->start(threads_, this);
  }
}

void ImageDecodeStage::run(Work& w) const {
  for (auto& f : fields_)
    if (auto* b = w.sample.bytes(f)) {
      w.field = f;
      Rng rng = Rng::for_sample(static_cast<uint64_t>(seed_), w.sample.key, w.sample.origin.epoch);
      try {
        // Read through a const reference: a shared field is not copied.
        const Blob& jpeg = b->data;
        w.outcome = decode_transform(jpeg.data(), jpeg.size(), spec_, rng, reinterpret_cast<uint8_t*>(w.pixels.data()),
                                     w.pixels.size());
      } catch (const std::bad_alloc&) {  // e.g. the output buffer: skip the image, keep going
        w.outcome = DecodeOutcome{};
        w.outcome.status = DecodeStatus::OutOfMemory;
        w.outcome.message = "out of memory";
      }
      return;
    }
}

void ImageDecodeStage::finish(Work& w, Emitter& out) {
  std::string reason;
  if (w.field.empty()) reason = "no_image";
  else if (!w.outcome.ok()) reason = decode_status_reason(w.outcome.status);
  if (!reason.empty()) {
    ctx().count("skipped." + reason);
    // Every skip is counted; the first 100 and then every 1000th are logged
    // so a shard full of garbage cannot flood the log.
    ++skips_;
    if (skips_logged_ < 100 || skips_ % 1000 == 0) {
      ++skips_logged_;
      std::string msg = "skipped sample '" + w.sample.key + "' from " +
                        (w.sample.origin.url.empty() ? std::string("?") : w.sample.origin.url) + ": " + reason;
      if (!w.field.empty()) msg += " (field " + w.field + "): " + w.outcome.message;
      else msg += ": none of the image fields is present";
      ctx().log(LogLevel::Warn, msg);
    }
    return;
  }
  for (auto& f : fields_) w.sample.erase(f);
  Tensor t;
  t.dtype = DType::U8;
  t.shape = {spec_.size, spec_.size, 3};
  t.data = std::move(w.pixels);  // written in place: no copy
  w.sample.set(output_, std::move(t));
  ctx().count("decoded");
  out.emit(std::move(w.sample));
}

void ImageDecodeStage::process(Sample&& in, Emitter& out) {
  const size_t bytes = size_t(spec_.size) * size_t(spec_.size) * 3;
  if (!pool_) {
    Work w;
    w.sample = std::move(in);
    w.pixels = out.allocate(bytes);
    run(w);
    finish(w, out);
    return;
  }
  auto w = std::make_unique<Work>();
  w->sample = std::move(in);
  w->pixels = out.allocate(bytes);  // here: the Emitter is only for the calling thread
  {
    std::lock_guard lk(pool_->mu);
    pool_->queue.push_back(w.get());
    pool_->pending.push_back(std::move(w));
  }
  pool_->work_cv.notify_one();
  drain(out, inflight_ - 1);
}

void ImageDecodeStage::drain(Emitter& out, size_t keep) {
  for (;;) {
    std::unique_ptr<Work> w;
    {
      std::unique_lock lk(pool_->mu);
      if (pool_->pending.empty()) return;
      auto& front = pool_->pending.front();
      // Block only while over the limit; otherwise emit what is already done.
      if (pool_->pending.size() > keep) pool_->done_cv.wait(lk, [&] { return front->done; });
      else if (!front->done) return;
      w = std::move(pool_->pending.front());
      pool_->pending.pop_front();
    }
    finish(*w, out);
  }
}

void ImageDecodeStage::flush(Emitter& out) {
  if (pool_) drain(out, 0);
}

void ImageDecodeStage::close() {
  if (pool_) {
    pool_->stop();
    pool_.reset();
  }
}

}  // namespace catlip::image
