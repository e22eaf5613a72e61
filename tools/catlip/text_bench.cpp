// catlip bench labels: captions/s per core of the full caption -> vocabulary
// index path, beside CoreNet's Python path (NLTK Treebank tokenizer +
// WordNetLemmatizer + the wn.synset rule, on Debian's WordNet files) and the
// Perl Lingua::EN::Tagger alone, all on the same captions in the same run.
// Times are CPU time of one thread/process, so a busy machine skews less.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "catlip/text/captions.h"
#include "catlip/text/labeler.h"
#include "catlip/text/reference.h"
#include "catlip/text/tokenize.h"
#include "catlip/text/vocab.h"
#include "cli.h"

using namespace catlip;
using namespace catlip::text;
namespace fs = std::filesystem;

namespace {

// CoreNet's per-caption path in Python: clean, tokenize, (tag,) lemmatize
// every token, wn.synset rule. nltk.pos_tag needs the averaged
// perceptron model, which Debian does not package; when it is missing the
// baseline runs without tagging (and says so), i.e. it is faster than CoreNet.
const char* kNltkBench = R"PY(
import html, re, sys, time, urllib.parse
import nltk
from nltk.corpus import wordnet as wn
from nltk.corpus.reader.wordnet import WordNetError
from nltk.stem import WordNetLemmatizer
from nltk.tokenize import TreebankWordTokenizer
tok = TreebankWordTokenizer()
lem = WordNetLemmatizer()
try:
    nltk.pos_tag(["a", "dog"]); tagger = True
except LookupError:
    tagger = False
def synset_rule(lemma):
    try:
        s = wn.synset(lemma + ".n.01")
    except (WordNetError, ValueError):
        return None
    return s.offset() if s.name() == lemma + ".n.01" else None
synset_rule("dog")  # load WordNet before timing
HTML_RE = re.compile("<.*?>")
def clean(caption):
    # CoreNet's caption cleaning (without ftfy, which Debian lacks here).
    caption = urllib.parse.unquote(str(caption)).replace("+", " ")
    caption = html.unescape(re.sub(HTML_RE, "", caption))
    caption = caption.replace("\n", " ")
    caption = re.sub(" +", " ", caption)
    return caption.strip().lower()
lines = [l.rstrip("\n") for l in open(sys.argv[1], encoding="utf-8", errors="replace")]
best = 0.0
for _ in range(int(sys.argv[2])):
    t0 = time.process_time()
    for c in lines:
        toks = tok.tokenize(clean(c))
        if tagger:
            nltk.pos_tag(toks)
        labels = set()
        for w in toks:
            o = synset_rule(lem.lemmatize(w))
            if o is not None:
                labels.add(o)
    best = max(best, len(lines) / (time.process_time() - t0))
print("captions_per_s %.1f" % best)
print("pos_tag %s" % ("yes" if tagger else "no"))
)PY";

const char* kPerlBench = R"PL(
use strict; use warnings;
use Lingua::EN::Tagger;
binmode(STDIN, ':utf8');
my $p = Lingua::EN::Tagger->new(stem => 0);
my @lines = map { chomp; lc } <STDIN>;
$p->add_tags("warm up");
my $best = 0;
for my $round (1 .. $ARGV[0]) {
  my @t0 = times;
  for my $c (@lines) { $p->add_tags($c) if length $c; }
  my @t1 = times;
  my $dt = ($t1[0] + $t1[1]) - ($t0[0] + $t0[1]);
  $dt = 1e-9 if $dt <= 0;
  my $r = scalar(@lines) / $dt;
  $best = $r if $r > $best;
}
printf "captions_per_s %.1f\n", $best;
)PL";

double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Runs `cmd`, returns stdout; sets ok=false on failure.
std::string run(const std::string& cmd, bool& ok) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    ok = false;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ok = pclose(p) == 0;
  return out;
}

double field(const std::string& out, const std::string& key) {
  auto p = out.find(key + " ");
  return p == std::string::npos ? -1 : std::atof(out.c_str() + p + key.size() + 1);
}

void bench_usage() {
  std::cout << "Usage: catlip bench labels [--captions FILE] [--n N] [--rounds R] [--no-python] [--no-perl]\n\n"
               "Captions/s per core (CPU time, one thread) of catlip's caption -> vocabulary-index\n"
               "path, CoreNet's NLTK path and the Perl Lingua::EN::Tagger, on the same captions\n"
               "(FILE: one caption per line; default N=10000 generated captions). Each path runs\n"
               "R rounds (default 3) over the captions and reports its best round, so a busy\n"
               "machine disturbs the figures less; caches are warm after the first round.\n";
}

int cmd_bench_labels(int argc, char** argv) {
  if (cli::wants_help(argc, argv)) {
    bench_usage();
    return cli::kOk;
  }
  std::string file;
  size_t n = 10000;
  int rounds = 3;
  bool python = true, perl = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--captions" && i + 1 < argc) file = argv[++i];
    else if (a == "--n" && i + 1 < argc) n = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--rounds" && i + 1 < argc) rounds = std::max(1, std::atoi(argv[++i]));
    else if (a == "--no-python") python = false;
    else if (a == "--no-perl") perl = false;
    else {
      std::cerr << "catlip bench labels: unknown argument " << a
                << cli::did_you_mean(a, {"captions", "n", "rounds", "no-python", "no-perl"}) << "\n";
      bench_usage();
      return cli::kUsage;
    }
  }
  std::vector<std::string> caps;
  if (!file.empty()) {
    std::ifstream f(file);
    if (!f) {
      std::cerr << "catlip bench labels: cannot open " << file << "\n";
      return cli::kFailed;
    }
    std::string line;
    while (caps.size() < n && std::getline(f, line))
      if (!line.empty()) caps.push_back(line);
  } else {
    caps = generate_captions(n, 2024);
  }
  if (caps.empty()) {
    std::cerr << "catlip bench labels: no captions\n";
    return cli::kFailed;
  }
  char tmpl[] = "/tmp/catlip-bench-labels-XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::cerr << "catlip bench labels: mkdtemp failed\n";
    return cli::kFailed;
  }
  std::string tmp = tmpl;
  std::string capfile = tmp + "/captions.txt";
  {
    std::ofstream f(capfile);
    for (auto& c : caps) {
      std::string one = c;
      for (char& ch : one)
        if (ch == '\n' || ch == '\r') ch = ' ';
      f << one << '\n';
    }
  }

  double t_load = cpu_now();
  LabelerOptions opt;
  Labeler lab(opt);
  t_load = cpu_now() - t_load;
  // A vocabulary from these captions (every synset found), built untimed.
  SynsetCounts counts;
  {
    Labeler warm(opt);
    for (auto& c : caps) counts.add_sample(warm.parse(c).unique_synsets());
  }
  write_vocab_tsv(tmp + "/vocab.tsv", select_vocab(counts, 1, 0, lab.wordnet()));
  Vocab vocab = Vocab::load(tmp + "/vocab.tsv");

  // Full path: best of `rounds` passes (the first starts with a cold word cache).
  size_t labels = 0;
  Parse p;
  std::vector<int64_t> idx;
  double cpp_rate = 0, tag_rate = 0;
  size_t toks = 0;
  std::vector<std::string> tk;
  std::vector<int> tags;
  for (int round = 0; round < rounds; ++round) {
  labels = 0;
  double t0 = cpu_now();
  for (auto& c : caps) {
    lab.parse(c, p);
    idx.clear();
    for (auto o : p.synsets)
      if (o >= 0)
        if (int64_t i = vocab.index_of(o); i >= 0) idx.push_back(i);
    std::sort(idx.begin(), idx.end());
    idx.erase(std::unique(idx.begin(), idx.end()), idx.end());
    labels += idx.size();
  }
  cpp_rate = std::max(cpp_rate, caps.size() / std::max(cpu_now() - t0, 1e-9));
  // Tokenize + tag only, to compare with the Perl tagger.
  toks = 0;
  t0 = cpu_now();
  for (auto& c : caps) {
    treebank_tokenize(clean_caption(c).text, tk);
    lab.tagger().tag(tk, tags);
    toks += tags.size();
  }
  tag_rate = std::max(tag_rate, caps.size() / std::max(cpu_now() - t0, 1e-9));
  }

  double nltk_rate = -1, perl_rate = -1;
  bool nltk_tags = false;
  std::string nltk_note, perl_note;
  if (python) {
    std::string data = make_nltk_data_dir(tmp, opt.wordnet_dir);
    std::ofstream(tmp + "/nltk_bench.py") << kNltkBench;
    bool ok = true;
    std::string out = run("NLTK_DATA=" + data + " /usr/bin/python3 " + tmp + "/nltk_bench.py " + capfile + " " +
                           std::to_string(rounds) + " 2>&1", ok);
    nltk_rate = ok ? field(out, "captions_per_s") : -1;
    nltk_tags = out.find("pos_tag yes") != std::string::npos;
    if (!ok || nltk_rate <= 0) nltk_note = "failed: " + out.substr(0, 300);
  }
  if (perl) {
    std::ofstream(tmp + "/lingua_bench.pl") << kPerlBench;
    bool ok = true;
    std::string out = run("perl " + tmp + "/lingua_bench.pl " + std::to_string(rounds) + " < " + capfile + " 2>&1", ok);
    perl_rate = ok ? field(out, "captions_per_s") : -1;
    if (!ok || perl_rate <= 0) perl_note = "failed: " + out.substr(0, 300);
  }
  std::error_code ec;
  fs::remove_all(tmp, ec);

  auto ratio = [](double a, double b) {
    if (a <= 0 || b <= 0) return std::string("-");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1fx", a / b);
    return std::string(buf);
  };
  auto rate = [](double r) {
    if (r <= 0) return std::string("n/a");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", r);
    return std::string(buf);
  };
  std::printf("catlip bench labels: %zu captions (%s), %zu tokens, %zu labels; model load %.2f s\n",
              caps.size(), file.empty() ? "generated" : file.c_str(), toks, labels, t_load);
  std::printf("captions/s per core (CPU time, one thread, best of %d rounds):\n", rounds);
  std::printf("  %-66s %10s  %s\n", "path", "caption/s", "vs NLTK");
  std::printf("  %-66s %10s  %s\n", "catlip: clean+tokenize+HMM tag+morphy+synset rule+vocab index",
              rate(cpp_rate).c_str(), ratio(cpp_rate, nltk_rate).c_str());
  std::printf("  %-66s %10s  %s\n",
              nltk_tags ? "NLTK (CoreNet): Treebank+pos_tag+WordNetLemmatizer+wn.synset rule"
                        : "NLTK (CoreNet): Treebank+WordNetLemmatizer+wn.synset [*no pos_tag]",
              rate(nltk_rate).c_str(), nltk_rate > 0 ? "1.0x" : "-");
  std::printf("  %-66s %10s\n", "catlip: clean+tokenize+HMM tag only", rate(tag_rate).c_str());
  std::printf("  %-66s %10s  (catlip tagging %s of it)\n", "Perl Lingua::EN::Tagger add_tags (tagging only)",
              rate(perl_rate).c_str(), ratio(tag_rate, perl_rate).c_str());
  if (python && !nltk_tags && nltk_rate > 0)
    std::printf("  * NLTK's averaged perceptron tagger model is not installed (Debian does not package\n"
                "    it), so the NLTK baseline excludes POS tagging: it is faster than CoreNet's real path.\n");
  if (!nltk_note.empty()) std::printf("  NLTK baseline %s\n", nltk_note.c_str());
  if (!perl_note.empty()) std::printf("  Perl baseline %s\n", perl_note.c_str());
  if (cpp_rate > 0 && nltk_rate > 0)
    std::printf("target >= 50x NLTK per core: %s (%.1fx)\n", cpp_rate / nltk_rate >= 50 ? "met" : "NOT met",
                cpp_rate / nltk_rate);
  return cli::kOk;
}

}  // namespace

CATLIP_COMMAND("bench labels", "Captions/s of caption -> labels vs the NLTK (CoreNet) path and the Perl tagger",
               cmd_bench_labels);
