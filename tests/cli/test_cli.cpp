// Every `catlip` command (its own and those of catlip-torch and
// catlip-bench, which the front end lists and forwards to) refuses a
// misspelt option and stray arguments with exit 2 and a usage line, before
// doing anything; unknown and partial commands get help; --version.
#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

using namespace catlip::test;

namespace {

// Command names from `catlip --help` (every binary's).
std::vector<std::string> commands(const std::string& bin) {
  std::vector<std::string> out;
  std::istringstream in(run_cmd(bin + " --help").out);
  std::string line;
  bool in_list = false;
  while (std::getline(in, line)) {
    if (line == "Commands:") {
      in_list = true;
      continue;
    }
    if (!in_list) continue;
    if (line.rfind("  ", 0) != 0 || line.rfind("  (", 0) == 0) {
      if (line.empty()) break;
      continue;
    }
    // "  shards pack       Pack ..." : the name is one or two words before
    // a run of spaces.
    std::string rest = line.substr(2);
    auto gap = rest.find("  ");
    out.push_back(rest.substr(0, gap));
  }
  return out;
}

}  // namespace

TEST_CASE("cli: every command refuses a misspelt option with exit 2 and a usage line") {
  auto cmds = commands(catlip_bin());
  REQUIRE(cmds.size() >= 25);
  for (auto& c : cmds) {
    for (std::string bad : {"--sett=1", "--no-such-option 1"}) {
      auto r = run_cmd("timeout 60 " + catlip_bin() + " " + c + " " + bad + " </dev/null");
      INFO("catlip " << c << " " << bad << "\n" << r.out);
      CHECK(r.exit_code == 2);
      CHECK_THAT(r.out, Catch::Contains("unknown option") || Catch::Contains("unknown argument"));
      CHECK_THAT(r.out, Catch::Contains("usage") || Catch::Contains("Usage"));
    }
  }
}

TEST_CASE("cli: every command with bounded arguments refuses stray ones with exit 2") {
  auto cmds = commands(catlip_bin());
  // These take any number of inputs (captions, shard URLs).
  const std::vector<std::string> variadic = {"label", "shards ls", "shards stat"};
  for (auto& c : cmds) {
    if (std::find(variadic.begin(), variadic.end(), c) != variadic.end()) continue;
    auto r = run_cmd("timeout 60 " + catlip_bin() + " " + c + " stray1 stray2 stray3 stray4 </dev/null");
    INFO("catlip " << c << " stray1 stray2 stray3 stray4\n" << r.out);
    CHECK(r.exit_code == 2);
  }
}

TEST_CASE("cli: a near miss gets a did-you-mean, a single-dash spelling too") {
  struct Case {
    std::string args, hint;
  } cases[] = {
      {"run --sett decode.size=1", "did you mean --set?"},
      {"run -set decode.size=1", "did you mean --set?"},
      {"run --run-dri /tmp/x", "did you mean --run-dir?"},
      {"validate g.toml --node 2", "did you mean --nodes?"},
      {"node g.toml --secret-fil f", "did you mean --secret-file?"},
      {"shards synth /tmp/x --sample 3", "did you mean --samples?"},
      {"vocab merge /tmp/x --top-kk 3", "did you mean --top-k?"},
      {"label --vocabb v.tsv a dog", "did you mean --vocab?"},
  };
  for (auto& k : cases) {
    auto r = run_cmd(catlip_bin() + " " + k.args + " </dev/null");
    INFO("catlip " << k.args << "\n" << r.out);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.out, Catch::Contains(k.hint));
  }
  // The run was not started: a misspelt override is never silently dropped.
  auto r = run_cmd(catlip_bin() + " run --sett decode.size=1 --quiet </dev/null");
  CHECK(r.out.find("running graph") == std::string::npos);
}

TEST_CASE("cli: one front end lists every binary's commands and answers unknown or partial ones") {
  auto cmds = commands(catlip_bin());
  for (const char* c : {"run", "validate", "bench pipeline", "bench train", "transfer", "shards pack"}) {
    INFO(c);
    CHECK(std::find(cmds.begin(), cmds.end(), c) != cmds.end());
  }
  struct Case {
    std::string args, says;
  } cases[] = {
      {"runn", "unknown command 'runn' (did you mean 'run'?)"},
      {"validat", "unknown command 'validat' (did you mean 'validate'?)"},
      {"shards", "catlip shards: give a subcommand"},
      {"bench", "catlip bench pipeline"},
      {"xyzzy", "unknown command 'xyzzy'; catlip --help lists them"},
  };
  for (auto& c : cases) {
    auto r = run_cmd(catlip_bin() + " " + c.args + " 2>&1");
    INFO("catlip " << c.args << "\n" << r.out);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.out, Catch::Contains(c.says));
    CHECK_THAT(r.out, !Catch::Contains("catlip-torch") && !Catch::Contains("catlip-bench"));
  }
  // A sibling's command runs through the front end.
  auto r = run_cmd(catlip_bin() + " bench transport --help 2>&1");
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("usage: catlip bench transport"));
}

TEST_CASE("cli: --version names catlip, the plugin ABI, LibTorch, CUDA and the plugins") {
  auto r = run_cmd(catlip_bin() + " --version 2>&1");
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("catlip 0.") && Catch::Contains("plugin ABI 8"));
  CHECK_THAT(r.out, Catch::Contains("LibTorch:") && Catch::Contains("CUDA (built):"));
  CHECK_THAT(r.out, Catch::Contains("plugins (") && Catch::Contains(" train ") && Catch::Contains(" shards "));
}

TEST_CASE("cli: a graph file that cannot be read is named with the OS reason, exit 3, nothing started") {
  TempDir dir("nofile");
  for (std::string cmd : {"run", "validate"}) {
    auto r = run_cmd(catlip_bin() + " " + cmd + " " + dir.file("missing.toml") + " 2>&1");
    INFO(r.out);
    CHECK(r.exit_code == 3);
    CHECK_THAT(r.out, Catch::Contains(dir.file("missing.toml") + ": error: cannot read the graph file: No such file or directory"));
    CHECK_THAT(r.out, Catch::Contains("1 error in " + dir.file("missing.toml") + "; nothing was started"));
    auto d = run_cmd(catlip_bin() + " " + cmd + " " + dir.path() + " 2>&1");
    CHECK(d.exit_code == 3);
    CHECK_THAT(d.out, Catch::Contains("it is a directory"));
  }
}

TEST_CASE("cli: resume names a directory that is not a run, and a run with nothing to resume") {
  TempDir dir("resume");
  auto r = run_cmd(catlip_bin() + " resume " + dir.path() + " 2>&1");
  INFO(r.out);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.out, Catch::Contains(dir.file("graph.toml") + " cannot be read (No such file or directory)"));
  // A finished run without a trainer: its graph.toml loads, but no stage can resume.
  auto run = run_cmd(catlip_bin() + " run --set numbers.count=10 --run-dir " + dir.file("run") + " --quiet 2>&1");
  REQUIRE(run.exit_code == 0);
  auto n = run_cmd(catlip_bin() + " resume " + dir.file("run") + " 2>&1");
  INFO(n.out);
  CHECK(n.exit_code == 2);
  CHECK_THAT(n.out, Catch::Contains("has a `resume` parameter: nothing to continue"));
}

TEST_CASE("cli: inspect shows whether a stage is restartable, the fields it reads and writes, file parameters") {
  auto labels = run_cmd(catlip_bin() + " inspect text.labels 2>&1");
  INFO(labels.out);
  CHECK(labels.exit_code == 0);
  CHECK_THAT(labels.out, Catch::Contains("restartable:   yes") && Catch::Contains("reads fields:  synsets, nouns, txt"));
  CHECK_THAT(labels.out, Catch::Contains("vocab (string, required, an existing file)"));
  auto train = run_cmd(catlip_bin() + " inspect train.catlip 2>&1");
  CHECK_THAT(train.out, Catch::Contains("restartable:   no") && Catch::Contains("group:         yes"));
}

TEST_CASE("cli: a misspelt flag at the end gets a did-you-mean, not 'needs a value'") {
  auto r = run_cmd(catlip_bin() + " inspect --al 2>&1");
  INFO(r.out);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.out, Catch::Contains("unknown option --al (did you mean --all?)"));
  auto v = run_cmd(catlip_bin() + " run --run-dir 2>&1");  // a known option without its value
  CHECK(v.exit_code == 2);
  CHECK_THAT(v.out, Catch::Contains("option --run-dir needs a value"));
}

TEST_CASE("cli: an out-of-range --set value is named by its argument, and a failed replica says 'failed:' once") {
  TempDir dir("cli-set");
  auto v = run_cmd(catlip_bin() + " validate " + std::string(CATLIP_SOURCE_DIR) +
                   "/configs/default.toml --set numbers.count=-5 2>&1");
  INFO(v.out);
  CHECK(v.exit_code == 3);
  CHECK_THAT(v.out, Catch::Contains("--set numbers.count=-5: error: stage 'numbers': parameter 'count': value -5 is "
                                    "below the minimum 0"));
  CHECK_THAT(v.out, !Catch::Contains("default.toml: error"));
  // A replica that fails every time: each failure line names its error once.
  write_file(dir.file("g.toml"), "[stages.numbers]\ntype = \"testing.counter\"\ncount = 100\n"
                                 "[stages.m]\ntype = \"testing.map\"\ninputs = [\"numbers\"]\nfail_at = 5\n"
                                 "max_restarts = 3\n"
                                 "[stages.sink]\ntype = \"testing.null\"\ninputs = [\"m\"]\n");
  auto r = run_cmd("timeout 60 " + catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run") +
                   " --progress plain 2>&1");
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.out, Catch::Contains("failed: failing on purpose at item 5"));
  CHECK_THAT(r.out, !Catch::Contains("failed: error:"));
}
