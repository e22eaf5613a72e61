// Helpers for tests/exec.
#pragma once

#include <cstdlib>
#include <iostream>
#include <string>

#include "test_util.h"

namespace catlip::exec_test {

// Prints "SKIPPED: why" and ends the process with exit code 77 (CTest
// SKIP_RETURN_CODE): each test case runs in its own process under CTest.
[[noreturn]] inline void skip_test(const std::string& why) {
  std::cout << "SKIPPED: " << why << std::endl;
  std::_Exit(77);
}

inline bool have_python_msgpack() {
  return catlip::test::run_cmd("/usr/bin/python3 -c 'import msgpack' >/dev/null 2>&1").exit_code == 0;
}

// CATLIP_TEST_NO_PYTHON=1 skips as if it were missing (to check skipping).
inline void require_python_msgpack() {
  if (std::getenv("CATLIP_TEST_NO_PYTHON")) skip_test("CATLIP_TEST_NO_PYTHON is set");
  if (!have_python_msgpack()) skip_test("needs /usr/bin/python3 with msgpack (apt-get install python3-msgpack)");
}

}  // namespace catlip::exec_test
