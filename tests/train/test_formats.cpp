// Torch-free pieces: safetensors, checkpoint frame, vocabulary, lr schedule.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <zlib.h>

#include "catlip/model/checkpoint_file.h"
#include "catlip/model/safetensors.h"
#include "catlip/model/vit_config.h"
#include "catlip/model/vocab.h"
#include "catlip/train/schedule.h"
#include "test_util.h"

using namespace catlip;
using namespace catlip::model;
using namespace catlip::train;

TEST_CASE("checksums are CRC-32/ISO-HDLC (zlib's), as files written before hold") {
  // The check value of CRC-32/ISO-HDLC, which checkpoint frames and the
  // vocabulary/tokenizer checksums have always used.
  CHECK(crc32_z(0, reinterpret_cast<const Bytef*>("123456789"), 9) == 0xCBF43926u);
  // A vocabulary's checksum (recorded in checkpoints and exports) is stable.
  test::TempDir dir("crc");
  test::write_file(dir.file("v.tsv"), "index\twnid\tlemma\tcount\tgloss\n0\tn01\tdog\t5\ta dog\n1\tn02\tcat\t3\ta cat\n");
  CHECK(load_vocab(dir.file("v.tsv")).checksum == "crc32:b1920327");
  // A checkpoint frame's CRC field (bytes 12..15, LE) is the CRC of the
  // payload, computed incrementally while writing.
  std::vector<float> w(3000, 0.25f);
  std::string p = write_checkpoint_file(dir.path(), 1, {{"catlip.step", "1"}}, {{"w", DType::F32, {3000}, w.data(), 12000}});
  std::string bytes = test::read_file(p);
  REQUIRE(bytes.size() > kCheckpointFrameBytes);
  uint32_t field = 0;
  for (int i = 0; i < 4; ++i) field |= uint32_t(static_cast<unsigned char>(bytes[12 + i])) << (8 * i);
  CHECK(field == crc32_z(0, reinterpret_cast<const Bytef*>(bytes.data()) + kCheckpointFrameBytes,
                         bytes.size() - kCheckpointFrameBytes));
}

TEST_CASE("safetensors round trip keeps names, dtypes, shapes, bytes and metadata") {
  test::TempDir dir("st");
  std::vector<float> a = {1.5f, -2.f, 3.25f, 0.f, 7.f, 8.f};
  std::vector<int64_t> b = {42, -1};
  std::vector<TensorView> views = {{"blocks.0.attn.qkv.weight", DType::F32, {2, 3}, a.data(), a.size() * 4},
                                   {"n", DType::I64, {2}, b.data(), b.size() * 8}};
  std::string path = dir.file("x.safetensors");
  safetensors_save(path, {{"format", "pt"}, {"quote\"d", "line\nbreak"}}, views);
  auto f = safetensors_load(path);
  CHECK(f.metadata.at("format") == "pt");
  CHECK(f.metadata.at("quote\"d") == "line\nbreak");
  REQUIRE(f.tensors.size() == 2);
  auto& t = f.tensors.at("blocks.0.attn.qkv.weight");
  CHECK(t.dtype == DType::F32);
  CHECK(t.shape == std::vector<int64_t>{2, 3});
  CHECK(std::memcmp(t.data.data(), a.data(), 24) == 0);
  CHECK(f.tensors.at("n").dtype == DType::I64);
  // Header length is a multiple of 8 and the data follows it directly.
  std::string bytes = test::read_file(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  CHECK(bytes.size() == 8 + n + 24 + 16);
}

TEST_CASE("safetensors parser rejects hostile headers instead of reading out of bounds") {
  auto blob = [](const std::string& header, size_t data_bytes) {
    std::string s(8, '\0');
    uint64_t n = header.size();
    std::memcpy(s.data(), &n, 8);
    return s + header + std::string(data_bytes, '\0');
  };
  CHECK_THROWS(safetensors_parse(std::string(4, '\0'), "short"));
  std::string huge(8, '\xff');
  CHECK_THROWS(safetensors_parse(huge + "{}", "huge length"));
  CHECK_THROWS(safetensors_parse(blob(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}})", 8), "oob"));
  CHECK_THROWS(safetensors_parse(blob(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "size"));
  CHECK_THROWS(safetensors_parse(blob(R"({"a":{"dtype":"X9","shape":[2],"data_offsets":[0,8]}})", 8), "dtype"));
  CHECK_THROWS(safetensors_parse(blob(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 8), "json"));
  CHECK_NOTHROW(safetensors_parse(blob(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8), "ok"));
  // Errors name the input and say what is wrong; a JSON error gives the byte.
  CHECK_THROWS_WITH(safetensors_parse(blob(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 8), "x.st"),
                    Catch::Contains("x.st: not a valid safetensors file") && Catch::Contains("header: invalid JSON at byte 54"));
  // Numbers must be integers: no silent conversion of 2.5 or "2".
  CHECK_THROWS_WITH(safetensors_parse(blob(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8), "f"),
                    Catch::Contains("entry 'a'") && Catch::Contains("expected an integer"));
  CHECK_THROWS_WITH(safetensors_parse(blob(R"({"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", 8), "s"),
                    Catch::Contains("expected an integer"));
  CHECK_THROWS_WITH(safetensors_parse(blob(R"({"a":{"dtype":"F32","shape":[2]}})", 8), "m"),
                    Catch::Contains("missing 'data_offsets'"));
  // A shape whose byte size wraps around 2^64 (2^61 F64 elements = 2^64 bytes = 0).
  CHECK_THROWS(safetensors_parse(blob(R"({"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})", 8), "wrap"));
  CHECK_THROWS(safetensors_parse(blob(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}})", 8), "u64"));
  // Nesting is bounded (64 levels), so is the header (100 MB, as the reference implementation).
  std::string deep = R"({"__metadata__":)" + std::string(70, '[') + std::string(70, ']') + "}";
  CHECK_THROWS_WITH(safetensors_parse(blob(deep, 0), "deep"), Catch::Contains("nested deeper than 64"));
  std::string big(8 + 100'000'001, ' ');
  uint64_t n = 100'000'001;
  std::memcpy(big.data(), &n, 8);
  CHECK_THROWS_WITH(safetensors_parse(big, "big"), Catch::Contains("over the limit"));
}

TEST_CASE("safetensors header: compact JSON, metadata first, tensors in order, padded to 8") {
  std::vector<TensorView> v = {{"z", DType::F32, {2, 3}, nullptr, 24}, {"a\"b", DType::I64, {}, nullptr, 8}};
  std::string h = safetensors_header({{"format", "pt"}, {"k\n", "v"}}, v);
  CHECK(h.size() % 8 == 0);
  CHECK(h.rfind(R"({"__metadata__":{"format":"pt","k\n":"v"},"z":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                R"("a\"b":{"dtype":"I64","shape":[],"data_offsets":[24,32]}})",
                0) == 0);
}

TEST_CASE("checkpoint frame detects truncation and corruption") {
  test::TempDir dir("ck");
  std::vector<float> w(1000, 0.5f);
  std::vector<TensorView> v = {{"model.w", DType::F32, {1000}, w.data(), w.size() * 4}};
  std::string p1 = write_checkpoint_file(dir.path(), 5, {{"catlip.step", "5"}}, v);
  std::string p2 = write_checkpoint_file(dir.path(), 10, {{"catlip.step", "10"}}, v);
  CHECK(p2 == dir.path() + "/ckpt-0000000010.catlip");
  auto all = list_checkpoints(dir.path());
  REQUIRE(all.size() == 2);
  CHECK(all[0] == p2);  // newest first
  auto ok = read_checkpoint_file(p1);
  REQUIRE(ok.ok());
  CHECK(ok->metadata.at("catlip.step") == "5");

  std::string bytes = test::read_file(p2);
  test::write_file(p2, bytes.substr(0, bytes.size() / 2));
  std::string why = read_checkpoint_file(p2).status().message();
  CHECK(why.find("truncated") != std::string::npos);
  CHECK(why.find(p2) != std::string::npos);

  bytes[bytes.size() - 10] ^= 0x55;
  test::write_file(p2, bytes);
  why = read_checkpoint_file(p2).status().message();
  CHECK(why.find("CRC") != std::string::npos);

  test::write_file(p2, "garbage that is long enough to hold a frame header....");
  why = read_checkpoint_file(p2).status().message();
  CHECK(why.find("magic") != std::string::npos);

  // No temporary files are left behind by atomic writes.
  for (int s = 11; s <= 14; ++s) write_checkpoint_file(dir.path(), s, {}, v);
  prune_checkpoints(dir.path(), 3);
  all = list_checkpoints(dir.path());
  REQUIRE(all.size() == 3);
  CHECK(all.back() == dir.path() + "/ckpt-0000000012.catlip");
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) (void)e, ++files;
  CHECK(files == 3);
}

TEST_CASE("vocabulary: header, ordered indices, checksum") {
  test::TempDir dir("voc");
  std::string good = "index\twnid\tlemma\tcount\tgloss\n0\tn01\tdog\t5\ta dog\n1\tn02\tcat\t3\ta cat\n";
  test::write_file(dir.file("v.tsv"), good);
  auto v = load_vocab(dir.file("v.tsv"));
  CHECK(v.size() == 2);
  CHECK(v.wnids[1] == "n02");
  CHECK(v.lemmas[0] == "dog");
  CHECK(v.checksum.rfind("crc32:", 0) == 0);
  test::write_file(dir.file("v2.tsv"), good + "2\tn03\tcow\t1\ta cow\n");
  CHECK(load_vocab(dir.file("v2.tsv")).checksum != v.checksum);

  // text.vocab_merge's variant: the header as a comment, comment lines allowed.
  test::write_file(dir.file("v3.tsv"), "#" + good + "# trailing comment\n");
  CHECK(load_vocab(dir.file("v3.tsv")).size() == 2);

  test::write_file(dir.file("bad1.tsv"), "idx\twnid\n0\tn01\tdog\t1\tx\n");
  CHECK_THROWS_WITH(load_vocab(dir.file("bad1.tsv")), Catch::Contains("bad1.tsv:1"));
  test::write_file(dir.file("bad2.tsv"), "index\twnid\tlemma\tcount\tgloss\n0\tn01\tdog\t1\tx\n5\tn02\tcat\t1\tx\n");
  CHECK_THROWS_WITH(load_vocab(dir.file("bad2.tsv")), Catch::Contains("bad2.tsv:3"));
  // One set of rules for every reader (text::Vocab builds on this one): a wnid once.
  test::write_file(dir.file("bad3.tsv"), good + "2\tn01\tpuppy\t1\tx\n");
  CHECK_THROWS_WITH(load_vocab(dir.file("bad3.tsv")), Catch::Contains("bad3.tsv:4") && Catch::Contains("duplicate wnid"));
  // A damaged count is an error naming the line, not a silent 0 or 12.
  test::write_file(dir.file("bad4.tsv"), good + "2\tn03\tcow\t12x\tx\n");
  CHECK_THROWS_WITH(load_vocab(dir.file("bad4.tsv")), Catch::Contains("bad4.tsv:4") && Catch::Contains("count '12x'"));
  test::write_file(dir.file("bad5.tsv"), good + "2\tn03\tcow\tmany\tx\n");
  CHECK_THROWS_WITH(load_vocab(dir.file("bad5.tsv")), Catch::Contains("bad5.tsv:4"));
  // An empty or absent count is 0.
  test::write_file(dir.file("v4.tsv"), good + "2\tn03\tcow\t\tx\n3\tn04\tant\n");
  CHECK(load_vocab(dir.file("v4.tsv")).counts == std::vector<int64_t>{5, 3, 0, 0});
  CHECK(v.glosses == std::vector<std::string>{"a dog", "a cat"});
}

TEST_CASE("lr schedule: linear warmup then cosine to min_lr, by iteration") {
  LrSchedule s;
  s.lr = 1e-3;
  s.min_lr = 1e-5;
  s.warmup_init_lr = 1e-6;
  s.warmup = 10;
  s.total = 110;
  CHECK(s.at(0) == Approx(1e-6));
  CHECK(s.at(5) == Approx(1e-6 + 5 * (1e-3 - 1e-6) / 10));
  CHECK(s.at(10) == Approx(1e-3));
  CHECK(s.at(60) == Approx(1e-5 + (1e-3 - 1e-5) * 0.5));                           // half way
  CHECK(s.at(35) == Approx(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + std::cos(M_PI * 0.25))));
  CHECK(s.at(110) == Approx(1e-5));
  CHECK(s.at(500) == Approx(1e-5));
  for (int i = 11; i < 110; ++i) CHECK(s.at(i) < s.at(i - 1));
  s.total = 0;  // unknown length: constant after warmup
  CHECK(s.at(1000) == Approx(1e-3));
}

TEST_CASE("ViT config: named sizes, checks, string round trip") {
  ViTConfig c;
  REQUIRE(vit_size("base", &c));
  CHECK((c.dim == 768 && c.depth == 12 && c.heads == 12));
  REQUIRE(vit_size("huge", &c));
  CHECK((c.dim == 1280 && c.depth == 32 && c.heads == 20));
  CHECK_FALSE(vit_size("giant", &c));
  c.num_classes = 24320;
  CHECK(ViTConfig::parse(c.to_string()) == c);
  ViTConfig bad = c;
  bad.heads = 7;
  CHECK_FALSE(bad.check().empty());
  bad = c;
  bad.stem = "conv3";
  bad.patch_size = 14;
  bad.image_size = 224;
  CHECK_FALSE(bad.check().empty());
  bad = c;
  bad.pool = "attention";
  CHECK_FALSE(bad.check().empty());

  // Stem, pooling and input normalisation travel with the weights, so the
  // evaluator rebuilds and feeds the model exactly as training did.
  ViTConfig h = c;
  h.stem = "cnn";
  h.pool = "max";
  h.mean = {0.485, 0.456, 0.406};
  h.std = {0.229, 0.224, 0.225};
  REQUIRE(h.check().empty());
  ViTConfig back = ViTConfig::parse(h.to_string());
  CHECK(back == h);
  CHECK(back.pool == "max");
  CHECK(back.mean == h.mean);
  CHECK(back.std == h.std);
  // A config string from before pool/mean existed still parses: CLS, no normalisation.
  ViTConfig old = ViTConfig::parse("dim=64 depth=2 heads=2 mlp_ratio=4 image_size=32 patch_size=8 stem=patchify "
                                   "num_classes=10 ln_eps=1e-06");
  CHECK(old.pool == "token");
  CHECK(old.mean.empty());
  bad = h;
  bad.std = {0.2, 0.2};
  CHECK_FALSE(bad.check().empty());
}
