// The implementation of catlip/shards/pack.h: packing a folder of images + captions
// (+ .json) into tar shards.
#include "catlip/shards/pack.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace catlip::shards {
namespace fs = std::filesystem;

namespace {

bool read_whole(const fs::path& p, uint64_t limit, std::string& out, bool& too_large) {
  too_large = false;
  std::error_code ec;
  auto sz = fs::file_size(p, ec);
  if (ec) return false;
  if (sz > limit) {
    too_large = true;
    return false;
  }
  std::ifstream in(p, std::ios::binary);
  if (!in) return false;
  out.assign(sz, '\0');
  in.read(out.data(), static_cast<std::streamsize>(sz));
  return static_cast<uint64_t>(in.gcount()) == sz;
}

}  // namespace

PackReport pack_directory(const std::string& src_dir, const std::string& out_prefix, const PackOptions& opts) {
  std::error_code ec;
  if (!fs::is_directory(src_dir, ec)) throw std::runtime_error("pack: " + src_dir + " is not a directory");
  std::vector<fs::path> images;
  for (auto it = fs::recursive_directory_iterator(src_dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string ext = it->path().extension().string();
    for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp") images.push_back(it->path());
  }
  if (ec) throw std::runtime_error("pack: cannot list " + src_dir + ": " + ec.message());
  std::sort(images.begin(), images.end());

  PackReport rep;
  auto note = [&](const std::string& m) {
    if (rep.problems.size() < 20) rep.problems.push_back(m);
  };
  ShardWriter w(out_prefix, ShardWriterOptions{opts.samples_per_shard, opts.max_shard_bytes});
  for (auto& img : images) {
    fs::path stem = img;
    stem.replace_extension();
    fs::path txt = stem.string() + ".txt", json = stem.string() + ".json";
    std::string ext = img.extension().string().substr(1);
    for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (ext == "jpeg") ext = "jpg";
    if (!fs::exists(txt, ec)) {
      ++rep.skipped_no_caption;
      note(img.string() + ": no caption file " + txt.filename().string());
      continue;
    }
    std::string image, caption, meta;
    bool big = false;
    if (!read_whole(img, opts.max_file_bytes, image, big)) {
      ++(big ? rep.skipped_too_large : rep.skipped_unreadable);
      note(img.string() + (big ? ": larger than the file size limit" : ": cannot be read"));
      continue;
    }
    if (!read_whole(txt, 1 << 20, caption, big)) {
      ++rep.skipped_unreadable;
      note(txt.string() + ": cannot be read");
      continue;
    }
    while (!caption.empty() && (caption.back() == '\n' || caption.back() == '\r')) caption.pop_back();
    std::vector<std::pair<std::string, std::string>> fields{{ext, std::move(image)}, {"txt", std::move(caption)}};
    if (fs::exists(json, ec) && read_whole(json, 1 << 20, meta, big)) fields.emplace_back("json", std::move(meta));
    char key[32];
    std::snprintf(key, sizeof key, "%09llu", static_cast<unsigned long long>(rep.samples));
    w.write(key, fields);
    ++rep.samples;
  }
  w.close();
  rep.shards = w.shard_paths();
  return rep;
}

}  // namespace catlip::shards
