// catlip compare: any number of training runs (train.catlip, train.clip,
// train.siglip, train.superclass) along the training wall clock: zero-shot
// and linear-probe accuracy of every checkpoint of each on the same
// class-labeled held-out shards, time to target accuracy, and the CPU each
// run got; see tools/torch/transfer/include/catlip/transfer/compare.h.
#include <cstdio>
#include <iostream>

#include "catlip/transfer/compare.h"
#include "cli.h"

using namespace catlip::cli;
namespace ev = catlip::eval;

namespace {

void compare_log(const std::string& s) { std::cerr << s << "\n"; }

const char* kCompareHelp =
    "usage: catlip compare --run [NAME=]DIR [--run ...] --classes CLASSES.txt --train URLS --test URLS\n"
    "                      [--vocab VOCAB.tsv] [options]\n\n"
    "Evaluates every checkpoint of every run (its checkpoints/ dir) on the same class-labeled\n"
    "held-out shards (.cls = class index, or a class in .json), each against the checkpoint's\n"
    "training wall time (catlip.train_seconds): zero-shot top-1 with the run's own objective\n"
    "(read from its checkpoints' catlip.objective) -- CatLIP: the classes' mapped synset rows,\n"
    "as catlip transfer; CLIP and SigLIP: cosine to the prompts \"a photo of a {name}.\" encoded\n"
    "with the run's BPE tokenizer; SuperClass: the mean logit of the class name's BPE ids --\n"
    "and a linear probe on frozen pooled image features (the same code for all). Prints the\n"
    "checkpoints, the time each run needs to reach each target accuracy (50% and 90% of the\n"
    "best final, and each run's final; interpolated between checkpoints) and what each run got:\n"
    "training wall time, the trainer's CPU seconds, the whole graph's wall and CPU seconds\n"
    "(its summary.json), so an unequally loaded machine shows. Writes OUT/compare.json and\n"
    "OUT/compare.html (all curves on the same axes).\n\n"
    "  --run [NAME=]DIR       a training run dir (or its checkpoint dir); repeatable, in report\n"
    "                         order; NAME defaults to the objective's (CatLIP, CLIP, SigLIP,\n"
    "                         SuperClass): name runs when two have the same objective\n"
    "  --catlip DIR, --clip DIR, --siglip DIR, --superclass DIR\n"
    "                         shorthands for --run DIR that also check the run's objective\n"
    "                         (they come first, in this order, then the --run ones)\n"
    "  --vocab FILE           the CatLIP models' vocabulary TSV (needed with a CatLIP run)\n"
    "  --classes FILE         class list (line i = class i: wnid, then the name)\n"
    "  --train URLS           shards the linear probe is trained on (repeatable)\n"
    "  --test URLS            held-out shards (repeatable)\n"
    "  --out DIR              output directory (default .)\n"
    "  --tokenizer FILE       the BPE tokenizer of the CLIP/SigLIP/SuperClass runs (default:\n"
    "                         tokenizer.txt of each run's export, checked against the weights)\n"
    "  --prompt TEMPLATE      CLIP/SigLIP prompt, {} = class name (default \"a photo of a {}.\")\n"
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

// "NAME=DIR" (NAME without '/') or "DIR".
catlip::transfer::CompareRun parse_run(const std::string& v) {
  catlip::transfer::CompareRun r;
  auto eq = v.find('=');
  if (eq != std::string::npos && eq > 0 && v.substr(0, eq).find('/') == std::string::npos) {
    r.name = v.substr(0, eq);
    r.dir = v.substr(eq + 1);
  } else {
    r.dir = v;
  }
  return r;
}

int cmd_compare(int argc, char** argv) {
  Args a(argc, argv, {"help", "no-ema"});
  if (a.has("help")) {
    std::cout << kCompareHelp;
    return kOk;
  }
  const std::vector<std::string> known = {"run", "catlip", "clip", "siglip", "superclass", "vocab", "classes", "train",
                                          "test", "out", "tokenizer", "prompt", "train-samples", "test-samples",
                                          "probe-steps", "probe-lr", "max-distance", "no-ema", "threads", "device",
                                          "seed", "wordnet"};
  const char* usage = "usage: catlip compare --run [NAME=]DIR [--run ...] --classes CLASSES.txt --train URLS --test URLS";
  if (int rc = check_syntax(a, Syntax{"catlip compare", usage, known, 0, 0})) return rc;
  // check_syntax refused unknown options; what is left: values and required options.
  std::vector<catlip::transfer::CompareRun> runs;
  for (const char* obj : {"catlip", "clip", "siglip", "superclass"})
    for (auto& d : a.all(obj)) runs.push_back({"", d, obj});
  for (auto& v : a.all("run")) runs.push_back(parse_run(v));
  std::string missing;
  if (runs.empty()) missing = "at least one --run (or --catlip/--clip/--siglip/--superclass) is required";
  else if (!a.has("classes") || !a.has("train") || !a.has("test")) missing = "--classes, --train and --test are required";
  for (auto& r : runs)
    if (r.dir.empty()) missing = "a run without a directory";
  if (!a.error().empty() || !missing.empty()) {
    std::cerr << "catlip compare: " << (!a.error().empty() ? a.error() : missing) << " (see --help)\n" << usage << "\n";
    return kUsage;
  }
  catlip::transfer::CompareOptions o;
  try {
    o.runs = runs;
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

CATLIP_COMMAND("compare",
               "CatLIP, CLIP, SigLIP, SuperClass runs: zero-shot and linear probe of every checkpoint against "
               "training time, time to target, CPU each got",
               cmd_compare);
