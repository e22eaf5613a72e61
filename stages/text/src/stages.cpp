// The implementation of catlip/text/stages.h: the stages of the `text` plugin.
#include "catlip/text/stages.h"

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <stdexcept>

namespace catlip::text {
namespace {

std::string join(const std::vector<std::string>& v, char sep = ' ') {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += sep;
    s += v[i];
  }
  return s;
}

std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream ss(s);
  std::string w;
  while (ss >> w) out.push_back(w);
  return out;
}

// Parameters shared by the stages that parse captions, bound to the stage's
// LabelerOptions member.
template <class S>
void add_model_params(StageSchema& s, LabelerOptions S::*lopt) {
  s.params.push_back(Param("pos", lopt, &LabelerOptions::pos)
                         .values({{"nouns", PosMode::Nouns}, {"all", PosMode::All}}).def(PosMode::Nouns)
                         .describe("Which tokens may become labels: \"nouns\" keeps Penn tags NN and NNS "
                                   "(the paper); \"all\" lemmatizes every token as CoreNet actually does."));
  s.params.push_back(Param("synset_rule", lopt, &LabelerOptions::rule)
                         .values({{"head_lemma", SynsetRule::HeadLemma}, {"first_sense", SynsetRule::FirstSense}})
                         .def(SynsetRule::HeadLemma)
                         .describe("head_lemma (CoreNet): the lemma's first noun sense, kept only if that "
                                   "synset's first lemma is the lemma itself; first_sense: always the first noun sense."));
  s.params.push_back(Param("wordnet_dir", lopt, &LabelerOptions::wordnet_dir).def(kDefaultWordNetDir).existing_dir()
                         .describe("Directory with WordNet 3.0 index.noun, data.noun, noun.exc (Debian wordnet-base)."));
  s.params.push_back(Param("lexicon_dir", lopt, &LabelerOptions::lexicon_dir).def(kDefaultLexiconDir).existing_dir()
                         .describe("Directory with the POS model tags.yml, words.yml, unknown.yml "
                                   "(Debian liblingua-en-tagger-perl)."));
  s.params.push_back(Param("max_bytes", lopt, &LabelerOptions::clean, &CleanOptions::max_bytes).def(16384)
                         .range(16, 1 << 26)
                         .describe("Captions longer than this are cut (counted as truncated.long_caption)."));
  s.params.push_back(Param("invalid_utf8", lopt, &LabelerOptions::clean, &CleanOptions::repair_utf8)
                         .values({{"repair", true}, {"reject", false}}).def(true)
                         .describe("Invalid UTF-8 in a caption: repair (drop the invalid bytes; counted as "
                                   "repaired.invalid_utf8) or drop the sample."));
}

// Counts what cleaning reported; returns false if the sample must be dropped.
bool count_clean(StageContext& ctx, const CleanResult& c) {
  if (c.truncated) ctx.count("truncated.long_caption");
  if (c.rejected) {
    ctx.count("skipped.invalid_utf8");
    return false;
  }
  if (c.invalid_utf8) ctx.count("repaired.invalid_utf8");
  if (c.text.empty()) ctx.count("empty_caption");
  return true;
}

}  // namespace

std::string in_run_dir(const StageContext& ctx, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  return (std::filesystem::path(ctx.run_dir()) / path).string();
}

// ---------------------------------------------------------------- text.parse

StageSchema ParseStage::schema() {
  StageSchema s;
  s.type = "text.parse";
  s.restartable = true;  // one caption in, one sample out: no state across items
  s.kind = StageKind::Transform;
  s.doc = "Parses a caption: cleans it as CoreNet does, tokenizes (NLTK Treebank), POS-tags (HMM), "
          "keeps nouns, lemmatizes them (WordNet morphy) and maps them to WordNet noun synsets.";
  s.params.push_back(Param("field", &ParseStage::field_).def("txt")
                         .describe("Text field holding the caption."));
  s.params.push_back(Param("write_tokens", &ParseStage::write_tokens_).def(true)
                         .describe("Also write `tokens` and `tags` (space-joined); off saves bandwidth."));
  add_model_params(s, &ParseStage::lopt_);
  s.reads = {"txt"};
  s.writes = {"tokens", "tags", "nouns", "synsets"};
  return s;
}

void ParseStage::configure() {
  labeler_ = std::make_unique<Labeler>(lopt_);
}

void ParseStage::process(Sample&& in, Emitter& out) {
  const std::string* cap = in.text(field_);
  std::string from_bytes;
  if (!cap) {
    if (const Bytes* b = in.bytes(field_)) {
      from_bytes = b->data.str();
      cap = &from_bytes;
    }
  }
  if (!cap) {
    ctx().count("skipped.no_caption");
    return;
  }
  Parse& p = parse_;
  labeler_->parse(*cap, p);
  if (!count_clean(ctx(), p.clean)) return;
  if (write_tokens_) {
    std::vector<std::string> tags;
    tags.reserve(p.tags.size());
    for (int t : p.tags) tags.push_back(labeler_->tagger().penn_tag(t));
    in.set_text("tokens", join(p.tokens));
    in.set_text("tags", join(tags));
  }
  in.set_text("nouns", join(p.lemmas));
  auto syn = p.unique_synsets();
  ctx().count("parsed");
  if (syn.empty()) ctx().count("no_synset");
  in.set_ints("synsets", IntList(syn.begin(), syn.end()));
  out.emit(std::move(in));
}

// --------------------------------------------------------- text.synset_count

StageSchema SynsetCountStage::schema() {
  StageSchema s;
  s.type = "text.synset_count";
  s.kind = StageKind::Sink;
  s.doc = "Counts, per replica, how many samples contain each synset. At flush it writes "
          "vocab.part-<replica>.tsv into the run directory and emits its partial counts as one "
          "sample (IntList offsets, counts, stats) for text.vocab_merge.";
  s.params.push_back(Param("field", &SynsetCountStage::field_).def("synsets")
                         .describe("IntList field of synset offsets (written by text.parse)."));
  s.params.push_back(Param("write_part", &SynsetCountStage::write_part_).def(true)
                         .describe("Write vocab.part-<replica>.tsv (for `catlip vocab merge RUN_DIR`)."));
  s.reads = {"synsets"};
  s.writes = {"offsets", "counts", "stats"};
  return s;
}

void SynsetCountStage::configure() {}

void SynsetCountStage::process(Sample&& in, Emitter&) {
  const IntList* syn = in.ints(field_);
  if (!syn) {
    ctx().count("skipped.no_synsets");
    return;
  }
  std::vector<int64_t> u(syn->begin(), syn->end());
  std::sort(u.begin(), u.end());
  u.erase(std::unique(u.begin(), u.end()), u.end());
  u.erase(std::remove_if(u.begin(), u.end(), [](int64_t x) { return x < 0; }), u.end());
  counts_.add_sample(u);
  ctx().count("counted");
}

void SynsetCountStage::flush(Emitter& out) {
  std::string key = "synset_counts." + std::to_string(ctx().replica());
  if (write_part_) {
    std::string path = in_run_dir(ctx(), "vocab.part-" + std::to_string(ctx().replica()) + ".tsv");
    counts_.write_file(path);
    ctx().log(LogLevel::Info, "wrote " + path + " (" + std::to_string(counts_.samples) + " samples, " +
                                  std::to_string(counts_.counts.size()) + " synsets)");
  }
  out.emit(counts_.to_sample(key));
}

// ---------------------------------------------------------- text.vocab_merge

StageSchema VocabMergeStage::schema() {
  StageSchema s;
  s.type = "text.vocab_merge";
  s.kind = StageKind::Sink;
  s.doc = "Sums the partial synset counts emitted by text.synset_count replicas (run it with one "
          "replica), selects the vocabulary by min_count and/or top_k and writes the TSV "
          "(index, wnid, lemma, count, gloss; by count, ties by wnid) and a stats file.";
  s.params.push_back(Param("min_count", &VocabMergeStage::min_count_).def(1).at_least(1)
                         .describe("Keep synsets found in at least this many samples (the paper: 500 on DataComp)."));
  s.params.push_back(Param("top_k", &VocabMergeStage::top_k_).def(0).at_least(0)
                         .describe("Then keep only the most frequent top_k (CoreNet: 24320); 0 = no limit."));
  s.params.push_back(Param("output", &VocabMergeStage::output_).def("vocab.tsv")
                         .describe("Vocabulary TSV; a relative path is inside the run directory."));
  s.params.push_back(Param("stats", &VocabMergeStage::stats_).def("vocab.stats.txt")
                         .describe("Stats file; a relative path is inside the run directory."));
  s.params.push_back(Param("expect_parts", &VocabMergeStage::expect_parts_).def(0).at_least(0)
                         .describe("If > 0, fail when a different number of partials arrives."));
  s.params.push_back(Param("wordnet_dir", &VocabMergeStage::wordnet_dir_).def(kDefaultWordNetDir).existing_dir()
                         .describe("WordNet directory, for the lemma and gloss columns."));
  s.reads = {"offsets", "counts", "stats"};
  return s;
}

void VocabMergeStage::configure() {
  if (ctx().replicas() != 1)
    throw std::invalid_argument("text.vocab_merge must run as a single replica (replicas = 1)");
}

void VocabMergeStage::process(Sample&& in, Emitter&) {
  try {
    counts_.merge(SynsetCounts::from_sample(in));
    ++parts_;
    ctx().count("partials");
  } catch (const std::exception& e) {
    ctx().count("skipped.not_partial");
    ctx().log(LogLevel::Warn, e.what());
  }
}

void VocabMergeStage::flush(Emitter&) {
  if (expect_parts_ > 0 && parts_ != expect_parts_)
    throw std::runtime_error("text.vocab_merge: expected " + std::to_string(expect_parts_) +
                             " partial counts, got " + std::to_string(parts_));
  auto wn = WordNet::shared(wordnet_dir_);
  auto v = select_vocab(counts_, min_count_, top_k_, *wn);
  std::string out = in_run_dir(ctx(), output_), st = in_run_dir(ctx(), stats_);
  write_vocab_tsv(out, v);
  write_vocab_stats(st, counts_, v, min_count_, top_k_);
  ctx().gauge("vocab_size", static_cast<double>(v.size()));
  ctx().log(LogLevel::Info, "wrote " + out + ": " + std::to_string(v.size()) + " synsets from " +
                                std::to_string(counts_.samples) + " samples (" + std::to_string(parts_) +
                                " partials)");
}

// --------------------------------------------------------------- text.labels

StageSchema LabelsStage::schema() {
  StageSchema s;
  s.type = "text.labels";
  s.restartable = true;  // a fixed vocabulary, one sample in, one out
  s.kind = StageKind::Transform;
  s.doc = "Maps a sample to its vocabulary indices (IntList `labels`, sorted unique: a sparse "
          "multi-hot). Uses `synsets` if present, else the `nouns` lemmas, else parses the caption.";
  s.params.push_back(Param("vocab", &LabelsStage::vocab_path_).require().existing_file()
                         .describe("Vocabulary TSV written by text.vocab_merge or `catlip vocab merge`."));
  s.params.push_back(Param("field", &LabelsStage::field_).def("txt")
                         .describe("Caption field, used when neither `synsets` nor `nouns` is present."));
  s.params.push_back(Param("drop_unlabeled", &LabelsStage::drop_unlabeled_).def(false)
                         .describe("Drop samples with no label in the vocabulary (counted either way)."));
  add_model_params(s, &LabelsStage::lopt_);
  s.reads = {"synsets", "nouns", "txt"};
  s.writes = {"labels"};
  return s;
}

void LabelsStage::configure() {
  rule_ = lopt_.rule;
  vocab_ = Vocab::load(vocab_path_);
  if (vocab_.size() == 0) ctx().log(LogLevel::Warn, "vocabulary " + vocab_path_ + " is empty");
  wordnet_ = WordNet::shared(lopt_.wordnet_dir);
}

void LabelsStage::process(Sample&& in, Emitter& out) {
  std::vector<int64_t> labels;
  auto add = [&](int64_t off) {
    if (off < 0) return;
    int64_t i = vocab_.index_of(off);
    if (i >= 0) labels.push_back(i);
  };
  if (const IntList* syn = in.ints("synsets")) {
    for (auto o : *syn) add(o);
  } else if (const std::string* nouns = in.text("nouns")) {
    for (auto& l : split_ws(*nouns)) add(wordnet_->synset_offset(l, rule_));
  } else if (const std::string* cap = in.text(field_)) {
    if (!labeler_) labeler_ = std::make_unique<Labeler>(lopt_);
    Parse p = labeler_->parse(*cap);
    if (!count_clean(ctx(), p.clean)) return;
    for (auto o : p.synsets) add(o);
  } else {
    ctx().count("skipped.no_caption");
    return;
  }
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  if (labels.empty()) {
    ctx().count("unlabeled");
    if (drop_unlabeled_) {
      ctx().count("dropped.unlabeled");
      return;
    }
  } else {
    ctx().count("labeled");
  }
  in.set_ints("labels", IntList(labels.begin(), labels.end()));
  out.emit(std::move(in));
}

}  // namespace catlip::text
