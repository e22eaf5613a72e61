// catlip vocab merge: sum the vocab.part-<replica>.tsv files that
// text.synset_count replicas wrote into a run directory, select and write the
// vocabulary TSV and stats (the same code text.vocab_merge runs in-graph).
#include <iostream>
#include <string>

#include "catlip/text/vocab.h"
#include "catlip/text/wordnet.h"
#include "cli.h"

using namespace catlip;
using namespace catlip::text;

namespace {

void vocab_usage() {
  std::cout << "Usage: catlip vocab merge RUN_DIR [--min-count N] [--top-k K] [-o vocab.tsv]\n"
               "                          [--stats FILE] [--wordnet DIR]\n\n"
               "Merges RUN_DIR/vocab.part-*.tsv (partial synset counts), keeps synsets with\n"
               "count >= N (default 1), then the K most frequent (default 0 = all), and writes\n"
               "index, wnid, lemma, count, gloss sorted by count (default RUN_DIR/vocab.tsv)\n"
               "plus stats (default: the output path with .stats.txt).\n";
}

int cmd_vocab_merge(int argc, char** argv) {
  if (cli::wants_help(argc, argv)) {
    vocab_usage();
    return cli::kOk;
  }
  std::string dir, out, stats, wndir = kDefaultWordNetDir;
  int64_t min_count = 1, top_k = 0;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
        return argv[++i];
      };
      if (a == "--min-count") min_count = std::stoll(next());
      else if (a == "--top-k") top_k = std::stoll(next());
      else if (a == "-o" || a == "--output") out = next();
      else if (a == "--stats") stats = next();
      else if (a == "--wordnet") wndir = next();
      else if (a.rfind("-", 0) == 0)
        throw std::invalid_argument("unknown option " + a +
                                    cli::did_you_mean(a, {"min-count", "top-k", "output", "stats", "wordnet"}));
      else if (dir.empty()) dir = a;
      else throw std::invalid_argument("unexpected argument " + a);
    }
    if (dir.empty()) throw std::invalid_argument("RUN_DIR is required");
    if (min_count < 1 || top_k < 0) throw std::invalid_argument("--min-count must be >= 1, --top-k >= 0");
  } catch (const std::exception& e) {
    std::cerr << "catlip vocab merge: " << e.what() << "\n";
    vocab_usage();
    return cli::kUsage;
  }
  if (out.empty()) out = dir + "/vocab.tsv";
  if (stats.empty()) stats = (out.size() > 4 && out.compare(out.size() - 4, 4, ".tsv") == 0
                                  ? out.substr(0, out.size() - 4) : out) + ".stats.txt";
  try {
    SynsetCounts c;
    int n = merge_part_files(dir, c);
    if (n == 0) {
      std::cerr << "catlip vocab merge: no vocab.part-*.tsv in " << dir << "\n";
      return cli::kFailed;
    }
    auto wn = WordNet::shared(wndir);
    auto v = select_vocab(c, min_count, top_k, *wn);
    write_vocab_tsv(out, v);
    write_vocab_stats(stats, c, v, min_count, top_k);
    std::cout << "merged " << n << " partial counts: " << c.samples << " samples, " << c.counts.size()
              << " synsets; wrote " << v.size() << " to " << out << " (stats: " << stats << ")\n";
  } catch (const std::exception& e) {
    std::cerr << "catlip vocab merge: " << e.what() << "\n";
    return cli::kFailed;
  }
  return cli::kOk;
}

}  // namespace

CATLIP_COMMAND("vocab merge", "Merge per-replica synset counts of a run into the vocabulary TSV", cmd_vocab_merge);
