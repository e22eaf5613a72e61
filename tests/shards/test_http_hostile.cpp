// Hostile HTTP servers (issue 23, item 5): a 206 whose body restarts at byte
// 0, a shard that changes between requests, a server that drips 1,000 bytes
// per request, and one that crawls. A real server on loopback, real libcurl.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "catlip/shards/byte_stream.h"
#include "http_test_server.h"
#include "shard_fixtures.h"
#include "test_util.h"

using namespace catlip;
using namespace catlip::shards;
using namespace catlip::test;
using SV = std::vector<std::string>;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// How the samples a run emitted compare with the `n` written: each key's
// count and content.
struct Tally {
  int duplicates = 0, missing = 0, wrong_content = 0;
};
Tally tally(const std::vector<Sample>& got, int n, size_t jpg_bytes) {
  std::map<int, int> seen;
  Tally t;
  for (auto& s : got) {
    int i = std::stoi(s.key);
    if (seen[i]++ > 0) ++t.duplicates;
    auto* jpg = s.bytes("jpg");
    if (!jpg || jpg->data != payload(s.key, jpg_bytes + i % 13)) ++t.wrong_content;
  }
  for (int i = 0; i < n; ++i)
    if (!seen.count(i)) ++t.missing;
  return t;
}

std::string read_all(ByteStream& s) {
  std::string got;
  char buf[8192];
  for (;;) {
    size_t k = s.read(buf, sizeof buf);
    if (k == 0) return got;
    got.append(buf, k);
  }
}

}  // namespace

TEST_CASE("hostile http: a 206 with the right Content-Range but the body from byte 0 is caught: every sample once") {
  // The battery's case: 2,000 samples; the server cuts connections (so the
  // reader resumes) and answers each Range request with the shard's start.
  TempDir d("replay");
  make_shards(d.path(), 4, 500, 1000);
  HttpTestServer srv(d.path());
  srv.replay_from_zero(true);
  srv.cut_responses(3, 150000);
  auto r = run_shard_source({{"urls", SV{srv.url("shard-{000000..000003}.tar")}},
                             {"shuffle_shards", false}});
  auto t = tally(r.samples, 2000, 1000);
  INFO("emitted " << r.samples.size() << ", duplicates " << t.duplicates << ", missing " << t.missing);
  CHECK(t.duplicates == 0);
  CHECK(t.missing == 0);
  CHECK(t.wrong_content == 0);
  CHECK(r.samples.size() == 2000);
  // Each lie was noticed, logged with the URL, and the shard fetched again
  // from byte 0 (a request without Range).
  CHECK(r.counters["shards.http_resume_mismatch"] >= 1);
  bool named = false;
  for (auto& l : r.logs) named |= l.find("do not match") != std::string::npos && l.find(srv.url("shard-")) != std::string::npos;
  CHECK(named);
  for (auto& [k, v] : r.counters) CHECK_FALSE(k.rfind("skipped.", 0) == 0);
  CHECK(r.counters.count("error.shard_read") == 0);
  int refetched = 0;
  for (auto& q : srv.requests()) refetched += q.range_start < 0;
  CHECK(refetched > 4);  // more whole-file requests than shards
}

TEST_CASE("hostile http: a resumed request asks from before the offset and checks the overlap") {
  TempDir d("overlap");
  make_shards(d.path(), 1, 20, 5000);
  HttpTestServer srv(d.path());
  srv.cut_responses(2, 60000);
  StreamOptions o;
  o.backoff_s = 0.01;
  auto s = open_stream(srv.url("shard-000000.tar"), o);
  std::string got = read_all(*s);
  auto q = srv.requests();
  REQUIRE(q.size() == 3);
  // Resumed from a little before what was received, with the ETag the first
  // answer gave as If-Range; each cut answer brought 60 kB, the overlap
  // included.
  const int64_t ov = int64_t(kResumeOverlapBytes);
  CHECK(q[1].range_start == 60000 - ov);
  CHECK(q[2].range_start == 60000 + (60000 - ov) - ov);
  CHECK_FALSE(q[1].if_range.empty());
  CHECK(q[1].status == 206);
  CHECK(got.size() == std::filesystem::file_size(d.file("shard-000000.tar")));
  CHECK(s->retries_done() == 2);
}

TEST_CASE("hostile http: a shard that changed between requests fails, named, and no sample is emitted twice") {
  TempDir d("changed");
  make_shards(d.path(), 1, 40, 5000);
  TempDir d2("changed2");
  make_shards(d2.path(), 1, 40, 5100);  // same keys, other content and size
  HttpTestServer srv(d.path());
  srv.cut_responses(1, 100000);
  srv.replace_content_from(1, read_file(d2.file("shard-000000.tar")));
  auto r = run_shard_source({{"urls", SV{srv.url("shard-000000.tar")}}});
  auto t = tally(r.samples, 40, 5000);
  INFO("emitted " << r.samples.size() << ", duplicates " << t.duplicates << ", wrong content " << t.wrong_content);
  CHECK(t.duplicates == 0);
  CHECK(t.wrong_content == 0);  // nothing of the new file is spliced onto the old
  CHECK(r.samples.size() < 40);
  CHECK(r.counters["error.shard_read"] == 1);
  bool named = false;
  for (auto& l : r.logs) named |= l.find("changed") != std::string::npos && l.find(srv.url("shard-000000.tar")) != std::string::npos;
  CHECK(named);
}

TEST_CASE("hostile http: a server that drips 1,000 bytes per request runs out of retries per shard, not the deadline") {
  TempDir d("drip1000");
  make_shards(d.path(), 1, 40, 5000);
  std::filesystem::create_directories(d.file("good"));
  make_shards(d.file("good"), 1, 3, 500);
  HttpTestServer srv(d.path());
  srv.cut_responses(1000000, 1000);  // every answer: 1,000 bytes, then the connection drops
  StreamOptions o;
  o.retries = 3;
  o.backoff_s = 0.01;
  o.shard_timeout_s = 8;  // far more than 4 requests need
  auto t0 = Clock::now();
  auto s = open_stream(srv.url("shard-000000.tar"), o);
  try {
    read_all(*s);
    FAIL("expected a StreamError");
  } catch (const StreamError& e) {
    CHECK_THAT(e.what(), Catch::Contains("giving up after 3 retries") && Catch::Contains(srv.url("shard-000000.tar")));
    CHECK_FALSE(e.deadline_exceeded);
  }
  CHECK(since(t0) < 5);
  CHECK(srv.requests().size() == 4);  // each response made progress; every retry still counted

  auto r = run_shard_source({{"urls", SV{srv.url("shard-000000.tar"), d.file("good/shard-000000.tar")}},
                             {"shuffle_shards", false},
                             {"retries", int64_t{2}}});
  CHECK(r.samples.size() == 3);
  CHECK(r.counters["error.shard_read"] == 1);
  CHECK(r.counters["shards.http_retries"] == 2);
}

TEST_CASE("hostile http: a crawling server falls under low_speed_limit and is retried, then given up") {
  TempDir d("crawl");
  make_shards(d.path(), 1, 20, 5000);
  std::filesystem::create_directories(d.file("good"));
  make_shards(d.file("good"), 1, 3, 500);
  HttpTestServer srv(d.path());
  srv.trickle(200, 0.02);  // about 10 kB/s, never a stall
  auto t0 = Clock::now();
  auto r = run_shard_source({{"urls", SV{srv.url("shard-000000.tar"), d.file("good/shard-000000.tar")}},
                             {"shuffle_shards", false},
                             {"low_speed_limit", 100000.0},
                             {"low_speed_time_s", 0.5},
                             {"retries", int64_t{1}}});
  CHECK(since(t0) < 6);
  CHECK(r.samples.size() == 3);
  CHECK(r.counters["error.shard_read"] == 1);
  CHECK(r.counters["shards.http_retries"] == 1);
  bool named = false;
  for (auto& l : r.logs)
    named |= l.find("slower than 100000 bytes/s") != std::string::npos && l.find(srv.url("shard-000000.tar")) != std::string::npos;
  CHECK(named);
}

TEST_CASE("hostile http: a slow reader is not a slow server (time blocked on the buffer does not count)") {
  TempDir d("slowreader");
  make_shards(d.path(), 1, 30, 20000);  // about 600 kB
  HttpTestServer srv(d.path());
  StreamOptions o;
  o.buffer_bytes = 65536;
  o.low_speed_limit = 1e6;  // loopback is far faster; the reader is far slower
  o.low_speed_time_s = 0.2;
  o.retries = 0;
  auto s = open_stream(srv.url("shard-000000.tar"), o);
  std::string got;
  char buf[16384];
  for (int i = 0;; ++i) {
    size_t k = s->read(buf, sizeof buf);
    if (k == 0) break;
    got.append(buf, k);
    // The consumer under test is slow: for the first reads it pauses far
    // longer than low_speed_time_s, with the 64 kB buffer full behind it.
    if (i < 4) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  CHECK(got.size() == std::filesystem::file_size(d.file("shard-000000.tar")));
  CHECK(s->retries_done() == 0);
  CHECK(srv.requests().size() == 1);
}
