// A plugin compiled with -D_GLIBCXX_USE_CXX11_ABI=0 (the pre-C++11 std::string)
// against catlip's headers: its stage calls Params::get_string, whose old-ABI
// mangled name libcatlip_core does not define. dlopen() would fail with an
// "undefined symbol" (or, lazily bound, crash); the loader must refuse it
// from its ABI tag before loading it.
#include "catlip/plugin.h"

namespace {
class OldAbiMap : public catlip::Stage {
 public:
  static catlip::StageSchema schema() {
    catlip::StageSchema s;
    s.type = "oldabi.map";
    s.doc = "A stage in a plugin built with another std::string ABI.";
    s.params = {catlip::Param("field", catlip::ParamType::String).def(std::string("txt")).describe("A field")};
    return s;
  }
  void configure() override { field_ = params().get_string("field"); }
  void process(catlip::Sample&& s, catlip::Emitter& out) override { out.emit(std::move(s)); }

 private:
  std::string field_;
};
}  // namespace

CATLIP_PLUGIN("oldabi", "0.1.0", "Built with _GLIBCXX_USE_CXX11_ABI=0: must be refused");
CATLIP_REGISTER_STAGE(OldAbiMap);
