// The Stage base class and StageSchema: the context and parameters the runtime attaches, bind_and_configure().
#include "catlip/stage.h"

#include <stdexcept>

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

namespace catlip {

StageContext& Stage::ctx() const {
  if (!ctx_) throw std::logic_error("Stage::ctx() called before configure(): the runtime attaches the context then");
  return *ctx_;
}

void bind_and_configure(Stage& stage, const StageSchema& schema, const Params& params, StageContext& ctx) {
  bind_params(schema, params, stage);
  stage.ctx_ = &ctx;
  stage.params_ = params;
  stage.configure();
}

}  // namespace catlip
