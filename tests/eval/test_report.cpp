// `catlip report` on a small fabricated run directory: the file exists, is
// self-contained and holds every section; and, when Debian's chromium is
// installed, headless screenshots of it at 1280 and 390 px are non-trivial
// images and no chart has a legend, label or line over another or is wider
// than the window.
#include <catch2/catch.hpp>

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>

#include "catlip/eval/png_io.h"
#include "catlip/eval/report.h"
#include "catlip/eval/svg_plot.h"
#include "report_layout_check.h"
#include "test_util.h"

using namespace catlip::test;
namespace fs = std::filesystem;

namespace {

// A run directory laid out like the quickstart's (train/, eval/, transfer/),
// with per-step and per-second noise as in a real run.
void fabricate_run(const std::string& dir) {
  fs::create_directories(dir + "/train");
  fs::create_directories(dir + "/eval/eval_samples");
  fs::create_directories(dir + "/transfer");
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::string tm;
  for (int s = 1; s <= 200; ++s) {  // warmup to step 20, then cosine decay
    double lr = s <= 20 ? 1e-3 * s / 20 : 0.5e-3 * (1 + std::cos(3.14159265 * (s - 20) / 180.0));
    char b[256];
    std::snprintf(b, sizeof b,
                  "{\"step\":%d,\"time\":0,\"loss\":%.4f,\"lr\":%.6f,\"grad_norm\":1,\"step_s\":0.5,\"window_s\":0.6,"
                  "\"images_per_s\":%.1f,\"input_wait_frac\":%.3f,\"input_wait_frac_total\":%.3f}\n",
                  s, 0.7 / (1 + s / 20.0) + 0.05 + 0.02 * noise(rng), lr, 220.0 + 25 * noise(rng),
                  std::clamp(0.05 + 0.03 * noise(rng), 0.0, 1.0), 0.04 + 0.01 * std::exp(-s / 50.0));
    tm += b;
  }
  write_file(dir + "/train/train_metrics.jsonl", tm);
  std::string rm;
  for (int t = 1; t <= 90; ++t) {  // the trainer near 100 % busy, the loaders waiting for it
    char b[640];
    std::snprintf(b, sizeof b,
                  "{\"t\":%d,\"stages\":{\"read\":{\"replicas\":1,\"out_rate\":%.1f,\"in_rate\":0,\"busy_pct\":%.1f,"
                  "\"wait_in_pct\":0},\"decode\":{\"replicas\":2,\"out_rate\":%.1f,\"in_rate\":%.1f,\"busy_pct\":%.1f,"
                  "\"wait_in_pct\":%.1f},\"augment\":{\"replicas\":2,\"out_rate\":%.1f,\"in_rate\":%.1f,\"busy_pct\":%.1f,"
                  "\"wait_in_pct\":%.1f},\"train\":{\"replicas\":1,\"out_rate\":0,\"in_rate\":%.1f,\"busy_pct\":%.1f,"
                  "\"wait_in_pct\":%.1f}}}\n",
                  t, 900 + 60 * noise(rng), 10 + 2 * noise(rng), 880 + 80 * noise(rng), 880 + 80 * noise(rng),
                  35 + 5 * noise(rng), 60 + 5 * noise(rng), 875 + 90 * noise(rng), 875 + 90 * noise(rng),
                  50 + 5 * noise(rng), 45 + 5 * noise(rng), 870 + 100 * noise(rng),
                  std::clamp(95 + 2 * noise(rng), 0.0, 100.0), std::clamp(4 + 2 * noise(rng), 0.0, 100.0));
    rm += b;
  }
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
  write_file(dir + "/transfer/transfer_coverage.txt",
             "/src/catlip/configs/data/imagenet_wnids.txt: 1000 classes -> 120 exact, 10 via hyponyms, 8 via "
             "hypernyms, 862 unmapped (coverage 0.138)\n");
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
  CHECK(html.find("Throughput per stage") != std::string::npos);
  CHECK(html.find("mean busy % per stage") != std::string::npos);
  // Every chart scales (viewBox, width 100%) and has a one-line caption.
  CHECK(count(html, "<svg") == count(html, "viewBox="));
  CHECK(count(html, "<svg") == count(html, "style=\"width:100%"));
  CHECK(count(html, "<figcaption>") >= 9);
  // Noisy series are smoothed (a moving average over faint raw points);
  // multi-series charts have a legend.
  CHECK(html.find("moving average") != std::string::npos);
  CHECK(count(html, "class=\"series raw\"") > 100);
  CHECK(count(html, "class=\"legend\"") >= 4);
  // The ImageNet coverage line is explained, not dumped raw.
  CHECK(html.find("ImageNet-1k coverage 0.138") != std::string::npos);
  CHECK(html.find("138 of 1000 classes have a row") != std::string::npos);
  CHECK(html.find("<pre>") == std::string::npos);
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

namespace {
std::string find_chromium() {
  for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (fs::exists(c)) return c;
  catlip::test::skip_test("Chromium is not installed (apt-get install -y --no-install-recommends chromium)");
}

// Runs headless Chromium on `report` shown `width` px wide (in an iframe of
// that width at the window's left edge; the window is cut to `width` too);
// `what` is "--screenshot=FILE" or "--dump-dom" (the DOM after scripts ran).
CmdResult chromium(const TempDir& d, const std::string& report, int width, const std::string& what) {
  std::string profile = d.file("profile-" + std::to_string(width)), html = report + "-frame.html";
  fs::create_directories(profile);
  write_file(html, report_frame_html(fs::path(report).filename().string(), width));
  return run_cmd("timeout 120 " + find_chromium() +
                 " --headless --no-sandbox --disable-gpu --disable-background-networking --hide-scrollbars "
                 "--disable-component-update --disable-sync --no-first-run --virtual-time-budget=5000 "
                 "--user-data-dir=" + profile + " " + what + " --window-size=" + std::to_string(width) +
                 ",2000 file://" + html + (what == "--dump-dom" ? " 2>/dev/null" : " 2>&1"));
}

// The text of <pre id="ID">...</pre> in a dumped DOM ("<missing>" if absent).
std::string pre_text(const std::string& dom, const std::string& id) {
  size_t a = dom.find("<pre id=\"" + id + "\">");
  if (a == std::string::npos) return "<missing>";
  a = dom.find('>', a) + 1;
  return dom.substr(a, dom.find("</pre>", a) - a);
}
}  // namespace

TEST_CASE("headless Chromium renders the report's charts and image grid at 1280 and 390 px") {
  find_chromium();
  TempDir d("eval-chromium");
  fabricate_run(d.path());
  REQUIRE(run_cmd(catlip_bin() + " report " + d.path()).exit_code == 0);
  for (int width : {1280, 390}) {
    INFO("window width " << width);
    std::string shot = d.file("shot-" + std::to_string(width) + ".png");
    auto r = chromium(d, d.file("report.html"), width, "--screenshot=" + shot);
    INFO(r.out);
    REQUIRE(fs::exists(shot));
    CHECK(fs::file_size(shot) > 20000);  // a blank page compresses to a few KB
    int w = 0, h = 0;
    std::vector<uint8_t> px;
    REQUIRE(read_png(shot, w, h, px));
    CHECK(w == width);
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
}

TEST_CASE("headless Chromium: no legend, label or line overlaps another in any chart, at 1280 and 390 px") {
  find_chromium();
  TempDir d("eval-layout");
  fabricate_run(d.path());
  REQUIRE(run_cmd(catlip_bin() + " report " + d.path()).exit_code == 0);
  // A copy of the report with the layout check appended (the report itself has no script).
  std::string html = read_file(d.file("report.html"));
  size_t end = html.rfind("</body>");
  REQUIRE(end != std::string::npos);
  write_file(d.file("check.html"), html.substr(0, end) + "<script>" + kReportLayoutCheckJs + "</script>" + html.substr(end));
  for (int width : {1280, 390}) {
    INFO("window width " << width);
    auto r = chromium(d, d.file("check.html"), width, "--dump-dom");
    std::string checked = pre_text(r.out, "checked"), overlaps = pre_text(r.out, "overlaps");
    if (overlaps.size() > 6000) overlaps = overlaps.substr(0, 6000) + "\n...";
    INFO("measured: " << checked);
    INFO("overlaps:\n" << overlaps);
    REQUIRE(checked != "<missing>");  // the script ran
    CHECK(checked.find("viewport=" + std::to_string(width)) != std::string::npos);
    // Every chart was measured: series, legends (multi-series charts) and labels.
    CHECK(checked.find(" charts=0 ") == std::string::npos);
    CHECK(checked.find(" series=0 ") == std::string::npos);
    CHECK(checked.find(" legends=0 ") == std::string::npos);
    CHECK(overlaps.empty());
  }
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

TEST_CASE("svg_plot: moving average, smoothing window, legend rows below the plot") {
  using namespace catlip::eval;
  auto m = moving_average({1, 2, 3, NAN, 5, 100}, 3);
  CHECK(m[0] == Approx(1.5));   // the window shrinks at the ends
  CHECK(m[1] == Approx(2.0));
  CHECK(m[2] == Approx(2.5));   // NaN neighbours are skipped ...
  CHECK(std::isnan(m[3]));      // ... and stay NaN
  CHECK(m[5] == Approx(52.5));
  CHECK(smoothing_window(5) == 1);
  CHECK(smoothing_window(90) == 7);
  CHECK(smoothing_window(100000) == 31);
  // One series: no legend; three long names on a narrow chart: rows below
  // the plot, and the SVG grows to hold them.
  Series a{"a rather long series name", {0, 1, 2}, {1, 2, 3}, ""}, b = a, c = a;
  ChartOptions o;
  o.width = 300, o.height = 200, o.title = "t";
  std::string one = line_chart({a}, o), three = line_chart({a, b, c}, o);
  CHECK(one.find("class=\"legend\"") == std::string::npos);
  CHECK(one.find("viewBox=\"0 0 300.0 200.0\"") != std::string::npos);
  CHECK(count(three, "class=\"legend\"") == 3);
  CHECK(three.find("viewBox=\"0 0 300.0 252.0\"") != std::string::npos);  // 3 rows of 16 px + 4
  a.smooth = 3;
  std::string s = line_chart({a}, o);
  CHECK(count(s, "class=\"series raw\"") == 3);
  CHECK(count(s, "<polyline class=\"series\"") == 1);
}
