// Shared helpers of the libFuzzer targets.
#pragma once

#include <cstdio>
#include <cstdlib>

// A property violated by an input: abort so libFuzzer saves it as a crash.
#define FUZZ_CHECK(cond, ...)                                                     \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s: ", __FILE__, __LINE__, \
                   #cond);                                                        \
      std::fprintf(stderr, __VA_ARGS__);                                          \
      std::fprintf(stderr, "\n");                                                 \
      std::abort();                                                               \
    }                                                                             \
  } while (0)
