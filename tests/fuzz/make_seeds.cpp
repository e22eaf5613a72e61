// Writes the seed corpus of the fuzz targets with the project's own
// encoders: codec messages, tars from TarWriter, tiny JPEG/PNG/WebP images
// (tests/image/image_test_util), captions, safetensors files, data
// positions and JSON. The graph seeds are copies of configs/*.toml
// (tools/fuzz.sh --seeds copies them).
//
//   fuzz_make_seeds <corpus dir>   (writes <dir>/{codec,tar,image,text,formats}/seed-*)
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "catlip/codec.h"
#include "catlip/model/safetensors.h"
#include "catlip/shards/tar_writer.h"
#include "catlip/train/data_position.h"
#include "image_test_util.h"

namespace fs = std::filesystem;
using namespace catlip;

static void put(const fs::path& dir, const std::string& name, const std::string& data) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << data;
}

static std::string codec_input(const std::string& head, const std::vector<std::string>& att = {}) {
  std::string s(1, char(att.size()));
  for (auto& a : att) {
    s += char(a.size() & 0xFF);
    s += char(a.size() >> 8);
    s += a;
  }
  return s + head;
}

static std::string tar_of(const fs::path& tmp, void (*fill)(shards::TarWriter&)) {
  shards::TarWriter w(tmp.string());
  fill(w);
  w.close();
  std::ifstream f(tmp, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  fs::path root = argv[1];

  // --- codec
  Sample s;
  s.key = "000042";
  s.origin = {"data/train-000001.tar", 1, 42, 3};
  s.set_bytes("jpg", std::string("\xFF\xD8\xFF\xE0 not really a jpeg", 21));
  s.set_text("txt", "a cat on a mat");
  s.set_ints("labels", {1, 5, 9, -1, 1ll << 40});
  Tensor t;
  t.dtype = DType::F32;
  t.shape = {2, 3};
  t.data.assign(24, '\x01');
  s.set("pixels", t);
  put(root / "codec", "seed-sample", codec_input(encode_sample(s)));
  Batch b;
  b.samples = {s, s};
  b.samples[1].key = "000043";
  b.samples[1].fields.erase("pixels");
  put(root / "codec", "seed-batch", codec_input(encode_batch(b)));
  for (auto [kind, name] : {std::pair{MsgKind::Credit, "credit"}, {MsgKind::Hello, "hello"},
                            {MsgKind::EndOfStream, "eos"}, {MsgKind::Stop, "stop"}}) {
    Message m;
    m.kind = kind;
    m.value = 8;
    m.text = "decode.0";
    put(root / "codec", std::string("seed-") + name, codec_input(encode(m)));
  }
  {
    Message m;
    m.kind = MsgKind::Sample;
    m.body = s;
    std::string head;
    std::vector<std::string> att;
    encode_parts(std::move(m), head, att, 16);
    put(root / "codec", "seed-attachments", codec_input(head, att));
  }

  // --- tar (byte 0: SampleReader option bits, see fuzz_tar.cpp)
  fs::path tmp = fs::temp_directory_path() / ("catlip-fuzz-seed-" + std::to_string(getpid()) + ".tar");
  put(root / "tar", "seed-webdataset", std::string(1, '\0') + tar_of(tmp, [](shards::TarWriter& w) {
        w.add("000000.jpg", "JPEGDATA");
        w.add("000000.txt", "a red car");
        w.add("000001.jpeg", "JPEG2");
        w.add("000001.TXT", "two dogs");
        w.add("000001.cls", "7");
        w.add("dir/000002.seg.png", "PNG");
      }));
  put(root / "tar", "seed-longnames-pax", std::string(1, '\x03') + tar_of(tmp, [](shards::TarWriter& w) {
        w.add(std::string(120, 'a') + "/" + std::string(60, 'k') + ".jpg", "x");
        w.add(std::string(120, 'a') + "/" + std::string(60, 'k') + ".txt", "caption");
      }));
  put(root / "tar", "seed-longnames-gnu", std::string(1, '\x10') + tar_of(tmp, [](shards::TarWriter& w) {
        w.set_gnu_long_names(true);
        w.add(std::string(150, 'b') + ".png", "png");
        w.add(std::string(150, 'b') + ".txt", "text");
      }));
  {
    std::string odd = shards::TarWriter::header_block("adir/", 0, '5') +
                      shards::TarWriter::header_block("link.jpg", 0, '2', 0, 0777, "target.jpg") +
                      tar_of(tmp, [](shards::TarWriter& w) {
                        w.add("noext", "skipped");
                        w.add("k.jpg", std::string(200, 'j'));
                        w.add("k.jpg", "duplicate");
                      });
    put(root / "tar", "seed-odd-members", std::string(1, '\x04') + odd);
  }
  fs::remove(tmp);
  // Round-trip mode (bit 5; bit 6 GNU long names): a list of members.
  auto rt = [](char flags, std::vector<std::pair<std::string, std::string>> ms) {
    std::string s(1, flags);
    for (auto& [a, b] : ms)
      for (auto* x : {&a, &b}) s += std::string{char(x->size() & 0xFF), char(x->size() >> 8)} + *x;
    return s;
  };
  put(root / "tar", "seed-roundtrip-pax",
      rt('\x20', {{"000000.jpg", "abc"}, {std::string(99, 'p') + "/" + std::string(101, 'n') + ".txt", "long"},
                   {"dir/\xC3\xA9t\xC3\xA9.cls", std::string(513, 'z')}}));
  put(root / "tar", "seed-roundtrip-gnu",
      rt('\x60', {{std::string(300, 'g') + ".png", "x"}, {"a b/c=d.txt", ""}}));

  // --- image (byte 0: option bits, see fuzz_image.cpp; 4 = also decode_full)
  auto px = test::pattern_rgb(24, 16, 1);
  std::vector<uint8_t> gray(24 * 16), rgba(24 * 16 * 4), cmyk(24 * 16 * 4);
  for (size_t i = 0; i < gray.size(); ++i) {
    gray[i] = px[3 * i];
    for (int c = 0; c < 3; ++c) rgba[4 * i + c] = px[3 * i + c];
    rgba[4 * i + 3] = uint8_t(i * 7);
    for (int c = 0; c < 4; ++c) cmyk[4 * i + c] = uint8_t(px[3 * i + c % 3] ^ (c * 50));
  }
  put(root / "image", "seed-rgb.jpg", "\x04" + test::encode_jpeg(px, 24, 16, 3, 80));
  put(root / "image", "seed-gray.jpg", "\x05" + test::encode_jpeg(gray, 24, 16, 1, 80));
  put(root / "image", "seed-cmyk.jpg", "\x0C" + test::encode_jpeg(cmyk, 24, 16, 4, 80, false));
  put(root / "image", "seed-rgb.png", "\x04" + test::encode_png(px, 24, 16, 3));
  put(root / "image", "seed-gray.png", "\x13" + test::encode_png(gray, 24, 16, 1));
  put(root / "image", "seed-rgba.png", "\x04" + test::encode_png(rgba, 24, 16, 4));
  put(root / "image", "seed-rgb.webp", "\x04" + test::encode_webp(px, 24, 16, 3));
  put(root / "image", "seed-rgba.webp", "\x1D" + test::encode_webp(rgba, 24, 16, 4));
  put(root / "image", "seed-huge-header.png",
      "\x04" + test::png_with_size(test::encode_png(px, 24, 16, 3), 100000, 100000));

  // --- text (byte 0: option bits, see fuzz_text.cpp)
  int i = 0;
  for (const char* c : {
           "A photo of a Cat sitting on the mat.",
           "Two dogs  playing in the   park, isn't it \"great\"?",
           "<b>Sale</b>+50%25+off &amp; free shipping!! http://example.com/a%20b?x=1&y=2",
           "caf\xC3\xA9 na\xC3\xAFve \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x90\xB1 &#x1F408; &nbsp;done",
           "bad \xFF\xFE utf8 \xC3 cut -- (parens) [brackets] {braces} can't won't gonna 1,000.5 $3 ...",
       })
  {
    put(root / "text", "seed-" + std::to_string(i), std::string(1, char(i & 3)) + c);
    ++i;
  }

  // --- formats (byte 0: 0 safetensors, 1 data position, 2 JSON; see fuzz_formats.cpp)
  {
    std::vector<float> w = {1.5f, -2.f, 3.25f, 0.f, 7.f, 8.f};
    std::vector<int64_t> n = {42, -1};
    std::vector<model::TensorView> views = {{"blocks.0.attn.qkv.weight", DType::F32, {2, 3}, w.data(), 24},
                                            {"n", DType::I64, {2}, n.data(), 16},
                                            {"empty", DType::BF16, {0, 4}, nullptr, 0}};
    std::string st;
    model::safetensors_write([&](const void* p, size_t k) { st.append(static_cast<const char*>(p), k); },
                             {{"format", "pt"}, {"catlip.step", "7"}}, views);
    put(root / "formats", "seed-safetensors", std::string(1, '\0') + st);
    train::DataPosition pos;
    for (int64_t k : {0, 1, 2, 5, 6, 9})
      pos.insert(Origin{"shards/train-000001.tar", 0, k, 1});
    pos.insert(Origin{"b \"q\".tar", 2, 0, 3});
    put(root / "formats", "seed-data-position", std::string(1, '\1') + pos.to_json());
    put(root / "formats", "seed-data-position-v1", std::string(1, '\1') + R"({"s0.tar": [0, 3, 11], "s1.tar": [2, 4, 5]})");
    put(root / "formats", "seed-json",
        std::string(1, '\2') + R"({"a": [1, -2, 3.5e-7, true, null], "s": "x\"\\\n\u00e9\ud83d\ude00", "o": {"k": {}}})");
  }
  return 0;
}
