// A plugin claiming an ABI this catlip does not have: the loader must refuse it.
#include "catlip/plugin.h"

static const catlip::StageType* const* no_types(size_t* n) {
  *n = 0;
  return nullptr;
}

extern "C" __attribute__((visibility("default"))) const catlip_plugin_descriptor_t* catlip_plugin_descriptor() {
  static const catlip_plugin_descriptor_t d = {CATLIP_PLUGIN_ABI_VERSION + 998, "badabi", "9.9", "wrong ABI",
                                               __VERSION__, &no_types};
  return &d;
}
