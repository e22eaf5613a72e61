// Tar parsing and WebDataset grouping: long names, damage, hostile sizes.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>

#include "catlip/shards/assignment.h"
#include "catlip/shards/tar_reader.h"
#include "catlip/shards/webdataset.h"
#include "shard_fixtures.h"
#include "test_util.h"

using namespace catlip;
using namespace catlip::shards;
using catlip::test::TempDir;

namespace {

struct Problems {
  std::map<std::string, int> count;
  std::vector<std::string> messages;
  ProblemFn fn() {
    return [this](const std::string& r, const std::string& m) {
      ++count[r];
      messages.push_back(m);
    };
  }
};

std::vector<Sample> read_all(const std::string& url, Problems& pr, ReadOptions opts = {}) {
  SampleReader r(open_stream(url), url, 0, opts, pr.fn());
  std::vector<Sample> out;
  Sample s;
  while (r.next(s)) out.push_back(std::move(s));
  return out;
}

std::string pad512(std::string s) {
  s.resize((s.size() + 511) / 512 * 512, '\0');
  return s;
}

}  // namespace

TEST_CASE("key and extension follow WebDataset rules") {
  auto ke = split_key_ext("a/b.c/000001.Seg.PNG");
  REQUIRE(ke);
  CHECK(ke->first == "a/b.c/000001");
  CHECK(ke->second == "seg.png");
  CHECK(split_key_ext("x/000002.jpeg")->second == "jpg");
  CHECK_FALSE(split_key_ext("noext"));
  CHECK_FALSE(split_key_ext("dir.d/noext"));
  CHECK_FALSE(split_key_ext("dir/.hidden"));
  CHECK_FALSE(split_key_ext("trailing."));
  CHECK(normalize_ext("JPEG|Png|webp") == "jpg|png|webp");
  CHECK(normalize_exts({"TXT", "jpeg"}) == std::vector<std::string>{"txt", "jpg"});
}

TEST_CASE("tar round trip with pax and GNU long names") {
  TempDir d("tar");
  std::string dir1(120, 'd'), base(130, 'k');  // too long for ustar's 100 + 155 split
  std::string long_key = dir1 + "/" + base;
  for (bool gnu : {false, true}) {
    std::string path = d.file(gnu ? "gnu.tar" : "pax.tar");
    {
      TarWriter w(path);
      w.set_gnu_long_names(gnu);
      w.add("000000000.jpg", "img0");
      w.add("000000000.txt", "cap0");
      w.add(long_key + ".jpg", "img-long");
      w.add(long_key + ".txt", "cap-long");
      w.add(std::string(90, 'p') + "/" + std::string(90, 'q') + ".txt", "ustar-prefix");  // prefix split
      w.close();
    }
    Problems pr;
    auto v = read_all(path, pr);
    INFO((gnu ? "gnu" : "pax"));
    REQUIRE(v.size() == 3);
    CHECK(v[0].key == "000000000");
    CHECK(v[0].bytes("jpg")->data == "img0");
    CHECK(*v[0].text("txt") == "cap0");
    CHECK(v[1].key == long_key);
    CHECK(v[1].bytes("jpg")->data == "img-long");
    CHECK(*v[1].text("txt") == "cap-long");
    CHECK(v[2].key == std::string(90, 'p') + "/" + std::string(90, 'q'));
    CHECK(v[0].origin.index == 0);
    CHECK(v[2].origin.index == 2);
    CHECK(pr.count.empty());
  }
  // The files are real tars that GNU tar lists with the full names.
  auto r = catlip::test::run_cmd("tar tf " + d.file("pax.tar") + " | grep -c " + base);
  CHECK(r.out.find("2") == 0);
}

TEST_CASE("truncated tail keeps the completed samples and counts the damage") {
  TempDir d("trunc");
  auto pat = catlip::test::make_shards(d.path(), 1, 5, 2000);
  std::string shard = d.file("shard-000000.tar");
  auto full = std::filesystem::file_size(shard);
  // Cut inside the 4th sample's jpg data: samples 0..2 are complete.
  Problems pr0;
  auto all = read_all(shard, pr0);
  REQUIRE(all.size() == 5);
  std::string bytes = catlip::test::read_file(shard);
  size_t cut = bytes.find("000000003.jpg") + 512 + 1000;
  catlip::test::write_file(d.file("cut.tar"), bytes.substr(0, cut));
  Problems pr;
  auto v = read_all(d.file("cut.tar"), pr);
  REQUIRE(v.size() == 3);
  CHECK(catlip::test::keys_of(v) == std::vector<std::string>{"000000000", "000000001", "000000002"});
  CHECK(pr.count["error.truncated_shard"] == 1);
  REQUIRE(!pr.messages.empty());
  CHECK(pr.messages[0].find("cut.tar") != std::string::npos);

  // Cut inside a header block.
  catlip::test::write_file(d.file("cut2.tar"), bytes.substr(0, bytes.find("000000002.jpg") + 100));
  Problems pr2;
  auto v2 = read_all(d.file("cut2.tar"), pr2);
  // Samples 0 and 1 were read whole before the damaged header: both kept.
  CHECK(catlip::test::keys_of(v2) == std::vector<std::string>{"000000000", "000000001"});
  CHECK(pr2.count["error.truncated_shard"] == 1);
  CHECK(pr2.count.count("skipped.incomplete_sample") == 0);

  // A tar that simply lacks the end-of-archive blocks is not damaged.
  catlip::test::write_file(d.file("noend.tar"), bytes.substr(0, full - 1024));
  Problems pr3;
  CHECK(read_all(d.file("noend.tar"), pr3).size() == 5);
  CHECK(pr3.count.empty());
}

TEST_CASE("non-regular members are skipped and counted") {
  TempDir d("nonreg");
  std::string tar;
  auto add = [&](const std::string& name, const std::string& data, char type, const std::string& link = "") {
    tar += TarWriter::header_block(name, data.size(), type, 0, 0644, link);
    tar += pad512(data);
  };
  add("dir/", "", '5');
  add("dir/000000001.jpg", "a", '0');
  add("dir/000000001.lnk", "", '2', "/etc/passwd");  // symlink: never followed
  add("dir/000000001.txt", "cap", '0');
  add("dir/000000001.hard", "", '1', "dir/000000001.jpg");
  add("fifo.txt", "", '6');
  add("dir/000000002.jpg", "b", '\0');  // old-style regular file
  add("dir/000000002.txt", "cap2", '0');
  tar += std::string(1024, '\0');
  catlip::test::write_file(d.file("n.tar"), tar);
  Problems pr;
  auto v = read_all(d.file("n.tar"), pr);
  REQUIRE(v.size() == 2);
  CHECK(v[0].key == "dir/000000001");
  CHECK(v[0].fields.size() == 2);
  CHECK(v[1].bytes("jpg")->data == "b");
  CHECK(pr.count["skipped.non_regular_member"] == 4);
}

TEST_CASE("hostile member sizes are skipped without allocating") {
  TempDir d("hostile");
  SECTION("oversized member followed by good samples") {
    TarWriter w(d.file("big.tar"));
    w.add("000000000.jpg", std::string(3 << 20, 'x'));
    w.add("000000000.txt", "cap0");
    w.add("000000001.jpg", "small");
    w.add("000000001.txt", "cap1");
    w.close();
    Problems pr;
    ReadOptions o;
    o.max_member_bytes = 1 << 20;
    o.require = {"jpg|png|webp", "txt"};
    auto v = read_all(d.file("big.tar"), pr, o);
    REQUIRE(v.size() == 1);
    CHECK(v[0].key == "000000001");
    CHECK(pr.count["skipped.member_too_large"] == 1);
    CHECK(pr.count["skipped.missing_jpg_png_webp"] == 1);
  }
  SECTION("a header claiming an enormous size (base-256) on a tiny file") {
    std::string h = TarWriter::header_block("000000000.jpg", 0, '0');
    // Size field in GNU base-256: 2^60 bytes.
    std::memset(&h[124], 0, 12);
    h[124] = static_cast<char>(0x80);
    h[128] = 0x10;
    std::memset(&h[148], ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(&h[148], 8, "%06o", sum);
    h[155] = ' ';
    std::string good;
    {
      TarWriter w(d.file("g.tar"));
      w.add("000000000.txt", "cap");
      w.close();
    }
    std::string g = catlip::test::read_file(d.file("g.tar"));
    catlip::test::write_file(d.file("h.tar"), g.substr(0, 1024) + h + std::string(4096, 'z'));
    Problems pr;
    auto v = read_all(d.file("h.tar"), pr);
    CHECK(v.empty());  // sample 0 was cut short by the damage
    CHECK(pr.count["skipped.member_too_large"] == 1);
    CHECK(pr.count["error.truncated_shard"] == 1);
  }
  SECTION("oversized long-name records and bad checksums are damage, not allocations") {
    std::string tar = TarWriter::header_block("././@LongLink", 1ull << 40, 'L') + std::string(512, 'a');
    catlip::test::write_file(d.file("l.tar"), tar);
    Problems pr;
    CHECK(read_all(d.file("l.tar"), pr).empty());
    CHECK(pr.count["error.corrupt_shard"] == 1);

    std::string bad = TarWriter::header_block("000000000.txt", 3, '0') + pad512("abc");
    bad[0] = 'X';  // checksum no longer matches
    catlip::test::write_file(d.file("c.tar"), bad + std::string(1024, '\0'));
    Problems pr2;
    CHECK(read_all(d.file("c.tar"), pr2).empty());
    CHECK(pr2.count["error.corrupt_shard"] == 1);
  }
}

TEST_CASE("unknown extensions, names without extension and duplicates are counted") {
  TempDir d("ext");
  TarWriter w(d.file("e.tar"));
  w.add("000000000.jpg", "a");
  w.add("000000000.TXT", "cap");
  w.add("000000000.exe", "zz");
  w.add("000000000.txt", "dup");
  w.add("README", "no extension");
  w.add("000000001.JPEG", "b");
  w.add("000000001.txt", "cap1");
  w.close();
  Problems pr;
  ReadOptions o;
  o.keep = {"jpg", "txt"};
  auto v = read_all(d.file("e.tar"), pr, o);
  REQUIRE(v.size() == 2);
  CHECK(*v[0].text("txt") == "cap");
  CHECK_FALSE(v[0].has("exe"));
  CHECK(v[1].bytes("jpg")->data == "b");
  CHECK(pr.count["skipped.unknown_extension"] == 1);
  CHECK(pr.count["skipped.duplicate_field"] == 1);
  CHECK(pr.count["skipped.no_extension"] == 1);
}

TEST_CASE("count_samples counts key groups from headers") {
  TempDir d("count");
  catlip::test::make_shards(d.path(), 2, 7);
  CHECK(count_samples(d.file("shard-000001.tar")) == 7);
  CHECK(count_samples(d.file("missing.tar")) == -1);
}

TEST_CASE("ShardWriter rolls shards by sample count and by bytes") {
  TempDir d("roll");
  {
    ShardWriter w(d.file("a"), {4, 0});
    for (int i = 0; i < 10; ++i) w.write(std::to_string(i), {{"txt", "x"}});
    w.close();
    CHECK(w.shard_paths().size() == 3);
    CHECK(w.shard_paths()[2] == d.file("a-000002.tar"));
  }
  {
    ShardWriter w(d.file("b"), {0, 10000});
    for (int i = 0; i < 10; ++i) w.write(std::to_string(i), {{"jpg", std::string(3000, 'x')}});
    w.close();
    // A sample takes 512 + 3072 bytes; with the 1024-byte end marker two fit in 10000.
    CHECK(w.shard_paths().size() == 5);
    for (auto& p : w.shard_paths()) CHECK(std::filesystem::file_size(p) <= 10000);
  }
}

TEST_CASE("tars written by GNU tar (gnu and pax formats) read back") {
  if (catlip::test::run_cmd("tar --version").exit_code != 0) {
    catlip::test::skip_test("GNU tar not found (apt-get install tar)");
  }
  TempDir d("gnutar");
  std::string sub = std::string(110, 's');
  std::filesystem::create_directories(d.file("src/" + sub));
  std::string base = std::string(120, 'b');
  catlip::test::write_file(d.file("src/" + sub + "/" + base + ".jpg"), "JPEGDATA");
  catlip::test::write_file(d.file("src/" + sub + "/" + base + ".txt"), "a caption");
  for (std::string fmt : {"gnu", "pax"}) {
    auto r = catlip::test::run_cmd("cd " + d.file("src") + " && tar --format=" + fmt + " -cf ../" + fmt +
                                   ".tar " + sub);
    REQUIRE(r.exit_code == 0);
    Problems pr;
    auto v = read_all(d.file(fmt + ".tar"), pr);
    INFO(fmt);
    REQUIRE(v.size() == 1);
    CHECK(v[0].key == sub + "/" + base);
    CHECK(v[0].bytes("jpg")->data == "JPEGDATA");
    CHECK(*v[0].text("txt") == "a caption");
    CHECK(pr.count["skipped.non_regular_member"] == 1);  // the directory entry
  }
}

TEST_CASE("randomly damaged shards never crash the reader") {
  TempDir d("fuzz");
  catlip::test::make_shards(d.path(), 1, 6, 1500);
  {
    TarWriter w(d.file("long.tar"));
    w.add(std::string(200, 'x') + "/000000000.jpg", "img");
    w.add(std::string(200, 'x') + "/000000000.txt", "cap");
    w.close();
  }
  for (std::string base : {d.file("shard-000000.tar"), d.file("long.tar")}) {
    std::string good = catlip::test::read_file(base);
    Rng rng(42);
    for (int iter = 0; iter < 400; ++iter) {
      std::string bad = good;
      int edits = 1 + static_cast<int>(rng.below(8));
      for (int e = 0; e < edits; ++e) {
        size_t at = rng.below(bad.size());
        switch (rng.below(3)) {
          case 0: bad[at] = static_cast<char>(rng.below(256)); break;
          case 1: bad.resize(at); break;
          default:  // corrupt a header field and fix the checksum, so it is parsed
            size_t h = at / 512 * 512;
            if (h + 512 <= bad.size()) {
              bad[h + 124 + rng.below(12)] = static_cast<char>(rng.below(256));
              bad[h + 156] = "0125Lxg7"[rng.below(8)];
              std::memset(&bad[h + 148], ' ', 8);
              unsigned sum = 0;
              for (size_t i = 0; i < 512; ++i) sum += static_cast<unsigned char>(bad[h + i]);
              char ck[8];
              std::snprintf(ck, sizeof ck, "%06o", sum);
              std::memcpy(&bad[h + 148], ck, 7);
            }
        }
        if (bad.empty()) break;
      }
      Problems pr;
      ReadOptions o;
      o.max_member_bytes = 1 << 20;
      SampleReader r(memory_stream(bad), "fuzz.tar", 0, o, pr.fn());
      Sample s;
      int n = 0;
      int unnamed = 0, empty = 0;
      REQUIRE_NOTHROW([&] {
        while (r.next(s)) {
          ++n;
          if (s.key.empty()) unnamed++;
          if (s.fields.empty()) empty++;
        }
      }());
      // Whatever comes out is a sample with a key and fields; every problem
      // is reported with a message.
      CHECK(n <= 6);
      CHECK(unnamed == 0);
      CHECK(empty == 0);
      for (auto& m : pr.messages) CHECK(!m.empty());
    }
  }
}

namespace {

// The offset of the header block of member `name` in `tar`.
size_t header_of(const std::string& tar, const std::string& name) {
  size_t at = tar.find(name + std::string(1, '\0'));
  REQUIRE(at != std::string::npos);
  REQUIRE(at % 512 == 0);
  return at;
}

}  // namespace

TEST_CASE("a header truncated at the end of the stream keeps every complete sample before it") {
  TempDir d("trunchdr");
  catlip::test::make_shards(d.path(), 1, 4, 1000);
  std::string bytes = catlip::test::read_file(d.file("shard-000000.tar"));
  ReadOptions o;
  o.require = {"jpg|png|webp", "txt"};
  // Cut 300 bytes into the header of the last sample's txt: samples 0..2 are
  // whole, sample 3 lacks its caption (counted as such, not as damage).
  for (size_t into : {size_t{1}, size_t{300}, size_t{511}}) {
    catlip::test::write_file(d.file("cut.tar"), bytes.substr(0, header_of(bytes, "000000003.txt") + into));
    Problems pr;
    auto v = read_all(d.file("cut.tar"), pr, o);
    INFO("cut " << into << " bytes into the header");
    CHECK(catlip::test::keys_of(v) == std::vector<std::string>{"000000000", "000000001", "000000002"});
    CHECK(pr.count["error.truncated_shard"] == 1);
    CHECK(pr.count["skipped.missing_txt"] == 1);
    CHECK(pr.count.count("skipped.incomplete_sample") == 0);
  }
  // Cut in the header of the next sample's first member: sample 3 is whole too.
  std::string noend = bytes.substr(0, bytes.size() - 1024);
  catlip::test::write_file(d.file("cut2.tar"), noend + std::string(200, 'g'));
  Problems pr2;
  CHECK(read_all(d.file("cut2.tar"), pr2, o).size() == 4);
  CHECK(pr2.count["error.truncated_shard"] == 1);
  CHECK(pr2.count.size() == 1);
  // Cut inside member data: that sample is incomplete and dropped.
  catlip::test::write_file(d.file("cut3.tar"), bytes.substr(0, header_of(bytes, "000000003.jpg") + 512 + 10));
  Problems pr3;
  CHECK(read_all(d.file("cut3.tar"), pr3, o).size() == 3);
  CHECK(pr3.count["skipped.incomplete_sample"] == 1);
}

TEST_CASE("a bad header checksum mid-shard keeps the samples before and resyncs to the ones after") {
  TempDir d("resync");
  catlip::test::make_shards(d.path(), 1, 6, 1500);
  std::string bytes = catlip::test::read_file(d.file("shard-000000.tar"));
  ReadOptions o;
  o.require = {"jpg|png|webp", "txt"};
  SECTION("one damaged header") {
    std::string bad = bytes;
    bad[header_of(bad, "000000003.jpg") + 3] ^= 0x55;  // checksum no longer matches
    catlip::test::write_file(d.file("bad.tar"), bad);
    Problems pr;
    auto v = read_all(d.file("bad.tar"), pr, o);
    CHECK(catlip::test::keys_of(v) ==
          std::vector<std::string>{"000000000", "000000001", "000000002", "000000004", "000000005"});
    CHECK(v[3].bytes("jpg")->data == catlip::test::payload("000000004", 1500 + 4));
    CHECK(*v[4].text("txt") == "caption 000000005");
    CHECK(v[3].origin.index == 4);  // sample 3's caption still formed a group
    CHECK(pr.count["skipped.corrupt_header"] == 1);
    CHECK(pr.count["skipped.missing_jpg_png_webp"] == 1);  // 000000003 kept only its txt
    CHECK(pr.count.count("error.corrupt_shard") == 0);
    CHECK(pr.count.count("skipped.incomplete_sample") == 0);
    bool named = false;
    for (auto& m : pr.messages) named |= m.find("bad.tar") != std::string::npos && m.find("skipped") != std::string::npos;
    CHECK(named);
    // count_samples resyncs the same way.
    CHECK(count_samples(d.file("bad.tar")) == 6);
  }
  SECTION("a garbage block where a header should be") {
    // A whole sample (header + data) overwritten with junk: the reader steps
    // over it block by block.
    size_t h1 = header_of(bytes, "000000002.jpg"), h2 = header_of(bytes, "000000003.jpg");
    std::string bad = bytes;
    for (size_t i = h1; i < h2; ++i) bad[i] = static_cast<char>('a' + i % 23);
    Problems pr;
    SampleReader r(memory_stream(bad), "junk.tar", 0, o, pr.fn());
    std::vector<std::string> keys;
    Sample s;
    while (r.next(s)) keys.push_back(s.key);
    CHECK(keys == std::vector<std::string>{"000000000", "000000001", "000000003", "000000004", "000000005"});
    CHECK(pr.count["skipped.corrupt_header"] == 1);
    CHECK_FALSE(r.failed());
  }
  SECTION("no valid header after the damage") {
    std::string bad = bytes;
    bad[header_of(bad, "000000005.txt") + 3] ^= 0x55;
    Problems pr;
    SampleReader r(memory_stream(bad), "tail.tar", 0, o, pr.fn());
    std::vector<std::string> keys;
    Sample s;
    while (r.next(s)) keys.push_back(s.key);
    CHECK(keys == std::vector<std::string>{"000000000", "000000001", "000000002", "000000003", "000000004"});
    CHECK(r.failed());
    CHECK(pr.count["error.corrupt_shard"] == 1);
    CHECK(pr.count["skipped.missing_txt"] == 1);
    CHECK(pr.count.count("skipped.corrupt_header") == 0);
  }
}

TEST_CASE("unsafe member names are skipped and counted, grouping stays intact") {
  CHECK(safe_member_name("a/b/000001.jpg"));
  CHECK(safe_member_name("./000001.jpg"));
  CHECK(safe_member_name("a..b/x..y.jpg"));
  CHECK_FALSE(safe_member_name(""));
  CHECK_FALSE(safe_member_name("../../etc/passwd"));
  CHECK_FALSE(safe_member_name("/abs_path_sample.jpg"));
  CHECK_FALSE(safe_member_name("a/../../b.txt"));
  CHECK_FALSE(safe_member_name("a/.."));
  CHECK_FALSE(safe_member_name("..\\x.jpg"));
  CHECK_FALSE(safe_member_name("C:/x.jpg"));
  CHECK_FALSE(safe_member_name(std::string("x\0y.jpg", 7)));

  TempDir d("unsafe");
  std::string tar;
  auto add = [&](const std::string& name, const std::string& data) {
    tar += TarWriter::header_block(name, data.size(), '0');
    tar += pad512(data);
  };
  auto add_pax_path = [&](const std::string& name, const std::string& data) {
    std::string body = " path=" + name + "\n";
    size_t len = body.size() + 1;
    while (std::to_string(len).size() + body.size() != len) ++len;
    std::string rec = std::to_string(len) + body;
    tar += TarWriter::header_block("PaxHeaders/x", rec.size(), 'x');
    tar += pad512(rec);
    add("placeholder.jpg", data);
  };
  add("000000000.jpg", "img0");
  add("000000000.txt", "cap0");
  add("../../etc/passwd", "root:x:0:0");
  add("/abs_path_sample.jpg", "abs");
  add("000000001.jpg", "img1");
  add("../000000001.txt", "evil");  // between two members of one sample
  add("000000001.txt", "cap1");
  add_pax_path(std::string("000000002.jpg\0x", 15), "nul");
  add_pax_path("a/../../000000002.jpg", "dotdot");
  add("000000002.jpg", "img2");
  add("000000002.txt", "cap2");
  tar += std::string(1024, '\0');
  catlip::test::write_file(d.file("u.tar"), tar);
  Problems pr;
  auto v = read_all(d.file("u.tar"), pr);
  REQUIRE(catlip::test::keys_of(v) == std::vector<std::string>{"000000000", "000000001", "000000002"});
  CHECK(v[1].fields.size() == 2);
  CHECK(*v[1].text("txt") == "cap1");
  CHECK(v[2].bytes("jpg")->data == "img2");
  CHECK(v[2].origin.index == 2);
  CHECK(pr.count["skipped.unsafe_name"] == 5);
  CHECK(pr.count.size() == 1);
  for (auto& m : pr.messages) CHECK(m.find("u.tar") != std::string::npos);
  CHECK(count_samples(d.file("u.tar")) == 3);

  // The writers refuse such names.
  TarWriter w(d.file("w.tar"));
  CHECK_THROWS_AS(w.add("../x.jpg", "a"), std::invalid_argument);
  CHECK_THROWS_AS(w.add("/x.jpg", "a"), std::invalid_argument);
  CHECK_THROWS_AS(w.add(std::string("x\0.jpg", 6), "a"), std::invalid_argument);
  w.close();
  ShardWriter sw(d.file("sw"), ShardWriterOptions{10, 0});
  CHECK_THROWS_AS(sw.write("../../k", {{"jpg", "a"}}), std::invalid_argument);
  sw.close();
}
