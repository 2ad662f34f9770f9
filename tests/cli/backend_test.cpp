// The CPU backend at the command line: `toy version` names the features it found
// and the backend in use; TOY_BACKEND forces any backend the CPU can run and a
// backend it cannot run (or a name that is no backend) stops every command with
// exit code 1 before any work.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "support/fixtures.h"

namespace {

using toy::testing::binary_dir;
using toy::testing::fixture_path;
using toy::testing::run_command;

std::string line_after(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  return "";
}

TEST(Backend, VersionNamesFeaturesAndEveryRunnableBackendCanBeForced) {
  std::string out;
  ASSERT_EQ(run_command(binary_dir() + "/toy version", &out), 0) << out;
  EXPECT_FALSE(line_after(out, "cpu features: ").empty()) << out;
  const std::string available = line_after(out, "backends available: ");
  ASSERT_NE(available.find("generic"), std::string::npos) << out;
  std::istringstream names(available);
  for (std::string name; names >> name;) {
    std::string forced;
    ASSERT_EQ(run_command("TOY_BACKEND=" + name + " " + binary_dir() + "/toy version", &forced), 0)
        << forced;
    EXPECT_EQ(line_after(forced, "backend: ").substr(0, name.size()), name) << forced;
    // And it computes: greedy text from the real TinyStories model is the same on every backend.
    std::string text;
    ASSERT_EQ(run_command("TOY_BACKEND=" + name + " " + binary_dir() + "/toy generate -m " +
                              fixture_path("models/stories260K.gguf") +
                              " -p 'Once upon a time' -n 12 --temp 0 2>/dev/null",
                          &text),
              0)
        << text;
    EXPECT_NE(text.find("Once upon a time, there was a little girl"), std::string::npos)
        << name << ": " << text;
  }
}

TEST(Backend, AnUnknownOrUnrunnableBackendStopsEveryCommand) {
  for (const char* name : {"bogus", "neon", "avx512"}) {
    std::string out;
    const int status = run_command(std::string("TOY_BACKEND=") + name + " " + binary_dir() +
                                       "/toy info " + fixture_path("models/llama.gguf"),
                                   &out);
    if (name == std::string("avx512") && status == 0) continue;  // this CPU has it
    if (name == std::string("neon") && status == 0) continue;    // an ARM64 machine
    EXPECT_EQ(status, 1) << name << ": " << out;
    EXPECT_NE(out.find("TOY_BACKEND"), std::string::npos) << out;
    EXPECT_EQ(out.find("GGUF"), std::string::npos) << "no work before the error: " << out;
  }
}

}  // namespace
