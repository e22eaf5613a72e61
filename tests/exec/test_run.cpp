// exec stages in real runs: `catlip run` with workers running programs.
#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>

#include "exec_test_util.h"

using namespace catlip::test;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<std::string> lines_of_file(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream f(path);
  std::string l;
  while (std::getline(f, l))
    if (!l.empty()) out.push_back(l);
  return out;
}

std::string counter_graph(int count, const std::string& exec_stage) {
  return "[graph]\nname = \"exec-test\"\n"
         "[stages.numbers]\ntype = \"testing.counter\"\ncount = " +
         std::to_string(count) + "\n" + exec_stage +
         "[stages.sink]\ntype = \"testing.collect\"\ninputs = [\"prog\"]\n";
}

}  // namespace

TEST_CASE("a program stage through catlip run, two replicas") {
  TempDir dir("exec-run");
  write_file(dir.file("g.toml"), counter_graph(200, "[stages.prog]\ntype = \"exec.process\"\ninputs = [\"numbers\"]\n"
                                                    "replicas = 2\ncommand = [\"" EXEC_TEST_PROGRAM "\", \"echo\"]\n"));
  auto r = run_cmd("timeout 120 " + catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run") +
                   " --quiet");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  std::set<std::string> keys;
  for (auto& l : lines_of_file(dir.file("run/collected.tsv.0"))) keys.insert(l.substr(0, l.find('\t')));
  CHECK(keys.size() == 200);
}

TEST_CASE("a program that crashes mid-stream fails the run quickly, naming it") {
  TempDir dir("exec-crash");
  write_file(dir.file("g.toml"), counter_graph(1000, "[stages.prog]\ntype = \"exec.process\"\ninputs = [\"numbers\"]\n"
                                                     "command = [\"" EXEC_TEST_PROGRAM "\", \"crash\", \"5\"]\n"));
  double t0 = now_s();
  auto r = run_cmd("timeout 120 " + catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run") +
                   " --quiet");
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK(now_s() - t0 < 30);
  CHECK_THAT(r.out, Catch::Contains("prog") && Catch::Contains("exec_test_program crash 5") &&
                        Catch::Contains("killed by signal 6"));
  CHECK(count_processes("exec_test_program crash") == 0);
}

TEST_CASE("a program that hangs times out the run") {
  TempDir dir("exec-hang");
  write_file(dir.file("g.toml"), counter_graph(100, "[stages.prog]\ntype = \"exec.process\"\ninputs = [\"numbers\"]\n"
                                                    "timeout_s = 1\ncommand = [\"" EXEC_TEST_PROGRAM "\", \"hang\"]\n"));
  double t0 = now_s();
  auto r = run_cmd("timeout 120 " + catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run") +
                   " --quiet");
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK(now_s() - t0 < 30);
  CHECK_THAT(r.out, Catch::Contains("did not respond for 1 s"));
  CHECK(count_processes("exec_test_program hang") == 0);
}

TEST_CASE("python: the caption filter example through catlip run") {
  catlip::exec_test::require_python_msgpack();
  TempDir dir("exec-example");
  auto r = run_cmd("cd " + source_dir() + " && timeout 120 " + catlip_bin() +
                   " run examples/python/graph.toml --run-dir " + dir.file("run") + " --quiet");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  auto lines = lines_of_file(dir.file("run/collected.tsv.0"));
  // Captions cycle through 5 texts; those of i % 5 == 0 and 2 mention dogs.
  CHECK(lines.size() == 60);
  std::set<int> seen;
  for (auto& l : lines) {
    auto tab = l.find('\t');
    seen.insert(std::stoi(l.substr(tab + 1)));
  }
  CHECK(seen.size() == 60);
  for (int n : seen) CHECK((n % 5 != 0 && n % 5 != 2));
}

TEST_CASE("python: a failing Python stage fails the run with its exception") {
  catlip::exec_test::require_python_msgpack();
  TempDir dir("exec-pyfail");
  write_file(dir.file("bad.py"),
             "import catlip_stage as cs\nfor s in cs.samples():\n"
             "    if s['n'][0] == 7: raise RuntimeError('no sevens here')\n    cs.emit(s)\n");
  write_file(dir.file("g.toml"), counter_graph(100, "[stages.prog]\ntype = \"exec.process\"\ninputs = [\"numbers\"]\n"
                                                    "command = [\"/usr/bin/python3\", \"" + dir.file("bad.py") + "\"]\n"));
  auto r = run_cmd("timeout 120 " + catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run") +
                   " --quiet");
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.out, Catch::Contains("RuntimeError: no sevens here"));
  CHECK(count_processes(dir.file("bad.py")) == 0);
}
