// Files named on the command line: outputs are checked before any work starts
// (so a run never trains or converts for an hour and then fails to save), inputs
// that are directories or unreadable get a clear message with the errno text,
// and "-" reads standard input where a command says so. Writing goes through
// core/atomic_file.h, the one output mechanism.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace toy::cli {

// A file given on the command line, with the flag that named it (for messages).
struct NamedPath {
  std::string flag;  // "-o", "--data", "input"
  std::string path;
};

// Refuses, before any work: an output in a directory that does not exist or cannot be
// written, an output that is a directory, and an output that is one of the inputs — the same
// file also through a symlink or a hard link (same st_dev and st_ino).
void check_output(const NamedPath& output, const std::vector<NamedPath>& inputs = {});

// Refuses two outputs that name the same file (also one not created yet, through "." or ".."
// or a symlink): one would overwrite the other. Empty paths are skipped.
void check_distinct_outputs(const std::vector<NamedPath>& outputs);

// The whole content of a text input; "-" reads standard input when `allow_stdin`.
// A directory, a missing or unreadable file are errors naming the flag and the reason.
std::string read_input_text(const NamedPath& input, bool allow_stdin = true);

// Refuses an input that is missing, a directory or unreadable (errno text), before work.
void check_input_file(const NamedPath& input);

// Writes `size` bytes to `path` atomically (complete or not at all, errno text on failure).
void write_output_file(const std::string& path, const void* data, uint64_t size);

}  // namespace toy::cli
