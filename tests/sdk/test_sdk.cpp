// Tests of the plugin SDK: ABI checks, the ARCHITECTURE.md example compiled as shown,
// the installed SDK with examples/plugin built against it.
#include <catch2/catch.hpp>

#include "catlip/local.h"
#include "catlip/plugin_loader.h"
#include "catlip/replica_spec.h"
#include "test_util.h"

using namespace catlip;

namespace {
const std::string kOldAbiPlugin = std::string(CATLIP_OLD_ABI_PLUGIN_DIR) + "/catlip_oldabi.so";
}

TEST_CASE("abi: a plugin built with _GLIBCXX_USE_CXX11_ABI=0 is refused before it is loaded") {
  PluginLoader loader({CATLIP_OLD_ABI_PLUGIN_DIR});
  try {
    loader.load("oldabi");
    FAIL("loaded a plugin built with another libstdc++ ABI");
  } catch (const PluginError& e) {
    std::string m = e.what();
    INFO(m);
    CHECK_THAT(m, Catch::Contains("plugin " + kOldAbiPlugin + " was built for another C++ standard library ABI"));
    CHECK_THAT(m, Catch::Contains("it has plugin ABI " + std::to_string(CATLIP_PLUGIN_ABI_VERSION) +
                                  ", libstdc++ with _GLIBCXX_USE_CXX11_ABI=0"));
    CHECK_THAT(m, Catch::Contains("but this catlip has plugin ABI " + std::to_string(CATLIP_PLUGIN_ABI_VERSION) +
                                  ", libstdc++ with _GLIBCXX_USE_CXX11_ABI=1"));
    CHECK_THAT(m, !Catch::Contains("undefined symbol"));  // refused from its tag, not by dlopen()
  }
}

TEST_CASE("abi: catlip inspect exits 4 naming the plugin and both ABIs, and lists the other plugins") {
  auto r = test::run_cmd("CATLIP_PLUGIN_PATH=" + std::string(CATLIP_OLD_ABI_PLUGIN_DIR) + " " + test::catlip_bin() +
                         " inspect");
  INFO(r.out);
  CHECK(r.exit_code == 4);
  CHECK_THAT(r.out, Catch::Contains("catlip inspect: plugin " + kOldAbiPlugin) &&
                        Catch::Contains("_GLIBCXX_USE_CXX11_ABI=0") && Catch::Contains("_GLIBCXX_USE_CXX11_ABI=1"));
  CHECK_THAT(r.out, Catch::Contains("testing.counter"));
}

TEST_CASE("plugin path: catlip inspect lists plugins found through CATLIP_PLUGIN_PATH") {
  auto r = test::run_cmd("CATLIP_PLUGIN_PATH=" + std::string(CATLIP_DOC_PLUGIN_DIR) + " " + test::catlip_bin() +
                         " inspect");
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("Plugin directories: " + std::string(CATLIP_DOC_PLUGIN_DIR) + " "));
  CHECK_THAT(r.out, Catch::Contains("mytext 0.1.0  My text stages") && Catch::Contains("mytext.upper"));
  r = test::run_cmd("CATLIP_PLUGIN_PATH=" + std::string(CATLIP_DOC_PLUGIN_DIR) + " " + test::catlip_bin() +
                    " inspect mytext.upper");
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("field (string, default \"txt\")"));
}

TEST_CASE("docs: the ARCHITECTURE.md 'Adding a stage' example compiles as shown, loads and runs") {
  PluginLoader loader({CATLIP_DOC_PLUGIN_DIR});
  const StageType* t = loader.find_type("mytext.upper");
  REQUIRE(t != nullptr);
  CHECK(t->schema.kind == StageKind::Transform);
  auto stage = t->create();
  LocalContext ctx("upper", "mytext.upper");
  configure_stage(*stage, t->schema, {}, ctx);
  std::vector<Sample> in(2);
  in[0].key = "a";
  in[0].set_text("txt", "a cat, 2 dogs");
  in[1].key = "no text";
  CollectEmitter out;
  run_transform(*stage, std::move(in), out);
  REQUIRE(out.samples.size() == 1);
  CHECK(*out.samples[0].text("txt") == "A CAT, 2 DOGS");
  CHECK(ctx.counter("skipped.no_text") == 1);
}

TEST_CASE("abi: catlip-worker exits 4 on a plugin of another libstdc++ ABI, before running any of it") {
  test::TempDir dir("oldabi");
  // The replica spec a launcher would write for stage a (oldabi.map).
  ReplicaSpec spec;
  spec.plan.graph_name = "g";
  spec.plan.stage_name = "a";
  spec.plan.stage_type = "oldabi.map";
  spec.plan.run_dir = dir.path();
  auto file = write_replica_spec(dir.path(), spec);
  REQUIRE(file.ok());
  std::string worker = std::string(CATLIP_BIN_DIR) + "/catlip-worker";
  auto r = test::run_cmd("CATLIP_PLUGIN_PATH=" + std::string(CATLIP_OLD_ABI_PLUGIN_DIR) + " " + worker + " --spec " +
                         *file + " --run-dir " + dir.path());
  INFO(r.out);
  CHECK(r.exit_code == 4);
  CHECK_THAT(r.out, Catch::Contains("error: plugin " + kOldAbiPlugin) && Catch::Contains("_GLIBCXX_USE_CXX11_ABI=0"));
  CHECK_THAT(r.out, !Catch::Contains("undefined symbol"));
}
