// `catlip report` on a small fabricated run directory: the file exists, is
// self-contained and holds every section; and, when Debian's chromium is
// installed, a headless screenshot of it is a non-trivial image.
#include <catch2/catch.hpp>

#include <png.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "catlip/eval/png_io.h"
#include "catlip/eval/report.h"
#include "test_util.h"

using namespace catlip::test;
namespace fs = std::filesystem;

namespace {

// A run directory laid out like the quickstart's (train/, eval/, transfer/).
void fabricate_run(const std::string& dir) {
  fs::create_directories(dir + "/train");
  fs::create_directories(dir + "/eval/eval_samples");
  fs::create_directories(dir + "/transfer");
  std::string tm;
  for (int s = 1; s <= 40; ++s) {
    char b[256];
    std::snprintf(b, sizeof b,
                  "{\"step\":%d,\"time\":0,\"loss\":%.4f,\"lr\":%.6f,\"grad_norm\":1,\"step_s\":0.5,\"window_s\":0.6,"
                  "\"images_per_s\":%.1f,\"input_wait_frac\":0.05,\"input_wait_frac_total\":0.04}\n",
                  s, 0.7 / s + 0.05, 1e-3 * std::min(1.0, s / 10.0), 200.0 + s);
    tm += b;
  }
  write_file(dir + "/train/train_metrics.jsonl", tm);
  std::string rm;
  for (int t = 1; t <= 10; ++t)
    rm += "{\"t\":" + std::to_string(t) +
          ",\"stages\":{\"read\":{\"replicas\":1,\"out_rate\":900,\"in_rate\":0,\"busy_pct\":10,\"wait_in_pct\":0},"
          "\"decode\":{\"replicas\":2,\"out_rate\":880,\"in_rate\":880,\"busy_pct\":35,\"wait_in_pct\":60},"
          "\"train\":{\"replicas\":1,\"out_rate\":0,\"in_rate\":870,\"busy_pct\":95,\"wait_in_pct\":4}}}\n";
  rm += "{\"t\": broken line\n";  // a run killed mid-write: skipped
  write_file(dir + "/train/metrics.jsonl", rm);
  write_file(dir + "/eval/eval.json",
             "{\"checkpoint\": \"x/export/model.safetensors\", \"step\": 40, \"model\": \"dim=192\", \"samples\": 4,"
             " \"threshold\": 0.5, \"ground_truth\": {\"samples\": 4, \"classes_scored\": 3, \"mAP\": 0.8771,"
             " \"f1_micro\": 0.8, \"f1_macro\": 0.7, \"precision_at\": {\"1\": 0.9, \"5\": 0.3}, \"prior_mAP\": 0.1234},"
             " \"captions\": {\"samples\": 4, \"classes_scored\": 5, \"mAP\": 0.6543, \"precision_at\": {\"1\": 0.8}}}\n");
  write_file(dir + "/eval/eval_per_synset.tsv",
             "index\twnid\tlemma\ttrain_count\tgt_positives\tgt_ap\tcaption_positives\tcaption_ap\n"
             "0\tn02778669\tball\t100\t3\t0.95\t3\t0.9\n"
             "1\tn03147509\tcup\t90\t2\t0.55\t2\t0.5\n"
             "2\tn04256520\tsofa\t80\t0\tnull\t1\t0.2\n"
             "3\tn02876657\tbottle\t70\t1\t0.31\t1\t0.3\n");
  std::vector<uint8_t> px(16 * 16 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i * 7);
  catlip::eval::write_file_bytes(dir + "/eval/eval_samples/000.png", catlip::eval::encode_png_rgb(px.data(), 16, 16));
  write_file(dir + "/eval/eval_samples.json",
             "[{\"key\": \"000000001\", \"png\": \"eval_samples/000.png\", \"caption\": \"a red ball & a <cup>\","
             " \"caption_synsets\": [\"ball\", \"cup\"], \"ground_truth\": [\"ball\"],"
             " \"top\": [{\"lemma\": \"ball\", \"wnid\": \"n02778669\", \"p\": 0.97}, {\"lemma\": \"box\", \"p\": 0.1}]},"
             " {\"key\": \"missing\", \"png\": \"eval_samples/nope.png\", \"caption\": \"x\"}]\n");
  write_file(dir + "/transfer/transfer.json",
             "{\"classes_file\": \"classes.txt\", \"classes\": 39, \"mapping\": {\"exact\": 39, \"hyponym\": 0,"
             " \"hypernym\": 0, \"unmapped\": 0, \"coverage\": 1}, \"train_samples\": 100, \"test_samples\": 50,"
             " \"chance\": 0.0256, \"majority\": 0.05, \"zero_shot\": 0.61, \"linear_probe\": 0.7,"
             " \"finetune\": {\"steps\": 10, \"heads\": {\"synsets\": {\"final_accuracy\": 0.72, \"curve\":"
             " [{\"step\": 0, \"accuracy\": 0.55}, {\"step\": 10, \"accuracy\": 0.72}]}, \"random\": {\"final_accuracy\":"
             " 0.2, \"curve\": [{\"step\": 0, \"accuracy\": 0.02}, {\"step\": 10, \"accuracy\": 0.2}]}}}}\n");
}

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("catlip report writes one self-contained HTML file with every section") {
  TempDir d("eval-report");
  fabricate_run(d.path());
  auto r = run_cmd(catlip_bin() + " report " + d.path());
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.find("report.html") != std::string::npos);
  std::string html = read_file(d.file("report.html"));
  for (const char* section : {"Held-out evaluation", "AP per synset", "Training", "Pipeline", "Transfer Init",
                              "Held-out images"})
    CHECK(html.find(section) != std::string::npos);
  // Headline numbers, tables and curves.
  CHECK(html.find("0.877") != std::string::npos);  // mAP vs ground truth
  CHECK(html.find("0.123") != std::string::npos);  // prior
  CHECK(html.find("0.610") != std::string::npos);  // zero-shot
  CHECK(html.find("init_head = synsets") != std::string::npos);
  CHECK(html.find("init_head = random") != std::string::npos);
  CHECK(count(html, "<svg") >= 8);
  CHECK(count(html, "<polyline") >= 8);
  CHECK(html.find("throughput per stage") != std::string::npos);
  CHECK(html.find(">decode<") != std::string::npos);
  CHECK(html.find("learning rate") != std::string::npos);
  // The image is embedded, captions are escaped, a missing PNG is left out.
  CHECK(count(html, "data:image/png;base64,iVBORw0KGgo") == 1);
  CHECK(html.find("&lt;cup&gt;") != std::string::npos);
  CHECK(html.find("<cup>") == std::string::npos);
  CHECK(html.find("class=\"hit\">ball") != std::string::npos);
  // Self-contained: nothing is fetched from elsewhere.
  CHECK(html.find("src=\"http") == std::string::npos);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
}

TEST_CASE("catlip report --out, partial run dirs and empty ones") {
  TempDir d("eval-report2");
  fs::create_directories(d.path() + "/only");
  write_file(d.path() + "/only/train_metrics.jsonl", "{\"step\":1,\"loss\":0.5,\"lr\":0.001}\n");
  auto r = run_cmd(catlip_bin() + " report " + d.path() + "/only --out " + d.file("x.html"));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.find("eval.json") != std::string::npos);  // says what was missing
  std::string html = read_file(d.file("x.html"));
  CHECK(html.find("Training") != std::string::npos);
  CHECK(html.find("Transfer Init") == std::string::npos);
  fs::create_directories(d.path() + "/empty");
  auto e = run_cmd(catlip_bin() + " report " + d.path() + "/empty");
  CHECK(e.exit_code == 1);
  CHECK(e.out.find("nothing to report") != std::string::npos);
  auto u = run_cmd(catlip_bin() + " report");
  CHECK(u.exit_code == 2);
}

namespace {
// Decodes a PNG into RGBA8 with libpng's simplified API.
bool read_png(const std::string& path, int& w, int& h, std::vector<uint8_t>& px) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path.c_str())) return false;
  img.format = PNG_FORMAT_RGBA;
  px.resize(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, px.data(), 0, nullptr)) return false;
  w = int(img.width), h = int(img.height);
  return true;
}
}  // namespace

TEST_CASE("headless Chromium renders the report's charts and image grid") {
  std::string chromium;
  for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (fs::exists(c)) chromium = c;
  if (chromium.empty()) {
    catlip::test::skip_test("Chromium is not installed (apt-get install -y --no-install-recommends chromium)");
  }
  TempDir d("eval-chromium");
  fabricate_run(d.path());
  REQUIRE(run_cmd(catlip_bin() + " report " + d.path()).exit_code == 0);
  fs::create_directories(d.file("profile"));
  std::string shot = d.file("shot.png");
  auto r = run_cmd("timeout 120 " + chromium +
                   " --headless --no-sandbox --disable-gpu --disable-background-networking "
                   "--disable-component-update --disable-sync --no-first-run --user-data-dir=" +
                   d.file("profile") + " --screenshot=" + shot + " --window-size=1200,2000 file://" +
                   d.file("report.html"));
  INFO(r.out);
  REQUIRE(fs::exists(shot));
  CHECK(fs::file_size(shot) > 20000);  // a blank page compresses to a few KB
  int w = 0, h = 0;
  std::vector<uint8_t> px;
  REQUIRE(read_png(shot, w, h, px));
  CHECK(w == 1200);
  CHECK(h == 2000);
  // Many distinct colours (chart lines, bars, the embedded image), and plenty
  // of non-white pixels in the top half where the grid and charts are.
  std::set<uint32_t> colours;
  size_t non_white = 0;
  for (int y = 0; y < h / 2; ++y)
    for (int x = 0; x < w; ++x) {
      const uint8_t* p = &px[size_t(y * w + x) * 4];
      colours.insert(uint32_t(p[0]) << 16 | uint32_t(p[1]) << 8 | p[2]);
      if (p[0] < 240 || p[1] < 240 || p[2] < 240) ++non_white;
    }
  CHECK(colours.size() > 200);
  CHECK(non_white > size_t(w) * size_t(h / 2) / 50);
  // The chart colours of the report's palette are present (SVG rendered).
  auto has_colour = [&](uint32_t c) { return colours.count(c) > 0; };
  CHECK((has_colour(0x2ca02c) || has_colour(0xd62728) || has_colour(0x1f77b4)));
}

TEST_CASE("catlip report: an unreadable JSON input fails with its file and position") {
  TempDir d("eval-report3");
  fabricate_run(d.path());
  write_file(d.path() + "/eval/eval.json", "{\"checkpoint\": \"x\",\n \"step\": 40,,\n}\n");
  auto r = run_cmd(catlip_bin() + " report " + d.path() + " 2>&1");
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("catlip report: " + d.path() + "/eval/eval.json: invalid JSON at byte 33 (line 2, column 13)") !=
        std::string::npos);
}
