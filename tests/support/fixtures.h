// Helpers shared by the test suites: where the fixtures are, reading files,
// SHA-256 of byte buffers, temporary paths.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace toy::testing {

// ../shared/fixtures (or $TOY_FIXTURES), with a trailing component appended.
std::string fixture_path(const std::string& relative);
// The build directory (where the `toy` binary is).
std::string binary_dir();
std::vector<uint8_t> read_bytes(const std::string& path);
std::string read_text(const std::string& path);
// A fresh path under the system temp directory, removed by nobody; unique per call.
std::string temp_path(const std::string& suffix);
// Lower-case hex SHA-256 (FIPS 180-4) of a buffer.
std::string sha256_hex(const void* data, size_t size);
// Runs a shell command, returns its exit status; stdout+stderr captured into *output.
int run_command(const std::string& command, std::string* output);
// Runs the build's toy binary with `args` (shell words) under a 300 s timeout, as
// run_command does.
int run_toy(const std::string& args, std::string* output);

}  // namespace toy::testing
