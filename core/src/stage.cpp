#include "catlip/stage.h"

namespace catlip {

const char* stage_kind_name(StageKind k) {
  switch (k) {
    case StageKind::Source: return "source";
    case StageKind::Transform: return "transform";
    case StageKind::Sink: return "sink";
  }
  return "?";
}

const ParamSpec* StageSchema::find(const std::string& name) const {
  for (auto& p : params)
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace catlip
