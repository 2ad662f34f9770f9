// Runs a whole test binary on one CPU backend: with TOY_TEST_BACKEND=avx2 (say),
// every Session / Trainer / kernel that asks for the host backend gets avx2
// (through TOY_BACKEND); when this machine cannot run it, every test is skipped
// rather than failed. tests/CMakeLists.txt registers the fixture and gradient
// suites once per backend this way.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/cpu/features.h"

namespace toy {
namespace {

class SkipEverything : public ::testing::Environment {
 public:
  explicit SkipEverything(std::string why) : why_(std::move(why)) {}
  // GTEST_SKIP here stops every test; the line below is what ctest's skip pattern
  // (gtest_discover_tests: "[  SKIPPED ]") sees, since gtest 1.12 reports the
  // unrun tests as passed.
  void SetUp() override {
    std::printf("[  SKIPPED ] %s\n", why_.c_str());
    GTEST_SKIP() << why_;
  }

 private:
  std::string why_;
};

bool select_test_backend() {
  const char* wanted = std::getenv("TOY_TEST_BACKEND");
  if (!wanted || !*wanted) return false;
  for (const cpu::Backend* b : cpu::runnable_backends(cpu::host_features())) {
    if (std::strcmp(b->name, wanted) == 0) {
      setenv("TOY_BACKEND", wanted, 1);
      return true;
    }
  }
  ::testing::AddGlobalTestEnvironment(new SkipEverything(
      std::string("backend ") + wanted + " cannot run on this CPU or is not in this binary"));
  return false;
}

const bool selected = select_test_backend();

}  // namespace
}  // namespace toy
