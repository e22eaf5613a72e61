// Fuzzes caption cleaning (with ftfy's fixes), the Treebank tokenizer and
// CLIP's byte-level BPE (stages/text: clean.cpp, tokenize.cpp, bpe.cpp):
// what runs on every web caption before tagging or CLIP training.
//
// Input: byte 0 holds option bits, the rest is the raw caption.
//   bit 0: reject invalid UTF-8 instead of repairing   bit 1: max_bytes 64
//
// Properties: no crash; cleaned text is valid UTF-8 within max_bytes;
// cleaning is idempotent on its output's validity; the tokenizer's fast
// path and its full pass-by-pass emulation produce the same tokens, none
// empty; the UTF-8 helpers agree with each other; BPE ids stay in range,
// encode_context is SOT ... EOT within the context, and decode(encode(x))
// is x's pre-tokens joined by spaces (CLIP's decode).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "catlip/text/bpe.h"
#include "catlip/text/clean.h"
#include "catlip/text/tokenize.h"
#include "fuzz_common.h"

using namespace catlip::text;

static std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (auto& t : v) s += "[" + t + "]";
  return s;
}

// A small tokenizer learned once from a few captions.
static const BpeTokenizer& tokenizer() {
  static const BpeTokenizer t = [] {
    BpeWordCounts counts;
    for (const char* c : {"a photo of a dog on the red couch", "two cats sleeping in the sun", "it's a café in 東京",
                          "the quick brown fox jumps over the lazy dog 42 times"})
      for (auto& w : bpe_pretokenize(bpe_normalize(c))) counts[w] += 1;
    return BpeTokenizer::learn(counts, 600);
  }();
  return t;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint8_t flags = data[0];
  std::string raw(reinterpret_cast<const char*>(data) + 1, size - 1);

  CleanOptions opt;
  opt.repair_utf8 = !(flags & 1);
  if (flags & 2) opt.max_bytes = 64;
  CleanResult r = clean_caption(raw, opt);
  FUZZ_CHECK(valid_utf8(r.text), "cleaned caption is not valid UTF-8");
  FUZZ_CHECK(r.text.size() <= opt.max_bytes, "cleaned caption of %zu bytes over max_bytes", r.text.size());
  if (r.rejected) FUZZ_CHECK(r.text.empty() && r.invalid_utf8, "rejected caption has text");

  // The UTF-8 helpers.
  std::string rep = raw;
  bool replaced = repair_utf8(rep);
  FUZZ_CHECK(valid_utf8(rep), "repair_utf8 left invalid UTF-8");
  FUZZ_CHECK(replaced == !valid_utf8(raw), "repair_utf8 return value disagrees with valid_utf8");
  std::string dropped = raw;
  drop_invalid_utf8(dropped);
  FUZZ_CHECK(valid_utf8(dropped), "drop_invalid_utf8 left invalid UTF-8");
  (void)url_unquote(raw);
  (void)decode_entities(raw);

  // Tokenizing: fast path vs the full emulation, on the cleaned caption
  // (what the text stages do) and on the raw bytes.
  for (std::string_view t : {std::string_view(r.text), std::string_view(raw)}) {
    std::vector<std::string> fast = treebank_tokenize(t);
    std::vector<std::string> full;
    treebank_tokenize_full(t, full);
    FUZZ_CHECK(fast == full, "fast path %s != full %s", join(fast).c_str(), join(full).c_str());
    for (auto& tok : fast) FUZZ_CHECK(!tok.empty(), "empty token");
    // Reusing the output vector gives the same tokens.
    std::vector<std::string> reuse = {"stale", "tokens", "x"};
    treebank_tokenize(t, reuse);
    FUZZ_CHECK(reuse == fast, "reused output differs");
  }

  // BPE.
  const auto& tok = tokenizer();
  auto ids = tok.encode(raw);
  for (auto id : ids) FUZZ_CHECK(id >= 0 && id < tok.sot_id(), "BPE id %lld out of range", (long long)id);
  std::string joined;
  for (auto& w : bpe_pretokenize(bpe_normalize(raw))) joined += (joined.empty() ? "" : " ") + w;
  std::string back = tok.decode(ids);
  FUZZ_CHECK(back == joined, "BPE decode(encode(x)) differs from x's pre-tokens");
  auto ctx = tok.encode_context(raw, 16);
  FUZZ_CHECK(ctx.size() >= 2 && ctx.size() <= 16, "encode_context length %zu", ctx.size());
  FUZZ_CHECK(ctx.front() == tok.sot_id() && ctx.back() == tok.eot_id(), "encode_context not SOT ... EOT");
  return 0;
}
