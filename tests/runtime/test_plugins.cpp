// Tests of the plugin loader (catlip/plugin_loader.h): search paths, ABI refusal, errors
// naming the plugin.
#include <catch2/catch.hpp>

#include "catlip/plugin_loader.h"
#include "test_util.h"

using namespace catlip;

TEST_CASE("plugins: built-in plugin loads with its stage types") {
  PluginLoader loader;
  const StageType* t = loader.find_type("testing.map");
  REQUIRE(t != nullptr);
  CHECK(t->schema.kind == StageKind::Transform);
  CHECK(t->schema.find("sleep_ms") != nullptr);
  auto st = t->create();
  CHECK(st != nullptr);
  CHECK(loader.find_type("testing.nope") == nullptr);
}

TEST_CASE("plugins: an ABI mismatch is refused with a clear message") {
  PluginLoader loader({CATLIP_BAD_PLUGIN_DIR});
  try {
    loader.load("badabi");
    FAIL("loaded a plugin with the wrong ABI");
  } catch (const PluginError& e) {
    std::string m = e.what();
    CHECK_THAT(m, Catch::Contains("plugin 'badabi'"));
    CHECK_THAT(m, Catch::Contains("ABI " + std::to_string(CATLIP_PLUGIN_ABI_VERSION + 998)));
    CHECK_THAT(m, Catch::Contains("rebuild the plugin"));
  }
}

TEST_CASE("plugins: a .so without the descriptor symbol is refused") {
  PluginLoader loader({CATLIP_BAD_PLUGIN_DIR});
  CHECK_THROWS_WITH(loader.load("nosymbol"), Catch::Contains("does not export the symbol 'catlip_plugin_descriptor'"));
  CHECK_THROWS_WITH(loader.load("absent"), Catch::Contains("no plugin named 'absent'") && Catch::Contains("CATLIP_PLUGIN_PATH"));
}

TEST_CASE("plugins: the CLI refuses a graph naming a bad plugin, before starting anything") {
  test::TempDir dir("abi");
  test::write_file(dir.file("g.toml"), "[stages.a]\ntype = \"badabi.src\"\n");
  auto r = test::run_cmd("CATLIP_PLUGIN_PATH=" + std::string(CATLIP_BAD_PLUGIN_DIR) + " " + test::catlip_bin() +
                         " run " + dir.file("g.toml") + " --run-dir " + dir.file("run"));
  CHECK(r.exit_code == 3);
  CHECK_THAT(r.out, Catch::Contains("g.toml:2:8: error: stage 'a'") && Catch::Contains("ABI"));
  CHECK(test::read_file(dir.file("run/graph.toml")).empty());
}

TEST_CASE("plugins: every shipped stage type documents itself and every parameter") {
  PluginLoader loader;
  std::vector<std::string> errors;
  auto plugins = loader.load_all(&errors);
  INFO("load errors: " << errors.size());
  CHECK(errors.empty());
  REQUIRE_FALSE(plugins.empty());
  for (auto* p : plugins) {
    CHECK_FALSE(p->description.empty());
    for (auto* t : p->types) {
      INFO(t->schema.type);
      CHECK(t->schema.doc.size() > 10);
      for (auto& q : t->schema.params) {
        INFO(t->schema.type << "." << q.name);
        CHECK(q.doc.size() > 5);
        if (q.default_value) CHECK(q.check(*q.default_value).empty());  // defaults obey their own schema
      }
    }
  }
  auto r = test::run_cmd(test::catlip_bin() + " inspect testing.map");
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("sleep_ms (float, default 0.0, range 0.0..60000.0)"));
  // Integer bounds print as integers.
  r = test::run_cmd(test::catlip_bin() + " inspect testing.counter");
  CHECK_THAT(r.out, Catch::Contains("payload_bytes (int, default 0, range 0..1073741824)"));
}
