// Fuzzes what catlip reads back from files that may be damaged or hostile
// (stages/train, core/json): safetensors parsing (checkpoints, exports),
// data positions (checkpoint metadata) and catlip/json.h's parser with its
// nesting cap.
//
// Input: byte 0 selects the reader, the rest is its input.
//   0: safetensors_parse   1: DataPosition::parse   2: json::parse (cap 64)
//
// Properties: no crash or out-of-bounds read (ASan); a file that parses has
// every tensor's bytes matching dtype x shape and survives a rewrite (its
// header from the parsed tensors parses back to the same tensors); a data
// position that parses survives to_json() -> parse(); JSON that parses
// dumps (compact, and laid out) to text that parses back to the same value.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "catlip/model/safetensors.h"
#include "catlip/train/data_position.h"
#include "fuzz_common.h"

using namespace catlip;
using namespace catlip::model;
using namespace catlip::train;

static void safetensors(const std::string& in) {
  SafeTensorsFile f;
  try {
    f = safetensors_parse(in, "fuzz");
  } catch (const std::exception&) {
    return;
  }
  std::vector<TensorView> views;
  std::string data;
  for (auto& [name, t] : f.tensors) {
    int64_t numel = 1;
    for (auto d : t.shape) numel *= d;
    FUZZ_CHECK(t.data.size() == uint64_t(numel) * dtype_size(t.dtype), "tensor '%s': %zu bytes", name.c_str(),
               t.data.size());
    views.push_back({name, t.dtype, t.shape, t.data.data(), t.data.size()});
    data += t.data;
  }
  std::string header = safetensors_header(f.metadata, views);
  std::string again(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) again[size_t(i)] = char(n >> (8 * i));
  again += header + data;
  SafeTensorsFile g = safetensors_parse(again, "rewrite");
  FUZZ_CHECK(g.metadata == f.metadata, "metadata changed in a rewrite");
  FUZZ_CHECK(g.tensors.size() == f.tensors.size(), "tensor count changed in a rewrite");
  for (auto& [name, t] : f.tensors) {
    auto it = g.tensors.find(name);
    FUZZ_CHECK(it != g.tensors.end() && it->second.dtype == t.dtype && it->second.shape == t.shape &&
                   it->second.data == t.data,
               "tensor '%s' changed in a rewrite", name.c_str());
  }
}

// The parser's own bounds (10^6 epochs per entry, 2^24 indices per run of
// exceptions) let a 60-byte input ask for a set of millions of indices: over
// the fuzzer's 2 GB. Such inputs are skipped here; the checks themselves are
// unit-tested (tests/train/test_data_position.cpp).
static bool expands_too_much(const std::string& in) {
  json::Value v;
  try {
    v = json::parse(in, "");
  } catch (const std::exception&) {
    return false;
  }
  // Work ~ sum over epoch entries of (epochs x (1 + indices in runs)).
  double total = 0;
  auto span = [](const json::Value& a, const json::Value& b) {
    return a.is_number() && b.is_number() ? std::max(0.0, b.get<double>() - a.get<double>()) + 1 : 0.0;
  };
  if (!v.is_object()) return false;
  for (auto& [k, e] : v.items()) {
    if (e.is_array() && e.size() == 3 && e[0].is_number()) total += std::max(0.0, e[0].get<double>());  // version 1
    if (k != "urls" || !e.is_array()) continue;
    for (auto& u : e)
      if (u.is_array() && u.size() == 3 && u[2].is_array())
        for (auto& g : u[2])
          if (g.is_array() && g.size() == 4) {
            double indices = 1;
            if (g[3].is_array())
              for (auto& r : g[3])
                if (r.is_array() && r.size() == 2) indices += span(r[0], r[1]);
            total += span(g[0], g[1]) * indices;
          }
  }
  return total > 100000;
}

static void data_position(const std::string& in) {
  if (expands_too_much(in)) return;
  DataPosition p;
  try {
    p = DataPosition::parse(in);
  } catch (const std::exception&) {
    return;
  }
  std::string js = p.to_json();
  FUZZ_CHECK(DataPosition::parse(js) == p, "to_json/parse round trip differs: %s", js.c_str());
}

static void json_text(const std::string& in) {
  json::Value v;
  try {
    v = json::parse(in, "fuzz", 64);
  } catch (const std::exception&) {
    return;
  }
  for (int expand : {-1, 0, 2}) {
    std::string text = json::dump(v, expand);
    json::Value w = json::parse(text, "dump");
    // Invalid UTF-8 cannot come out of the parser, so strings survive;
    // NaN cannot be parsed, so numbers compare equal.
    FUZZ_CHECK(w == v, "dump(%d) does not parse back to the same value: %s", expand, text.c_str());
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: safetensors(in); break;
    case 1: data_position(in); break;
    default: json_text(in); break;
  }
  return 0;
}
