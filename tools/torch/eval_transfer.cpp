// catlip transfer: Transfer Init experiments (zero-shot from the synset head,
// fine-tuning with init_head = synsets vs random, linear probe) on a
// class-labeled shard set; see tools/torch/transfer/include/catlip/transfer/transfer.h.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "catlip/eval/png_io.h"
#include "catlip/transfer/transfer.h"
#include "cli.h"

using namespace catlip::cli;
namespace ev = catlip::eval;

namespace {

void transfer_log(const std::string& s) { std::cerr << s << "\n"; }

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');)
    if (!x.empty()) out.push_back(x);
  return out;
}

const char* kTransferHelp =
    "usage: catlip transfer --checkpoint PATH [--vocab VOCAB.tsv] --classes CLASSES.txt\n"
    "                       --train URLS --test URLS [options]\n\n"
    "Transfer Init: maps each class (a wnid per line, optionally followed by a name) to\n"
    "vocabulary rows (same synset, else the nearest hyponyms/hypernyms in WordNet), then\n"
    "on the class-labeled shards (.cls = class index, or a class in .json) measures:\n"
    "zero-shot accuracy from the mapped synset rows (no training) vs chance; fine-tuning\n"
    "with the head initialised from the synset rows vs at random, after the same steps;\n"
    "and a linear probe on frozen features. Writes OUT/transfer.json and\n"
    "OUT/transfer_mapping.tsv; prints the figures. A train.superclass model (outputs = BPE\n"
    "ids) needs no vocabulary: each class maps to its name's tokens, zero-shot is the mean\n"
    "of their logits, init_head=synsets the mean of their rows.\n\n"
    "  --checkpoint PATH      checkpoint, export or training run dir\n"
    "  --vocab FILE           the model's vocabulary TSV (CatLIP models)\n"
    "  --tokenizer FILE       a train.superclass model's tokenizer (default: beside its export)\n"
    "  --classes FILE         class list (line i = class i)\n"
    "  --train URLS           shards to fine-tune on (brace patterns; repeatable)\n"
    "  --test URLS            held-out shards (repeatable)\n"
    "  --out DIR              output directory (default .)\n"
    "  --train-samples N      at most N training samples (default 2000; 0 = all)\n"
    "  --test-samples N       at most N test samples (default 1000; 0 = all)\n"
    "  --steps N              fine-tuning steps (default 30)\n"
    "  --batch-size N         fine-tuning batch (default 32)\n"
    "  --eval-every N         test accuracy every N steps (default 5)\n"
    "  --lr X                 fine-tuning AdamW lr (default 3e-4)\n"
    "  --weight-decay X       (default 0.05)\n"
    "  --init-head LIST       comma list of synsets,random (default both)\n"
    "  --probe-steps N        linear-probe full-batch Adam steps (default 300)\n"
    "  --max-distance N       WordNet hops searched for a mapping (default 4)\n"
    "  --coverage FILE        also report how FILE's classes (e.g. ImageNet wnids) map to\n"
    "                         the vocabulary, into OUT/transfer_coverage.txt (repeatable)\n"
    "  --mean A,B,C --std A,B,C  normalisation (default: what the checkpoint records)\n"
    "  --no-ema               use the raw weights even if EMA weights exist\n"
    "  --threads N            CPU threads (default: one per core)\n"
    "  --device D             cpu (default), cuda, auto\n"
    "  --seed S               data order and probe initialisation (default 0)\n"
    "  --wordnet DIR          WordNet directory (default /usr/share/wordnet)\n";

int cmd_transfer(int argc, char** argv) {
  Args a(argc, argv, {"help", "no-ema"});
  if (a.has("help")) {
    std::cout << kTransferHelp;
    return kOk;
  }
  if (int rc = check_syntax(a, Syntax{"catlip transfer", "usage: catlip transfer --checkpoint PATH [--vocab VOCAB.tsv] --classes CLASSES.txt", {"coverage", "test", "train", "checkpoint", "classes", "device", "init-head", "out", "vocab", "tokenizer", "wordnet", "lr", "weight-decay", "batch-size", "eval-every", "max-distance", "probe-steps", "seed", "steps", "test-samples", "threads", "train-samples", "no-ema"}, 0, 0})) return rc;
  auto bad = a.unknown({"checkpoint", "vocab", "tokenizer", "classes", "train", "test", "out", "train-samples", "test-samples",
                        "steps", "batch-size", "eval-every", "lr", "weight-decay", "init-head", "probe-steps",
                        "max-distance", "coverage", "mean", "std", "no-ema", "threads", "device", "seed", "wordnet"});
  if (!a.error().empty() || !bad.empty() || !a.has("checkpoint") || !a.has("classes") ||
      (a.has("coverage") && !a.has("vocab")) ||
      !a.has("train") || !a.has("test")) {
    std::cerr << "catlip transfer: "
              << (!a.error().empty() ? a.error()
                  : !bad.empty()     ? "unknown option " + bad[0]
                                     : std::string("--checkpoint, --classes, --train and --test are required (and "
                                                   "--vocab with --coverage)"))
              << " (see --help)\n";
    return kUsage;
  }
  catlip::transfer::TransferOptions o;
  try {
    o.checkpoint = a.get("checkpoint");
    o.vocab = a.get("vocab");
    o.tokenizer = a.get("tokenizer");
    o.classes = a.get("classes");
    o.train_urls = a.all("train");
    o.test_urls = a.all("test");
    o.out_dir = a.get("out", ".");
    o.train_samples = a.get_int("train-samples", o.train_samples);
    o.test_samples = a.get_int("test-samples", o.test_samples);
    o.steps = a.get_int("steps", o.steps);
    o.batch_size = a.get_int("batch-size", o.batch_size);
    o.eval_every = a.get_int("eval-every", o.eval_every);
    o.lr = a.get_double("lr", o.lr);
    o.weight_decay = a.get_double("weight-decay", o.weight_decay);
    o.probe_steps = a.get_int("probe-steps", o.probe_steps);
    o.max_distance = int(a.get_int("max-distance", o.max_distance));
    o.threads = int(a.get_int("threads", 0));
    o.seed = a.get_int("seed", 0);
    o.device = a.get("device", "cpu");
    o.wordnet_dir = a.get("wordnet", o.wordnet_dir);
    o.ema = !a.has("no-ema");
    if (a.has("init-head")) o.init_heads = split_commas(a.get("init-head"));
    for (const char* k : {"mean", "std"}) {
      std::vector<double> v;
      for (auto& x : split_commas(a.get(k))) v.push_back(std::stod(x));
      (std::string(k) == "mean" ? o.mean : o.std) = v;
    }
  } catch (const std::exception& e) {
    std::cerr << "catlip transfer: bad option value (" << e.what() << "); see --help\n";
    return kUsage;
  }
  if (o.steps < 0 || o.batch_size < 1 || o.eval_every < 1 || o.init_heads.empty()) {
    std::cerr << "catlip transfer: need --steps >= 0, --batch-size >= 1, --eval-every >= 1, --init-head non-empty\n";
    return kUsage;
  }
  try {
    if (a.has("coverage")) {
      ev::EvalVocab vocab = ev::load_eval_vocab(o.vocab);
      ev::WordNetGraph wn(o.wordnet_dir);
      std::string text;
      for (auto& f : a.all("coverage")) {
        auto r = ev::map_classes(ev::load_class_list(f), vocab, wn, o.max_distance);
        char b[512];
        std::snprintf(b, sizeof b,
                      "%s: %zu classes -> %lld exact, %lld via hyponyms, %lld via hypernyms, %lld unmapped "
                      "(coverage %.3f)\n",
                      f.c_str(), r.classes.size(), (long long)r.exact, (long long)r.hyponym, (long long)r.hypernym,
                      (long long)r.unmapped, r.coverage());
        text += b;
        std::cout << "coverage " << b;
      }
      std::filesystem::create_directories(o.out_dir);
      ev::write_file_bytes(o.out_dir + "/transfer_coverage.txt", text);
    }
    auto r = catlip::transfer::run_transfer(o, &transfer_log);
    std::printf("Transfer Init on %lld classes (%lld train / %lld test samples):\n", (long long)r.classes,
                (long long)r.train_n, (long long)r.test_n);
    std::printf("  zero-shot accuracy      %.4f   (chance %.4f, majority class %.4f)\n", r.zero_shot, r.chance,
                r.majority);
    for (size_t h = 0; h < r.heads.size(); ++h)
      std::printf("  fine-tune init_head=%-8s %.4f after %lld steps (%.4f at step 0)\n", r.heads[h].c_str(),
                  r.final_accuracy[h], (long long)o.steps, r.curves[h].front().accuracy);
    std::printf("  linear probe (frozen)   %.4f\n", r.linear_probe);
    std::printf("wrote %s/transfer.json and transfer_mapping.tsv (%.1f s)\n", o.out_dir.c_str(), r.seconds);
    return kOk;
  } catch (const std::exception& e) {
    std::cerr << "catlip transfer: " << e.what() << "\n";
    return kFailed;
  }
}

}  // namespace

CATLIP_COMMAND("transfer", "Transfer Init: zero-shot, synsets- vs random-init fine-tuning, linear probe", cmd_transfer);
