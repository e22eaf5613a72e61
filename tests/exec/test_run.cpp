// exec stages in real runs: `catlip run` with workers running programs.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>
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

// `catlip run` in the background, output to `log`; killed when the test ends.
struct BackgroundRun {
  pid_t pid = -1;
  BackgroundRun(const std::string& args, const std::string& log) {
    pid = ::fork();
    if (pid == 0) {
      std::string cmd = "exec " + catlip_bin() + " run " + args + " > " + log + " 2>&1";
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), (char*)nullptr);
      ::_exit(127);
    }
  }
  // Exit code, or -1 if it did not end within timeout_s.
  int wait(double timeout_s) {
    for (double t = 0; t < timeout_s; t += 0.05) {
      int st;
      if (::waitpid(pid, &st, WNOHANG) == pid) {
        pid = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }
  ~BackgroundRun() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

bool wait_for_count(const std::string& needle, int want, double timeout_s) {
  for (double t = 0; t < timeout_s; t += 0.05) {
    if (count_processes(needle) == want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace

TEST_CASE("a program never outlives its worker, nor a stopped run") {
  TempDir dir("exec-orphan");
  std::string hang = "[stages.prog]\ntype = \"exec.process\"\ninputs = [\"numbers\"]\ntimeout_s = 0\n"
                     "command = [\"" EXEC_TEST_PROGRAM "\", \"hang\", \"" + dir.path() + "\"]\n";
  write_file(dir.file("g.toml"), counter_graph(100, hang));
  std::string needle = "exec_test_program hang " + dir.path();
  {
    BackgroundRun run(dir.file("g.toml") + " --run-dir " + dir.file("run1") + " --quiet", dir.file("log1"));
    REQUIRE(wait_for_count(needle, 1, 30));
    // This run's prog worker only (other tests may run a "prog" stage too).
    std::vector<int> workers;
    for (int pid : pids_with("--run-dir " + dir.file("run1")))
      if (catlip::test::read_file("/proc/" + std::to_string(pid) + "/cmdline").rfind("catlip:prog", 0) == 0)
        workers.push_back(pid);
    REQUIRE(workers.size() == 1);
    ::kill(workers[0], SIGKILL);  // PR_SET_PDEATHSIG takes the program along
    CHECK(wait_for_count(needle, 0, 5));
    CHECK(run.wait(30) == 1);
  }
  {
    BackgroundRun run(dir.file("g.toml") + " --run-dir " + dir.file("run2") + " --quiet", dir.file("log2"));
    REQUIRE(wait_for_count(needle, 1, 30));
    ::kill(run.pid, SIGINT);  // the stop reaches the stage's wait, which kills the program
    int rc = run.wait(30);
    INFO(read_file(dir.file("log2")));
    CHECK(rc == 130);
    CHECK(count_processes(needle) == 0);
  }
}

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
