// SuperClass zero-shot (superclass_eval.h): classes map to their names' BPE
// ids, a class scores the mean of their logits (against plain loops), and a
// train.superclass export is found with its tokenizer and evaluated; a tiny
// model trained on captions through the Trainer classifies by class name.
#include <torch/torch.h>
// LibTorch pulls in glog, whose CHECK would silently replace Catch's.
#undef CHECK
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>

#include "catlip/local.h"
#include "catlip/model/clip_config.h"
#include "catlip/model/model_io.h"
#include "catlip/model/state_io.h"
#include "catlip/text/bpe.h"
#include "catlip/train/trainer.h"
#include "catlip/transfer/superclass_eval.h"
#include "test_util.h"

using namespace catlip;
using namespace catlip::transfer;
namespace fs = std::filesystem;

namespace {

// "cat" and "dog" are one token each; "hot" is three byte tokens.
text::BpeTokenizer small_tokenizer() {
  return text::BpeTokenizer({{"c", "a"}, {"ca", "t</w>"}, {"d", "o"}, {"do", "g</w>"}});
}

const std::vector<int64_t>& want_rows(const eval::MappingReport& m, int64_t c) { return m.classes[size_t(c)].rows; }

eval::ClassList three_classes() {
  eval::ClassList c;
  c.wnids = {"n02121808", "n07697537", "n02084071", "n00000001"};
  c.names = {"cat", "hot dog cat", "dog", " "};  // the last has no token
  return c;
}

}  // namespace

TEST_CASE("superclass zero-shot: a class scores the mean logit of its name's distinct BPE ids") {
  auto tok = small_tokenizer();
  auto classes = three_classes();
  auto map = superclass_token_mapping(classes, tok);
  REQUIRE(map.classes.size() == 4);
  REQUIRE(map.exact == 3);
  REQUIRE(map.unmapped == 1);
  REQUIRE(map.classes[0].rows == std::vector<int64_t>{tok.encode("cat")[0]});
  REQUIRE(tok.encode("cat").size() == 1);
  // "hot dog cat": the distinct ids of its encoding, sorted.
  const auto hdc = tok.encode("hot dog cat");
  std::set<int64_t> want(hdc.begin(), hdc.end());
  REQUIRE(map.classes[1].rows == std::vector<int64_t>(want.begin(), want.end()));
  REQUIRE(map.classes[1].rows.size() >= 4);
  REQUIRE(map.classes[3].rows.empty());

  torch::manual_seed(2);
  const int64_t N = 5, V = tok.vocab_size();
  auto logits = torch::randn({N, V});
  auto s = superclass_class_scores(logits, map);
  REQUIRE(s.size(0) == N);
  REQUIRE(s.size(1) == 4);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t c = 0; c < 3; ++c) {
      double sum = 0;
      for (int64_t id : want_rows(map, c)) sum += logits[i][id].item<double>();
      REQUIRE(s[i][c].item<double>() == Approx(sum / double(map.classes[size_t(c)].rows.size())).margin(1e-5));
    }
  REQUIRE(s[0][3].item<double>() < -1e29);  // unmapped: never wins
  // The mean, not the max: one high token of a long name does not win.
  auto l = torch::zeros({1, V});
  l[0][map.classes[0].rows[0]] = 1.0;                    // cat
  l[0][tok.encode("hot")[0]] = 3.0;                      // one of "hot dog cat"'s tokens
  REQUIRE(superclass_class_scores(l, map).argmax(1).item<int64_t>() == 0);
  // Tokens in the mapping file, in symbol form.
  auto tsv = superclass_mapping_tsv(map, tok);
  REQUIRE(tsv.find("cat</w>") != std::string::npos);
  REQUIRE(tsv.find("unmapped") != std::string::npos);
}

TEST_CASE("superclass zero-shot: an export is loaded with its tokenizer and evaluated") {
  test::TempDir dir("sc-zs");
  auto tok = small_tokenizer();
  const std::string exp = dir.path() + "/export";
  fs::create_directories(exp);
  tok.save(exp + "/tokenizer.txt");
  const auto info = model::read_tokenizer_info(exp + "/tokenizer.txt");
  model::ViTConfig cfg;
  cfg.dim = 32;
  cfg.depth = 1;
  cfg.heads = 2;
  cfg.image_size = 16;
  cfg.patch_size = 8;
  cfg.num_classes = tok.vocab_size();
  torch::manual_seed(4);
  model::ViT vit(cfg);
  auto path = model::export_vit(exp, "model", model::named_state(*vit), cfg,
                                {{"catlip.objective", "superclass"}, {"catlip.tokenizer_checksum", info.checksum}}, 7);
  auto m = model::load_model(path);
  REQUIRE(m.objective == "superclass");
  REQUIRE(m.tokenizer_checksum == info.checksum);
  auto found = load_superclass_tokenizer(path, m.tokenizer_checksum);
  REQUIRE(found.vocab_size() == tok.vocab_size());
  REQUIRE_THROWS_WITH(load_superclass_tokenizer(path, "crc32:00000000"), Catch::Contains("trained with"));
  REQUIRE_THROWS_WITH(load_superclass_tokenizer(dir.path() + "/a/b/model.safetensors", ""),
                      Catch::Contains("no tokenizer.txt"));

  LabeledSet test;
  test.images = torch::randint(0, 256, {6, 16, 16, 3}, torch::kUInt8);
  auto map = superclass_token_mapping(three_classes(), found);
  torch::NoGradGuard g;
  auto logits = m.model->forward(model::preprocess_images(test.images, m.device));
  test.labels = superclass_class_scores(logits, map).argmax(1);
  REQUIRE(superclass_zero_shot(m, test, map, {}, {}) == Approx(1.0));
  test.labels = (test.labels + 1) % 3;
  REQUIRE(superclass_zero_shot(m, test, map, {}, {}) == Approx(0.0));
}

TEST_CASE("superclass zero-shot end to end: trained on captions, classes found by their names' tokens") {
  test::TempDir d("sc-zs-e2e");
  const std::vector<std::string> names = {"ball", "cup", "tree"};
  text::BpeWordCounts counts;
  for (auto& n : names)
    for (auto& w : text::bpe_pretokenize(text::bpe_normalize("a photo of a " + n + ".")))
      counts[w] += 10;
  auto tok = text::BpeTokenizer::learn(counts, 540);
  tok.save(d.file("bpe.txt"));
  // Class c: one colour channel high, with noise; caption "a photo of a <name>.".
  auto image_of = [](int64_t c, uint64_t seed) {
    torch::manual_seed(seed);
    auto x = torch::randint(0, 60, {16, 16, 3}, torch::kInt64);
    x.select(2, c).add_(180);
    return x.clamp(0, 255).to(torch::kUInt8).contiguous();
  };
  train::TrainOptions o;
  o.objective = "superclass";
  o.tokenizer_path = d.file("bpe.txt");
  o.model.dim = 32, o.model.depth = 1, o.model.heads = 2, o.model.image_size = 16, o.model.patch_size = 8;
  o.model.pool = "avg";
  o.batch_size = 12, o.steps = 30, o.lr = 3e-3, o.min_lr = 3e-3, o.warmup_steps = 0, o.weight_decay = 0;
  o.device = "cpu", o.threads = 2, o.log_every = 0, o.checkpoint_every = 0, o.run_dir = d.path();
  {
    LocalContext ctx;
    train::Trainer t(o, ctx);
    for (int64_t i = 0; !t.done(); ++i) {
      const int64_t c = i % 3;
      auto x = image_of(c, uint64_t(100 + i));
      Tensor img;
      img.dtype = DType::U8;
      img.shape = {16, 16, 3};
      img.data.assign(static_cast<const char*>(x.data_ptr()), static_cast<const char*>(x.data_ptr()) + x.numel());
      auto ids = tok.encode_context("a photo of a " + names[size_t(c)] + ".", 77);
      t.add(img, IntList(ids.begin(), ids.end()), Origin{"s.tar", 0, i, 0}, "k");
    }
    t.finish();
  }
  const std::string path = d.file("export/model.safetensors");
  auto m = model::load_model(path);
  REQUIRE(m.objective == "superclass");
  auto found = load_superclass_tokenizer(path, m.tokenizer_checksum);
  eval::ClassList classes;
  classes.wnids = {"n02778669", "n03147509", "n13104059"};
  classes.names = names;
  auto map = superclass_token_mapping(classes, found);
  REQUIRE(map.unmapped == 0);
  std::vector<torch::Tensor> imgs;
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < 15; ++i) {
    imgs.push_back(image_of(i % 3, uint64_t(5000 + i)));
    labels.push_back(i % 3);
  }
  LabeledSet test{torch::stack(imgs), torch::tensor(labels, torch::kInt64), 0};
  // "a", "photo", "of" are in every caption (IDF 0): only the class word is
  // a target, and its logit finds the class.
  const double acc = superclass_zero_shot(m, test, map, m.config.mean, m.config.std);
  INFO("zero-shot accuracy " << acc);
  REQUIRE(acc >= 0.9);
}
