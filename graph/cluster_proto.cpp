// The coordinator <-> node wire format and what nodes must agree on.
#include <msgpack.hpp>

#include <algorithm>
#include <set>

#include "catlip/cluster.h"
#include "catlip/plugin_loader.h"

#ifndef CATLIP_VERSION
#define CATLIP_VERSION "unknown"
#endif

namespace catlip {

std::string encode_ctl(const CtlMsg& m) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, m);
  return std::string(buf.data(), buf.size());
}

bool decode_ctl(const void* data, size_t size, CtlMsg& out) {
  try {
    // A graph and an endpoint table fit easily; anything bigger is refused.
    msgpack::unpack_limit limit(0, 256, 64 << 20, 0, 0, 2);
    auto oh = msgpack::unpack(static_cast<const char*>(data), size, nullptr, nullptr, limit);
    out = oh.get().as<CtlMsg>();
    return out.count("kind") > 0;
  } catch (const std::exception&) {
    return false;
  }
}

std::string catlip_version() {
  return std::string(CATLIP_VERSION) + " (plugin ABI " + std::to_string(CATLIP_PLUGIN_ABI_VERSION) + ")";
}

std::string plugin_set(const GraphSpec& g) {
  std::set<std::string> names;
  for (auto& s : g.stages) names.insert(PluginLoader::plugin_of(s.type));
  PluginLoader loader;
  std::string out;
  for (auto& n : names) {
    const LoadedPlugin& p = loader.load(n);
    out += n + " " + p.version + "\n";
  }
  return out;
}

std::string ctl_field(const CtlMsg& m, const char* k) {
  auto it = m.find(k);
  return it == m.end() ? std::string() : it->second;
}

}  // namespace catlip
