// testing.jsonl (jsonl_sink.h): chosen fields of every sample as JSON lines.
#include "jsonl_sink.h"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "catlip/json.h"

namespace catlip::testing {

StageSchema JsonlSink::schema() {
  StageSchema s;
  s.type = "testing.jsonl";
  s.kind = StageKind::Sink;
  s.doc = "Writes chosen fields of every sample as one JSON line each into the run directory: text as a "
          "string, an int list as an array, bytes as their size, a tensor as its dtype and shape (each "
          "payload with its FNV-1a hash, so two runs' payloads can be compared). To see what a stage emits.";
  s.params = {
      Param("file", &JsonlSink::file_).def("samples.jsonl")
          .describe("File in the run directory (replica r > 0 writes <file>.<r>)"),
      Param("fields", &JsonlSink::fields_).def({}).describe("Fields to write; empty = every field"),
      Param("max_items", &JsonlSink::max_items_).def(0).at_least(0)
          .describe("Write at most this many samples (later ones are counted as jsonl.not_written); 0 = all"),
  };
  return s;
}

void JsonlSink::configure() {
  path_ = (std::filesystem::path(ctx().run_dir()) / file_).string();
  if (ctx().replica() > 0) path_ += "." + std::to_string(ctx().replica());
  out_.open(path_, std::ios::trunc);
  if (!out_) throw std::runtime_error("testing.jsonl: cannot write " + path_);
}

namespace {
// FNV-1a (64-bit) of a payload, as 16 hex digits: enough to tell two runs'
// pixels apart in a test, not a cryptographic digest.
std::string fnv1a(std::string_view data) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(h));
  return b;
}

json::Ordered field_json(const Field& f) {
  if (auto* t = std::get_if<std::string>(&f)) return *t;
  if (auto* ints = std::get_if<IntList>(&f)) return *ints;
  if (auto* b = std::get_if<Bytes>(&f)) return json::Ordered{{"bytes", b->data.size()}, {"fnv1a", fnv1a(b->data)}};
  const auto& t = std::get<Tensor>(f);
  return json::Ordered{{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"fnv1a", fnv1a(t.data)}};
}
}  // namespace

void JsonlSink::process(Sample&& s, Emitter&) {
  if (max_items_ > 0 && written_ >= max_items_) {
    ctx().count("jsonl.not_written");
    return;
  }
  json::Ordered line;
  line["key"] = s.key;
  line["origin"] = json::Ordered{{"url", s.origin.url}, {"shard", s.origin.shard}, {"index", s.origin.index},
                                 {"epoch", s.origin.epoch}};
  if (fields_.empty()) {
    for (auto& [name, f] : s.fields) line[name] = field_json(f);
  } else {
    for (auto& name : fields_) {
      auto it = s.fields.find(name);
      line[name] = it == s.fields.end() ? json::Ordered() : field_json(it->second);
    }
  }
  out_ << json::dump(line) << "\n";
  if (!out_) throw std::runtime_error("testing.jsonl: cannot write " + path_);
  ++written_;
  ctx().count("jsonl.written");
}

}  // namespace catlip::testing
