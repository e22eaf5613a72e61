// Cross-check of the resampling against torch/torchvision themselves
// (tensor path, antialias=False), run in /usr/bin/python3.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "catlip/image/decode.h"
#include "image_test_util.h"
#include "test_util.h"

using namespace catlip::image;

TEST_CASE("resampling matches torchvision resized_crop / resize+center_crop within one level") {
  const std::string py = catlip::test::venv_python();
  auto probe = catlip::test::run_cmd(py + " -c 'import torch, torchvision' 2>&1");
  if (probe.exit_code != 0) {
    catlip::test::skip_test(py + " with torch and torchvision not available: " + probe.out);
  }
  const int W = 61, H = 47;
  auto px = catlip::test::pattern_rgb(W, H, 3);
  auto png = catlip::test::encode_png(px, W, H, 3);
  ImageInfo info;
  REQUIRE(read_image_info(png.data(), png.size(), info).ok());
  catlip::test::TempDir dir("torchref");
  catlip::test::write_file(dir.file("src.raw"), std::string(px.begin(), px.end()));

  struct Case {
    const char* name;
    ResampleMap map;
    std::string py;  // torchvision call on `img` (CHW float)
  };
  std::vector<Case> cases = {
      {"down", map_for_crop(CropRect{3, 5, 40, 50}, 23, 17, false), "rc(img, 3, 5, 40, 50, [17, 23])"},
      {"up", map_for_crop(CropRect{10, 7, 9, 12}, 40, 31, false), "rc(img, 10, 7, 9, 12, [31, 40])"},
      {"flip", map_for_crop(CropRect{0, 0, 47, 61}, 30, 30, true), "F.hflip(rc(img, 0, 0, 47, 61, [30, 30]))"},
      {"eval", map_for_eval(W, H, 36, 32), "F.center_crop(rs(img, 36), [32, 32])"},
  };
  std::string script =
      "import numpy as np, torch, torchvision.transforms.functional as F, sys\n"
      "src = np.fromfile(sys.argv[1] + '/src.raw', dtype=np.uint8).reshape(" +
      std::to_string(H) + ", " + std::to_string(W) +
      ", 3)\n"
      "img = torch.from_numpy(src.astype(np.float32)).permute(2, 0, 1)\n"
      "def save(name, t):\n"
      "    t = t.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()\n"
      "    t.numpy().tofile(sys.argv[1] + '/' + name + '.raw')\n"
      "import warnings; warnings.filterwarnings('ignore')\n";
  // antialias=False is torchvision 0.14's default for tensors (later
  // versions warn and then change it, so it is passed explicitly there).
  script +=
      "import inspect\n"
      "AA = {'antialias': False} if 'antialias' in inspect.signature(F.resize).parameters else {}\n"
      "def rc(i, t, l, h, w, s): return F.resized_crop(i, t, l, h, w, s, **AA)\n"
      "def rs(i, s): return F.resize(i, s, **AA)\n";
  for (auto& c : cases) script += std::string("save('") + c.name + "', " + c.py + ")\n";
  catlip::test::write_file(dir.file("ref.py"), script);
  auto r = catlip::test::run_cmd(py + " " + dir.file("ref.py") + " " + dir.path() + " 2>&1");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  for (auto& c : cases) {
    INFO(c.name);
    std::vector<uint8_t> ours;
    REQUIRE(decode_mapped(png.data(), png.size(), info, c.map, false, ours).ok());
    std::string ref = catlip::test::read_file(dir.file(std::string(c.name) + ".raw"));
    REQUIRE(ref.size() == ours.size());
    int maxdiff = 0;
    for (size_t i = 0; i < ours.size(); ++i) maxdiff = std::max(maxdiff, std::abs(int(ours[i]) - int(uint8_t(ref[i]))));
    CHECK(maxdiff <= 1);
  }
}
