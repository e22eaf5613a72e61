// In-process test of the stages with catlip's local harness (catlip/local.h):
// configure_stage() resolves the parameters against the schema, stores the
// bound ones and configures, exactly as `catlip run` does; a
// LocalContext that records counters, a CollectEmitter that keeps the output.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "catlip/local.h"
#include "stages.h"

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
      std::exit(1);                                                   \
    }                                                                 \
  } while (0)

using namespace catlip;

static void words_then_upper() {
  myplugin::Words words;
  LocalContext ctx("words", "myplugin.words");
  configure_stage(words, myplugin::Words::schema(), {{"text", std::string("a bc")}, {"repeat", int64_t{2}}}, ctx);
  CollectEmitter produced;
  run_source(words, produced);
  CHECK(produced.samples.size() == 4);
  CHECK(ctx.total() == 4);

  myplugin::Upper upper;
  LocalContext uctx("upper", "myplugin.upper");
  configure_stage(upper, myplugin::Upper::schema(), {}, uctx);
  Sample no_text;
  no_text.key = "empty";
  produced.samples.push_back(no_text);
  CollectEmitter out;
  run_transform(upper, std::move(produced.samples), out);
  CHECK(out.samples.size() == 4);
  CHECK(*out.samples[0].text("txt") == "A");
  CHECK(*out.samples[1].text("txt") == "BC");
  CHECK(out.samples[3].key == "word3");
  CHECK(uctx.counter("skipped.no_text") == 1);
}

static void bad_params_are_refused() {
  bool threw = false;
  try {
    resolve_params(myplugin::Words::schema(), {{"repeat", int64_t{0}}});  // below the minimum 1
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(threw);
}

int main() {
  words_then_upper();
  bad_params_are_refused();
  std::puts("myplugin stages: ok");
  return 0;
}
