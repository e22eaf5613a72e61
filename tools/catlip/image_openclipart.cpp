// catlip image openclipart: stage Debian's openclipart PNGs with captions
// made from the matching SVGs' titles and keywords, ready for
// `catlip shards pack` (the real-data check of the image pipeline).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "cli.h"

using namespace catlip::cli;
namespace json = catlip::json;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// XML entities, applied twice because some titles are escaped twice
// ("&amp;quot;"). Control characters become spaces.
std::string unescape(std::string s) {
  for (int pass = 0; pass < 2; ++pass) {
    std::string o;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '&') {
        size_t semi = s.find(';', i);
        if (semi != std::string::npos && semi - i <= 8) {
          std::string e = s.substr(i + 1, semi - i - 1);
          char r = 0;
          if (e == "amp") r = '&';
          else if (e == "lt") r = '<';
          else if (e == "gt") r = '>';
          else if (e == "quot") r = '"';
          else if (e == "apos") r = '\'';
          else if (e.size() > 1 && e[0] == '#') {
            long c = e[1] == 'x' ? std::strtol(e.c_str() + 2, nullptr, 16) : std::strtol(e.c_str() + 1, nullptr, 10);
            r = c >= 0x20 && c < 128 ? static_cast<char>(c) : ' ';  // non-ASCII: a space
          }
          if (r) {
            o.push_back(r);
            i = semi;
            continue;
          }
        }
      }
      o += static_cast<unsigned char>(s[i]) < 0x20 ? ' ' : s[i];
    }
    s = o;
  }
  // Collapse whitespace.
  std::string o;
  for (char c : s)
    if (c != ' ' || (!o.empty() && o.back() != ' ')) o += c;
  while (!o.empty() && o.back() == ' ') o.pop_back();
  return o;
}

// Text of the first <tag>...</tag> after `from`, or "".
std::string element(const std::string& x, const std::string& tag, size_t from = 0, size_t* end = nullptr) {
  size_t a = x.find("<" + tag + ">", from);
  if (a == std::string::npos) return "";
  a += tag.size() + 2;
  size_t b = x.find("</" + tag + ">", a);
  if (b == std::string::npos) return "";
  if (end) *end = b;
  return x.substr(a, b - a);
}

struct Meta {
  std::string title;
  std::vector<std::string> keywords;
};

// The work's title is the first dc:title inside cc:Work (later ones name the
// publisher, creator and rights holder); keywords are dc:subject's rdf:li.
Meta parse_svg(const std::string& svg) {
  Meta m;
  size_t work = svg.find("<cc:Work");
  m.title = unescape(element(svg, "dc:title", work == std::string::npos ? 0 : work));
  std::string subject = element(svg, "dc:subject", work == std::string::npos ? 0 : work);
  for (size_t pos = 0;;) {
    size_t end = 0;
    std::string li = element(subject, "rdf:li", pos, &end);
    if (li.empty() && end == 0) break;
    li = unescape(li);
    if (!li.empty() && std::find(m.keywords.begin(), m.keywords.end(), li) == m.keywords.end())
      m.keywords.push_back(li);
    pos = end + 1;
  }
  return m;
}

int cmd_image_openclipart(int argc, char** argv) {
  Args a(argc, argv, {"help"});
  if (a.has("help")) {
    std::cout << "usage: catlip image openclipart OUT_DIR [--limit N] [--root /usr/share/openclipart]\n\n"
                 "Copies openclipart PNGs (Debian package openclipart-png) into OUT_DIR with a caption\n"
                 "<name>.txt made from the matching SVG's title and keywords (package openclipart-svg)\n"
                 "and <name>.json {title, keywords, category}, ready for:\n"
                 "  catlip shards pack OUT_DIR PREFIX --samples-per-shard K\n\n"
                 "  --limit N   take N images spread evenly over the sorted list (default: all)\n";
    return kOk;
  }
  if (int rc = check_syntax(a, Syntax{"catlip image openclipart", "usage: catlip image openclipart OUT_DIR [--limit N] [--root /usr/share/openclipart]", {"root", "limit"}, 1, 1})) return rc;
  auto bad = a.unknown({"limit", "root"});
  if (!a.error().empty() || !bad.empty() || a.positional().size() != 1) {
    std::cerr << "catlip image openclipart: "
              << (!a.error().empty() ? a.error() : !bad.empty() ? "unknown option " + bad[0] : "expected OUT_DIR")
              << " (see --help)\n";
    return kUsage;
  }
  fs::path root = a.get("root", "/usr/share/openclipart"), out = a.positional()[0];
  long long limit = 0;
  try {
    limit = a.get_int("limit", 0);
  } catch (const std::exception&) {
    std::cerr << "catlip image openclipart: --limit expects a number\n";
    return kUsage;
  }
  std::error_code ec;
  if (!fs::is_directory(root / "png", ec) || !fs::is_directory(root / "svg", ec)) {
    std::cerr << "catlip image openclipart: " << root.string()
              << "/png and /svg not found (apt-get install openclipart-png openclipart-svg)\n";
    return kFailed;
  }
  std::vector<fs::path> pngs;
  for (auto it = fs::recursive_directory_iterator(root / "png", ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    if (it->is_regular_file() && it->path().extension() == ".png") pngs.push_back(it->path());
  std::sort(pngs.begin(), pngs.end());
  std::vector<fs::path> chosen;
  if (limit > 0 && static_cast<size_t>(limit) < pngs.size()) {
    for (long long i = 0; i < limit; ++i) chosen.push_back(pngs[size_t(i * pngs.size() / limit)]);
  } else {
    chosen = pngs;
  }
  fs::create_directories(out, ec);
  if (ec) {
    std::cerr << "catlip image openclipart: cannot create " << out.string() << ": " << ec.message() << "\n";
    return kFailed;
  }
  size_t written = 0, no_svg = 0, no_text = 0;
  for (auto& png : chosen) {
    fs::path rel = fs::relative(png, root / "png");
    fs::path svg = root / "svg" / rel;
    svg.replace_extension(".svg");
    if (!fs::exists(svg, ec)) {
      ++no_svg;
      continue;
    }
    Meta m = parse_svg(slurp(svg));
    if (m.title.empty() && m.keywords.empty()) {
      ++no_text;
      continue;
    }
    std::string caption = m.title;
    if (!m.keywords.empty()) {
      caption += caption.empty() ? "" : ": ";
      for (size_t i = 0; i < m.keywords.size(); ++i) caption += (i ? ", " : "") + m.keywords[i];
    }
    // One flat name per image; dots would split the WebDataset key.
    // The ordinal keeps names unique after flattening.
    char ord[16];
    std::snprintf(ord, sizeof ord, "%06zu_", written + no_svg + no_text);
    std::string name = ord + rel.parent_path().string() + "__" + rel.stem().string();
    std::replace(name.begin(), name.end(), '/', '_');
    std::replace(name.begin(), name.end(), '.', '_');
    fs::copy_file(png, out / (name + ".png"), fs::copy_options::overwrite_existing, ec);
    if (ec) {
      std::cerr << "catlip image openclipart: copying " << png.string() << ": " << ec.message() << "\n";
      return kFailed;
    }
    std::ofstream(out / (name + ".txt")) << caption << "\n";
    json::Ordered meta = {{"title", m.title},
                          {"keywords", m.keywords},
                          {"category", rel.begin()->string()},
                          {"source", "openclipart"}};
    std::ofstream(out / (name + ".json")) << json::dump(meta, 0) << "\n";
    ++written;
  }
  std::cout << "wrote " << written << " images with captions to " << out.string() << " (" << no_svg
            << " without SVG, " << no_text << " without title/keywords)\n";
  return written > 0 ? kOk : kFailed;
}

}  // namespace

CATLIP_COMMAND("image openclipart", "Stage Debian openclipart PNGs with captions from their SVG metadata",
               cmd_image_openclipart);
