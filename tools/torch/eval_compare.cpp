// catlip compare: CatLIP vs CLIP along the training wall clock: zero-shot
// and linear-probe accuracy of every checkpoint of a train.catlip run and a
// train.clip run on the same class-labeled held-out shards; see
// tools/torch/transfer/include/catlip/transfer/clip_eval.h.
#include <cstdio>
#include <iostream>

#include "catlip/transfer/clip_eval.h"
#include "cli.h"

using namespace catlip::cli;
namespace ev = catlip::eval;

namespace {

void compare_log(const std::string& s) { std::cerr << s << "\n"; }

const char* kCompareHelp =
    "usage: catlip compare --catlip RUN --clip RUN --vocab VOCAB.tsv --classes CLASSES.txt\n"
    "                      --train URLS --test URLS [options]\n\n"
    "Evaluates every checkpoint of a train.catlip run and of a train.clip run (their\n"
    "checkpoints/ dirs) on the same class-labeled held-out shards (.cls = class index, or\n"
    "a class in .json): zero-shot top-1 (CatLIP: the classes' mapped synset rows, as\n"
    "catlip transfer; CLIP: cosine to the prompts \"a photo of a {name}.\" encoded with its\n"
    "BPE tokenizer) and a linear probe on frozen pooled image features (the same code for\n"
    "both), each against the checkpoint's training wall time (catlip.train_seconds). Prints\n"
    "a table and the time each needs to reach the other's final accuracy; writes\n"
    "OUT/compare.json and OUT/compare.html.\n\n"
    "  --catlip DIR           train.catlip run dir (or its checkpoint dir)\n"
    "  --clip DIR             train.clip run dir (or its checkpoint dir)\n"
    "  --vocab FILE           the CatLIP model's vocabulary TSV\n"
    "  --classes FILE         class list (line i = class i: wnid, then the name)\n"
    "  --train URLS           shards the linear probe is trained on (repeatable)\n"
    "  --test URLS            held-out shards (repeatable)\n"
    "  --out DIR              output directory (default .)\n"
    "  --tokenizer FILE       CLIP's tokenizer (default: tokenizer.txt of the run's export)\n"
    "  --prompt TEMPLATE      CLIP prompt, {} = class name (default \"a photo of a {}.\")\n"
    "  --train-samples N      probe training images (default 1000; 0 = all)\n"
    "  --test-samples N       held-out images (default 1000; 0 = all)\n"
    "  --probe-steps N        linear-probe full-batch Adam steps (default 300)\n"
    "  --probe-lr X           (default 0.01)\n"
    "  --max-distance N       WordNet hops for CatLIP's class mapping (default 4)\n"
    "  --no-ema               raw weights even if EMA weights exist\n"
    "  --threads N            CPU threads (default: one per core)\n"
    "  --device D             cpu (default), cuda, auto\n"
    "  --seed S               probe initialisation (default 0)\n"
    "  --wordnet DIR          WordNet directory (default /usr/share/wordnet)\n";

int cmd_compare(int argc, char** argv) {
  Args a(argc, argv, {"help", "no-ema"});
  if (a.has("help")) {
    std::cout << kCompareHelp;
    return kOk;
  }
  const std::vector<std::string> known = {"catlip", "clip", "vocab", "classes", "train", "test", "out", "tokenizer",
                                          "prompt", "train-samples", "test-samples", "probe-steps", "probe-lr",
                                          "max-distance", "no-ema", "threads", "device", "seed", "wordnet"};
  if (int rc = check_syntax(a, Syntax{"catlip compare", "usage: catlip compare --catlip RUN --clip RUN --vocab VOCAB.tsv --classes CLASSES.txt --train URLS --test URLS", known, 0, 0})) return rc;
  // check_syntax refused unknown options; what is left: values and required options.
  if (!a.error().empty() || !a.has("catlip") || !a.has("clip") || !a.has("vocab") ||
      !a.has("classes") || !a.has("train") || !a.has("test")) {
    std::cerr << "catlip compare: "
              << (!a.error().empty() ? a.error()
                                     : std::string("--catlip, --clip, --vocab, --classes, --train and --test are required"))
              << " (see --help)\n";
    return kUsage;
  }
  catlip::transfer::CompareOptions o;
  try {
    o.catlip_run = a.get("catlip");
    o.clip_run = a.get("clip");
    o.vocab = a.get("vocab");
    o.classes = a.get("classes");
    o.train_urls = a.all("train");
    o.test_urls = a.all("test");
    o.out_dir = a.get("out", ".");
    o.tokenizer = a.get("tokenizer");
    o.prompt = a.get("prompt", o.prompt);
    o.train_samples = a.get_int("train-samples", o.train_samples);
    o.test_samples = a.get_int("test-samples", o.test_samples);
    o.probe.steps = a.get_int("probe-steps", o.probe.steps);
    o.probe.lr = a.get_double("probe-lr", o.probe.lr);
    o.probe.seed = a.get_int("seed", 0);
    o.max_distance = int(a.get_int("max-distance", o.max_distance));
    o.threads = int(a.get_int("threads", 0));
    o.device = a.get("device", "cpu");
    o.wordnet_dir = a.get("wordnet", o.wordnet_dir);
    o.ema = !a.has("no-ema");
  } catch (const std::exception& e) {
    std::cerr << "catlip compare: bad option value (" << e.what() << "); see --help\n";
    return kUsage;
  }
  if (o.probe.steps < 1 || o.train_samples < 0 || o.test_samples < 0) {
    std::cerr << "catlip compare: need --probe-steps >= 1 and sample counts >= 0\n";
    return kUsage;
  }
  try {
    auto r = catlip::transfer::run_compare(o, &compare_log);
    std::cout << catlip::transfer::compare_table(r);
    std::printf("wrote %s/compare.json and compare.html (%.1f s)\n", o.out_dir.c_str(), r.seconds);
    return kOk;
  } catch (const std::exception& e) {
    std::cerr << "catlip compare: " << e.what() << "\n";
    return kFailed;
  }
}

}  // namespace

CATLIP_COMMAND("compare", "CatLIP vs CLIP: zero-shot and linear probe of every checkpoint against training time",
               cmd_compare);
