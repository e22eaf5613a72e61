// catlip/text bpe_stages.cpp: text.bpe_count, text.bpe_learn, text.bpe_encode.
#include "catlip/text/bpe_stages.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <filesystem>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "catlip/text/stages.h"  // in_run_dir

namespace catlip::text {
namespace {

constexpr int kStats = 6;  // replica, replicas, captions, no_caption, words_total, pruned_words

// The caption of a sample: a text field, or bytes (as webdataset .txt
// members arrive), copied into `tmp`.
const std::string* caption_of(const Sample& s, const std::string& field, std::string& tmp) {
  if (const std::string* t = s.text(field)) return t;
  if (const Bytes* b = s.bytes(field)) {
    tmp = b->data.str();
    return &tmp;
  }
  return nullptr;
}

// Counts what cleaning reported (as the other text stages do); false: drop.
bool count_bpe_clean(StageContext& ctx, const CleanResult& c) {
  if (c.truncated) ctx.count("truncated.long_caption");
  if (c.rejected) {
    ctx.count("skipped.invalid_utf8");
    return false;
  }
  if (c.invalid_utf8) ctx.count("repaired.invalid_utf8");
  return true;
}

template <class S>
void add_clean_params(StageSchema& s, CleanOptions S::*clean) {
  s.params.push_back(Param("max_bytes", clean, &CleanOptions::max_bytes).def(16384).range(16, 1 << 26)
                         .describe("Captions longer than this are cut before cleaning (counted as truncated.long_caption)."));
}

}  // namespace

// ---------------------------------------------------------------- BpePartial

Sample BpePartial::to_sample(const std::string& key) const {
  std::vector<const std::pair<const std::string, int64_t>*> v;
  v.reserve(counts.size());
  for (auto& e : counts) v.push_back(&e);
  std::sort(v.begin(), v.end(), [](auto* a, auto* b) { return a->first < b->first; });
  std::string words;
  IntList cnts;
  cnts.reserve(v.size());
  for (auto* e : v) {
    words += e->first;
    words += '\n';
    cnts.push_back(e->second);
  }
  Sample s;
  s.key = key;
  s.set_text("kind", "bpe_counts");
  s.set_bytes("words", std::move(words));
  s.set_ints("counts", std::move(cnts));
  s.set_ints("stats", IntList{replica, replicas, captions, no_caption, words_total, pruned_words});
  return s;
}

BpePartial BpePartial::from_sample(const Sample& s) {
  const std::string* kind = s.text("kind");
  const Bytes* words = s.bytes("words");
  const IntList* cnts = s.ints("counts");
  const IntList* stats = s.ints("stats");
  if (!kind || *kind != "bpe_counts" || !words || !cnts || !stats || stats->size() != kStats)
    throw std::runtime_error("sample '" + s.key + "' is not a text.bpe_count partial (needs kind = \"bpe_counts\", "
                             "Bytes words, IntList counts and stats)");
  BpePartial p;
  p.replica = (*stats)[0];
  p.replicas = (*stats)[1];
  p.captions = (*stats)[2];
  p.no_caption = (*stats)[3];
  p.words_total = (*stats)[4];
  p.pruned_words = (*stats)[5];
  p.counts.reserve(cnts->size());
  std::string_view all = words->data;
  size_t pos = 0, i = 0;
  while (pos < all.size()) {
    size_t nl = all.find('\n', pos);
    if (nl == std::string_view::npos || i >= cnts->size())
      throw std::runtime_error("sample '" + s.key + "': words and counts of different lengths");
    std::string_view w = all.substr(pos, nl - pos);
    auto it = p.counts.find(w);
    if (it == p.counts.end()) p.counts.emplace(std::string(w), (*cnts)[i]);
    else it->second += (*cnts)[i];
    ++i;
    pos = nl + 1;
  }
  if (i != cnts->size()) throw std::runtime_error("sample '" + s.key + "': words and counts of different lengths");
  return p;
}

// ------------------------------------------------------------ text.bpe_count

StageSchema BpeCountStage::schema() {
  StageSchema s;
  s.type = "text.bpe_count";
  s.kind = StageKind::Sink;  // like text.synset_count: it emits only its partial, at flush
  s.doc = "Counts, per replica, the pre-tokens of CLIP's BPE tokenizer in the captions (cleaned as "
          "text.parse does, lowercased, CLIP's pre-tokenizer pattern). At flush it emits its partial "
          "counts (the max_words most frequent) as one sample for text.bpe_learn.";
  s.params.push_back(Param("field", &BpeCountStage::field_).def("txt")
                         .describe("Text (or bytes) field holding the caption."));
  s.params.push_back(Param("max_words", &BpeCountStage::max_words_).def(int64_t{1000000}).range(1, 1e9)
                         .describe("Distinct pre-tokens kept (the most frequent): bounds memory and the "
                                   "partial's size. Beyond 2 * max_words the table is cut back to max_words "
                                   "while counting (counted as pruned_words), so rare words' counts are approximate."));
  add_clean_params(s, &BpeCountStage::clean_);
  s.reads = {"txt"};
  s.writes = {"kind", "words", "counts", "stats"};
  return s;
}

void BpeCountStage::configure() {
  part_.replica = ctx().replica();
  part_.replicas = ctx().replicas();
}

void BpeCountStage::process(Sample&& in, Emitter&) {
  std::string tmp;
  const std::string* cap = caption_of(in, field_, tmp);
  if (!cap) {
    ++part_.no_caption;
    ctx().count("skipped.no_caption");
    return;
  }
  std::string text = bpe_normalize(*cap, clean_, &cr_);
  if (!count_bpe_clean(ctx(), cr_)) return;
  bpe_pretokenize(text, pre_);
  for (auto w : pre_) {
    auto it = part_.counts.find(w);
    if (it == part_.counts.end()) part_.counts.emplace(std::string(w), 1);
    else ++it->second;
  }
  part_.words_total += static_cast<int64_t>(pre_.size());
  ++part_.captions;
  ctx().count("counted");
  if (part_.counts.size() > 2 * static_cast<size_t>(max_words_)) {
    size_t n = bpe_keep_most_frequent(part_.counts, static_cast<size_t>(max_words_));
    part_.pruned_words += static_cast<int64_t>(n);
    ctx().count("pruned_words", static_cast<int64_t>(n));
  }
}

void BpeCountStage::flush(Emitter& out) {
  size_t n = bpe_keep_most_frequent(part_.counts, static_cast<size_t>(max_words_));
  if (n) {
    part_.pruned_words += static_cast<int64_t>(n);
    ctx().count("pruned_words", static_cast<int64_t>(n));
  }
  ctx().log(LogLevel::Info, "counted " + std::to_string(part_.words_total) + " pre-tokens (" +
                                std::to_string(part_.counts.size()) + " distinct) in " +
                                std::to_string(part_.captions) + " captions");
  out.emit(part_.to_sample("bpe_counts." + std::to_string(ctx().replica())));
  part_.counts = {};
}

// ------------------------------------------------------------ text.bpe_learn

StageSchema BpeLearnStage::schema() {
  StageSchema s;
  s.type = "text.bpe_learn";
  s.kind = StageKind::Sink;
  s.doc = "Sums the partial pre-token counts of every text.bpe_count replica (run it with one replica), "
          "learns CLIP's byte-level BPE merges (vocab_size - 514 of them: 512 byte tokens, SOT, EOT) "
          "and writes the tokenizer file (CLIP's merges format with a catlip header) and a stats JSON.";
  s.params.push_back(Param("vocab_size", &BpeLearnStage::vocab_size_).def(int64_t{4096})
                         .range(static_cast<double>(BpeTokenizer::kMinVocabSize), 1 << 24)
                         .describe("Vocabulary size: 512 byte tokens + merges + <|startoftext|>, <|endoftext|> "
                                   "(CLIP: 49408). Fewer merges are learned if the words run out of pairs."));
  s.params.push_back(Param("max_words", &BpeLearnStage::max_words_).def(int64_t{1000000}).range(1, 1e9)
                         .describe("Learn from the most frequent max_words distinct pre-tokens (bounds memory)."));
  s.params.push_back(Param("output", &BpeLearnStage::output_).def("bpe.txt")
                         .describe("Tokenizer file; a relative path is inside the run directory."));
  s.params.push_back(Param("stats", &BpeLearnStage::stats_).def("bpe.stats.json")
                         .describe("Stats JSON; a relative path is inside the run directory."));
  s.params.push_back(Param("expect_parts", &BpeLearnStage::expect_parts_).def(int64_t{0}).at_least(0)
                         .describe("If > 0, fail when a different number of partials arrives (every partial "
                                   "is also checked against the replica count its sender reports)."));
  s.reads = {"kind", "words", "counts", "stats"};
  return s;
}

void BpeLearnStage::configure() {
  if (ctx().replicas() != 1)
    throw std::invalid_argument("text.bpe_learn must run as a single replica (replicas = 1)");
}

void BpeLearnStage::process(Sample&& in, Emitter&) {
  BpePartial p;
  try {
    p = BpePartial::from_sample(in);
  } catch (const std::exception& e) {
    ctx().count("skipped.not_partial");
    ctx().log(LogLevel::Warn, e.what());
    return;
  }
  if (upstream_replicas_ < 0) upstream_replicas_ = p.replicas;
  if (p.replicas != upstream_replicas_)
    throw std::runtime_error("text.bpe_learn: partials disagree on the number of text.bpe_count replicas (" +
                             std::to_string(upstream_replicas_) + " vs " + std::to_string(p.replicas) + ")");
  if (!replicas_seen_.insert(p.replica).second)
    throw std::runtime_error("text.bpe_learn: two partials from text.bpe_count replica " + std::to_string(p.replica));
  ++parts_;
  ctx().count("partials");
  total_.captions += p.captions;
  total_.no_caption += p.no_caption;
  total_.words_total += p.words_total;
  total_.pruned_words += p.pruned_words;
  if (total_.counts.empty()) {
    total_.counts = std::move(p.counts);
  } else {
    for (auto& [w, c] : p.counts) {
      auto it = total_.counts.find(w);
      if (it == total_.counts.end()) total_.counts.emplace(w, c);
      else it->second += c;
    }
  }
  // Bounded memory with many replicas: cut the tail (only the max_words most
  // frequent are learned from anyway).
  const auto cap = static_cast<size_t>(max_words_);
  if (total_.counts.size() > 4 * cap) total_.pruned_words += static_cast<int64_t>(bpe_keep_most_frequent(total_.counts, 2 * cap));
}

void BpeLearnStage::flush(Emitter&) {
  if (parts_ == 0)
    throw std::runtime_error("text.bpe_learn: no partial counts arrived (is a text.bpe_count stage its input?)");
  if (static_cast<int64_t>(replicas_seen_.size()) != upstream_replicas_)
    throw std::runtime_error("text.bpe_learn: partials from " + std::to_string(replicas_seen_.size()) + " of " +
                             std::to_string(upstream_replicas_) + " text.bpe_count replicas");
  if (expect_parts_ > 0 && parts_ != expect_parts_)
    throw std::runtime_error("text.bpe_learn: expected " + std::to_string(expect_parts_) + " partial counts, got " +
                             std::to_string(parts_));
  if (total_.counts.empty())
    throw std::runtime_error("text.bpe_learn: no caption words to learn from (" + std::to_string(total_.captions) +
                             " captions, " + std::to_string(total_.no_caption) +
                             " samples without the caption field)");
  BpeLearnStats st;
  BpeTokenizer tok = BpeTokenizer::learn(total_.counts, vocab_size_, static_cast<size_t>(max_words_), &st);
  std::string out = in_run_dir(ctx(), output_), stp = in_run_dir(ctx(), stats_);
  if (auto parent = std::filesystem::path(out).parent_path(); !parent.empty())
    std::filesystem::create_directories(parent);
  tok.save(out);
  if (tok.vocab_size() < vocab_size_)
    ctx().log(LogLevel::Warn, "only " + std::to_string(tok.num_merges()) + " merges could be learned: vocab_size " +
                                  std::to_string(tok.vocab_size()) + " < " + std::to_string(vocab_size_) +
                                  " requested (too few distinct captions words)");

  // Stats: sizes, compression, the most frequent words and how they encode.
  std::vector<std::pair<std::string, int64_t>> top(total_.counts.begin(), total_.counts.end());
  size_t ntop = std::min<size_t>(20, top.size());
  std::partial_sort(top.begin(), top.begin() + static_cast<std::ptrdiff_t>(ntop), top.end(),
                    [](auto& a, auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
  json::Ordered top_words = json::Ordered::array();
  for (size_t i = 0; i < ntop; ++i)
    top_words.push_back({{"word", top[i].first}, {"count", top[i].second}, {"tokens", tok.encode(top[i].first).size()}});
  json::Ordered stats = {
      {"tokenizer", out},
      {"checksum", tok.checksum()},
      {"vocab_size", tok.vocab_size()},
      {"requested_vocab_size", vocab_size_},
      {"merges", tok.num_merges()},
      {"partials", parts_},
      {"captions", total_.captions},
      {"samples_without_caption", total_.no_caption},
      {"words_total", total_.words_total},
      {"distinct_words", st.distinct_words},
      {"learned_from_words", st.kept_words},
      {"pruned_words", total_.pruned_words},
      {"skipped_pairs", st.skipped_pairs},
      {"symbols_before", st.symbols_before},
      {"tokens_after", st.symbols_after},
      {"tokens_per_word", json::round_fixed(st.total_words ? static_cast<double>(st.symbols_after) /
                                                                 static_cast<double>(st.total_words)
                                                           : 0.0,
                                            4)},
      {"top_words", std::move(top_words)}};
  // One key per line; top_words one word per line.
  const std::string j = json::dump(stats, 2) + "\n";
  {
    std::string tmp = stp + ".tmp";
    std::ofstream f(tmp, std::ios::trunc);
    if (!f) throw std::runtime_error("cannot write " + tmp);
    f << j;
    f.close();
    if (!f) throw std::runtime_error("write failed: " + tmp);
    std::filesystem::rename(tmp, stp);
  }
  ctx().gauge("vocab_size", static_cast<double>(tok.vocab_size()));
  ctx().gauge("merges", static_cast<double>(tok.num_merges()));
  ctx().log(LogLevel::Info, "wrote " + out + ": " + std::to_string(tok.num_merges()) + " merges, vocab_size " +
                                std::to_string(tok.vocab_size()) + ", checksum " + tok.checksum() + ", from " +
                                std::to_string(total_.captions) + " captions (" + std::to_string(parts_) +
                                " partials)");
  total_.counts = {};
}

// ----------------------------------------------------------- text.bpe_encode

StageSchema BpeEncodeStage::schema() {
  StageSchema s;
  s.type = "text.bpe_encode";
  s.restartable = true;  // a fixed tokenizer, one sample in, one out
  s.kind = StageKind::Transform;
  s.doc = "Encodes the caption with a BPE tokenizer written by text.bpe_learn: IntList `tokens` = "
          "<|startoftext|> ids <|endoftext|>, cut to context_length keeping <|endoftext|> last (open_clip's "
          "tokenize(truncate=True)), not padded. Samples without a caption are dropped (skipped.no_caption).";
  s.params.push_back(Param("tokenizer", &BpeEncodeStage::tokenizer_path_).require().existing_file()
                         .describe("Tokenizer file written by text.bpe_learn."));
  s.params.push_back(Param("context_length", &BpeEncodeStage::context_length_).def(int64_t{77}).range(2, 1 << 20)
                         .describe("Most ids per caption, SOT and EOT included (CLIP: 77)."));
  s.params.push_back(Param("field", &BpeEncodeStage::field_).def("txt")
                         .describe("Text (or bytes) field holding the caption."));
  s.params.push_back(Param("output_field", &BpeEncodeStage::output_field_).def("tokens")
                         .describe("IntList field written with the ids."));
  add_clean_params(s, &BpeEncodeStage::clean_);
  s.reads = {"txt"};
  s.writes = {"tokens"};
  return s;
}

void BpeEncodeStage::configure() {
  tok_ = std::make_unique<BpeTokenizer>(BpeTokenizer::load(tokenizer_path_));
  ctx().gauge("vocab_size", static_cast<double>(tok_->vocab_size()));
  ctx().log(LogLevel::Info, "tokenizer " + tokenizer_path_ + ": vocab_size " + std::to_string(tok_->vocab_size()) +
                              ", checksum " + tok_->checksum());
}

void BpeEncodeStage::process(Sample&& in, Emitter& out) {
  std::string tmp;
  const std::string* cap = caption_of(in, field_, tmp);
  if (!cap) {
    ctx().count("skipped.no_caption");
    return;
  }
  CleanResult cr;
  std::string text = bpe_normalize(*cap, clean_, &cr);
  if (!count_bpe_clean(ctx(), cr)) return;
  if (text.empty()) ctx().count("empty_caption");
  IntList ids{tok_->sot_id()};
  tok_->encode_normalized(text, ids);
  ids.push_back(tok_->eot_id());
  if (static_cast<int64_t>(ids.size()) > context_length_) {
    ids.resize(static_cast<size_t>(context_length_));
    ids.back() = tok_->eot_id();
    ctx().count("bpe_truncated");
  }
  ctx().count("encoded");
  in.set_ints(output_field_, std::move(ids));
  out.emit(std::move(in));
}

}  // namespace catlip::text
