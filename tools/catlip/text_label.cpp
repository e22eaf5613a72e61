// catlip label: explain how a caption becomes labels (tokens and tags, kept
// nouns, lemmas, synsets with head lemma and gloss, vocabulary indices).
#include <algorithm>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "catlip/text/labeler.h"
#include "catlip/text/vocab.h"
#include "cli.h"

using namespace catlip;
using namespace catlip::text;

namespace {

void label_usage() {
  std::cout << "Usage: catlip label CAPTION... [--vocab FILE] [--pos nouns|all]\n"
               "                    [--rule head_lemma|first_sense] [--wordnet DIR] [--lexicon DIR]\n\n"
               "Prints the caption's tokens with POS tags, the tokens kept as label candidates,\n"
               "their lemmas and WordNet synsets (wnid, head lemma, gloss) and, with --vocab,\n"
               "the vocabulary indices (the sample's `labels`). CAPTION '-' reads lines from stdin.\n";
}

void explain(Labeler& lab, const Vocab* vocab, const std::string& caption) {
  Parse p = lab.parse(caption);
  std::cout << "caption:  " << caption << "\n";
  if (p.clean.rejected) {
    std::cout << "  rejected: invalid UTF-8\n\n";
    return;
  }
  std::cout << "cleaned:  " << p.clean.text << (p.clean.truncated ? "   (truncated)" : "")
            << (p.clean.invalid_utf8 ? "   (invalid UTF-8 dropped)" : "") << "\n";
  std::cout << "tagged:  ";
  for (size_t i = 0; i < p.tokens.size(); ++i) std::cout << " " << p.tokens[i] << "/" << lab.tagger().penn_tag(p.tags[i]);
  std::cout << "\n";
  std::cout << "kept (" << (lab.options().pos == PosMode::Nouns ? "NN, NNS" : "all tokens") << "): "
            << p.kept.size() << "\n";
  std::vector<int64_t> labels;
  for (size_t k = 0; k < p.kept.size(); ++k) {
    const std::string& tok = p.tokens[p.kept[k]];
    std::cout << "  " << tok << " -> " << p.lemmas[k] << " -> ";
    int64_t off = p.synsets[k];
    if (off < 0) {
      int64_t first = lab.wordnet().synset_offset(p.lemmas[k], SynsetRule::FirstSense);
      if (first >= 0) {
        auto s = lab.wordnet().synset(first);
        std::cout << "no synset (first sense " << WordNet::wnid(first) << " is headed by '"
                  << (s ? s->head() : "?") << "')\n";
      } else {
        std::cout << "no synset (not a WordNet noun)\n";
      }
      continue;
    }
    auto s = lab.wordnet().synset(off);
    std::cout << WordNet::wnid(off) << " " << (s ? s->head() : "?");
    if (vocab) {
      int64_t idx = vocab->index_of(off);
      if (idx >= 0) {
        std::cout << "  [vocab " << idx << "]";
        labels.push_back(idx);
      } else {
        std::cout << "  [not in vocab]";
      }
    }
    std::cout << "\n      " << (s ? s->gloss : "") << "\n";
  }
  auto syn = p.unique_synsets();
  std::cout << "synsets:  " << syn.size();
  for (auto o : syn) std::cout << " " << WordNet::wnid(o);
  std::cout << "\n";
  if (vocab) {
    std::sort(labels.begin(), labels.end());
    labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
    std::cout << "labels:   [";
    for (size_t i = 0; i < labels.size(); ++i) std::cout << (i ? ", " : "") << labels[i];
    std::cout << "]\n";
  }
  std::cout << "\n";
}

int cmd_label(int argc, char** argv) {
  if (cli::wants_help(argc, argv)) {
    label_usage();
    return cli::kOk;
  }
  LabelerOptions opt;
  std::string vocab_path;
  std::vector<std::string> captions;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
        return argv[++i];
      };
      if (a == "--vocab") vocab_path = next();
      else if (a == "--pos") opt.pos = parse_pos_mode(next());
      else if (a == "--rule") opt.rule = parse_synset_rule(next());
      else if (a == "--wordnet") opt.wordnet_dir = next();
      else if (a == "--lexicon") opt.lexicon_dir = next();
      else if (a.size() > 1 && a[0] == '-')
        throw std::invalid_argument("unknown option " + a +
                                    cli::did_you_mean(a, {"vocab", "pos", "rule", "wordnet", "lexicon"}));
      else captions.push_back(a);
    }
  } catch (const std::exception& e) {
    std::cerr << "catlip label: " << e.what() << "\n";
    label_usage();
    return cli::kUsage;
  }
  if (captions.empty()) {
    label_usage();
    return cli::kUsage;
  }
  try {
    Labeler lab(opt);
    Vocab vocab;
    if (!vocab_path.empty()) vocab = Vocab::load(vocab_path);
    for (auto& c : captions) {
      if (c == "-") {
        std::string line;
        while (std::getline(std::cin, line)) explain(lab, vocab_path.empty() ? nullptr : &vocab, line);
      } else {
        explain(lab, vocab_path.empty() ? nullptr : &vocab, c);
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "catlip label: " << e.what() << "\n";
    return cli::kFailed;
  }
  return cli::kOk;
}

}  // namespace

CATLIP_COMMAND("label", "Show how a caption becomes synset labels (tags, nouns, lemmas, synsets)", cmd_label);
