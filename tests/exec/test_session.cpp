// ExecSession against real programs: a C++ test program for every failure,
// and Python programs through tools/python/catlip_stage.py.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <map>
#include <memory>

#include "catlip/exec/session.h"
#include "exec_test_util.h"

using namespace catlip;
using namespace catlip::exec;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Sample make_sample(int i, size_t payload = 0) {
  Sample s;
  s.key = "item" + std::to_string(i);
  s.origin = {"test", 1, i, 0};
  s.set_ints("n", {i, -i, int64_t{1} << 50});
  s.set_text("txt", i % 3 == 0 ? "a dog on the grass" : "a cat \xc3\xa9t\xc3\xa9");
  s.set_bytes("jpg", std::string("\x00\x01\xff", 3) + std::string(payload, char(i)));
  Tensor t;
  t.dtype = DType::F32;
  t.shape = {2, 3};
  t.data = std::string(24, char(i));
  s.set("img", t);
  return s;
}

struct Harness {
  std::vector<Sample> out;
  std::vector<Batch> batches;
  std::map<std::string, int64_t> counts;
  bool stop = false;
  std::unique_ptr<ExecSession> session;

  explicit Harness(std::vector<std::string> argv, SessionOptions o = {}) {
    o.child.argv = std::move(argv);
    o.stage = "under_test";
    o.child.env.push_back(std::string("PYTHONPATH=") + CATLIP_PYTHON_HELPER_DIR);
    o.child.env.push_back("CATLIP_STAGE=under_test");
    SessionCallbacks cb;
    cb.sample = [this](Sample&& s) { out.push_back(std::move(s)); };
    cb.batch = [this](Batch&& b) { batches.push_back(std::move(b)); };
    cb.count = [this](const std::string& k, int64_t n) { counts[k] += n; };
    cb.stop = [this] { return stop; };
    session = std::make_unique<ExecSession>(std::move(o), std::move(cb));
  }
};

std::vector<std::string> prog(const std::string& mode, const std::string& n = "1") {
  return {EXEC_TEST_PROGRAM, mode, n};
}

// Runs `count` items through a program expected to fail; returns the error.
std::string failure_of(Harness& h, int count = 10) {
  try {
    h.session->start();
    for (int i = 0; i < count; ++i) h.session->send(make_sample(i));
    h.session->finish();
  } catch (const ExecError& e) {
    return e.what();
  }
  return "(no error)";
}

bool alive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

}  // namespace

TEST_CASE("a pass-through program returns every item unchanged") {
  Harness h(prog("echo"));
  h.session->start();
  for (int i = 0; i < 50; ++i) h.session->send(make_sample(i, size_t(i) * 1000));
  h.session->finish();
  REQUIRE(h.out.size() == 50);
  for (int i = 0; i < 50; ++i) CHECK(h.out[i] == make_sample(i, size_t(i) * 1000));
  CHECK(h.counts["seen"] == 50);
  CHECK_FALSE(alive(h.session->pid()));
}

TEST_CASE("a program may emit several items per input or none") {
  Harness dup(prog("dup", "3"));
  dup.session->start();
  for (int i = 0; i < 7; ++i) dup.session->send(make_sample(i));
  dup.session->finish();
  CHECK(dup.out.size() == 21);
  Harness none(prog("dup", "0"));
  none.session->start();
  for (int i = 0; i < 7; ++i) none.session->send(make_sample(i));
  none.session->finish();
  CHECK(none.out.empty());
}

TEST_CASE("large inputs and outputs both ways do not deadlock") {
  SessionOptions o;
  o.window = 4;
  o.timeout_s = 20;
  Harness h(prog("flood", "10"), o);
  h.session->start();
  for (int i = 0; i < 30; ++i) h.session->send(make_sample(i, 200 * 1024));
  h.session->finish();
  CHECK(h.out.size() == 300);
}

TEST_CASE("a program that crashes mid-stream is a clear error") {
  Harness h(prog("crash", "3"));
  double t0 = now_s();
  std::string e = failure_of(h);
  CHECK(now_s() - t0 < 5);
  CHECK_THAT(e, Catch::Contains("exec_test_program crash 3") && Catch::Contains("replica 0") &&
                    Catch::Contains("killed by signal 6") && Catch::Contains("oldest unanswered item: 'item2'"));
  CHECK_FALSE(alive(h.session->pid()));
  Harness x(prog("exit", "2"));
  CHECK_THAT(failure_of(x), Catch::Contains("exited with status 3"));
}

TEST_CASE("a program's error frame becomes the stage error") {
  Harness h(prog("error", "2"));
  CHECK_THAT(failure_of(h), Catch::Contains("failed: cannot handle item number 2"));
}

TEST_CASE("garbage output is an error naming what was read") {
  Harness h(prog("garbage"));
  CHECK_THAT(failure_of(h), Catch::Contains("wrote garbage") && Catch::Contains("this is not a frame"));
  Harness big(prog("bigframe"));
  CHECK_THAT(failure_of(big), Catch::Contains("exceeds the limit"));
  Harness v(prog("version"));
  CHECK_THAT(failure_of(v), Catch::Contains("speaks stage protocol version 99"));
}

TEST_CASE("a program that stops responding times out") {
  SessionOptions o;
  o.timeout_s = 0.5;
  o.startup_timeout_s = 0.5;
  Harness h(prog("hang"), o);
  double t0 = now_s();
  CHECK_THAT(failure_of(h), Catch::Contains("did not respond for 0.5 s") && Catch::Contains("oldest unanswered item: 'item0'"));
  CHECK(now_s() - t0 < 5);
  CHECK_FALSE(alive(h.session->pid()));
  Harness n(prog("nohello"), o);
  CHECK_THAT(failure_of(n), Catch::Contains("its hello"));
}

TEST_CASE("a program that cannot be started is a clear error") {
  Harness h({"/nonexistent/program", "x"});
  CHECK_THAT(failure_of(h), Catch::Contains("cannot be started") && Catch::Contains("No such file"));
  SessionOptions o;
  o.child.cwd = "/nonexistent-dir";
  Harness c(prog("echo"), o);
  CHECK_THAT(failure_of(c), Catch::Contains("cannot change to directory"));
}

TEST_CASE("a program that does not exit after end-of-stream is killed") {
  SessionOptions o;
  o.exit_timeout_s = 0.3;
  Harness h(prog("linger"), o);
  h.session->start();
  h.session->send(make_sample(1));
  h.session->finish();
  CHECK(h.out.size() == 1);
  CHECK(h.counts["exec.killed_after_end"] == 1);
  CHECK_FALSE(alive(h.session->pid()));
}

TEST_CASE("a stop request ends a wait") {
  Harness h(prog("hang"));
  h.session->start();
  h.stop = true;
  CHECK_THROWS_AS(h.session->send(make_sample(0)), ExecStopped);
  h.session->kill();
  CHECK_FALSE(alive(h.session->pid()));
}

TEST_CASE("a source program produces items until its end-of-stream") {
  SessionOptions o;
  o.mode = "source";
  Harness h(prog("source", "5"), o);
  h.session->start();
  int calls = 0;
  while (h.session->receive()) ++calls;
  CHECK(calls == 5);
  REQUIRE(h.out.size() == 5);
  CHECK(h.out[4].key == "src4");
}

TEST_CASE("python: the pass-through stage passes every sample unchanged") {
  exec_test::require_python_msgpack();
  Harness h({"/usr/bin/python3", "-c",
             "import catlip_stage as cs\nprint('to stderr, not the protocol')\n"
             "for s in cs.samples():\n    cs.emit(s)\n"});
  h.session->start();
  for (int i = 0; i < 40; ++i) h.session->send(make_sample(i, size_t(i) * 100));
  h.session->finish();
  REQUIRE(h.out.size() == 40);
  for (int i = 0; i < 40; ++i) CHECK(h.out[i] == make_sample(i, size_t(i) * 100));
}

TEST_CASE("python: fields, counters, batches and errors") {
  exec_test::require_python_msgpack();
  Harness h({"/usr/bin/python3", "-c",
             "import catlip_stage as cs\n"
             "for s in cs.samples():\n"
             "    assert s['txt'].startswith('a '), s['txt']\n"
             "    assert s['n'][2] == 1 << 50 and isinstance(s['jpg'], bytes)\n"
             "    assert s['img'].dtype == 'float32' and s['img'].shape == (2, 3)\n"
             "    if s.index == 3: raise ValueError('item 3 is bad')\n"
             "    s['len'] = [len(s['txt'].encode())]\n"
             "    s['note'] = 'seen by python'\n"
             "    cs.count('python.seen')\n"
             "    cs.emit([s, s.copy(key=s.key + '-copy')])\n"});
  std::string e = failure_of(h);
  CHECK_THAT(e, Catch::Contains("failed: ValueError: item 3 is bad"));
  REQUIRE(h.batches.size() == 3);
  CHECK(h.batches[0].samples.size() == 2);
  CHECK(h.batches[0].samples[1].key == "item0-copy");
  CHECK(*h.batches[1].samples[0].text("note") == "seen by python");
  CHECK(*h.batches[1].samples[0].ints("len") == IntList{int64_t(make_sample(1).text("txt")->size())});
  CHECK(h.counts["python.seen"] == 3);
}

TEST_CASE("python: a source stage") {
  exec_test::require_python_msgpack();
  SessionOptions o;
  o.mode = "source";
  Harness h({"/usr/bin/python3", "-c",
             "import catlip_stage as cs\n"
             "for i in range(7):\n"
             "    cs.emit(cs.Sample('k%d' % i, {'txt': 'caption %d' % i}, index=i))\n"},
            o);
  h.session->start();
  while (h.session->receive()) {
  }
  REQUIRE(h.out.size() == 7);
  CHECK(*h.out[6].text("txt") == "caption 6");
  CHECK(h.out[6].origin.index == 6);
}
