// Fuzzes caption cleaning and the Treebank tokenizer (stages/text:
// clean.cpp, tokenize.cpp): what runs on every web caption before tagging.
//
// Input: byte 0 holds option bits, the rest is the raw caption.
//   bit 0: reject invalid UTF-8 instead of repairing   bit 1: max_bytes 64
//
// Properties: no crash; cleaned text is valid UTF-8 within max_bytes;
// cleaning is idempotent on its output's validity; the tokenizer's fast
// path and its full pass-by-pass emulation produce the same tokens, none
// empty; the UTF-8 helpers agree with each other.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "catlip/text/clean.h"
#include "catlip/text/tokenize.h"
#include "fuzz_common.h"

using namespace catlip::text;

static std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (auto& t : v) s += "[" + t + "]";
  return s;
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
  return 0;
}
