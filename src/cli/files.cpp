#include "cli/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"

namespace toy::cli {
namespace {

std::string directory_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string describe(const NamedPath& p) {
  return p.flag.empty() ? p.path : p.flag + " " + p.path;
}

}  // namespace

void check_output(const NamedPath& output, const std::vector<NamedPath>& inputs) {
  const std::string& path = output.path;
  if (path.empty()) fail(output.flag, ": the output path is empty");
  struct stat out_stat {};
  const bool exists = ::stat(path.c_str(), &out_stat) == 0;
  if ((exists && S_ISDIR(out_stat.st_mode)) || path.back() == '/')
    fail(describe(output), ": is a directory; give a file path");
  // A symbolic link is written through (core/atomic_file.h): its target's directory counts.
  const std::string dir = directory_of(output_target(path));
  struct stat dir_stat {};
  if (::stat(dir.c_str(), &dir_stat) != 0) {
    if (errno == ENOENT) fail(describe(output), ": directory ", dir, " does not exist");
    fail(describe(output), ": directory ", dir, ": ", std::strerror(errno));
  }
  if (!S_ISDIR(dir_stat.st_mode)) fail(describe(output), ": ", dir, " is not a directory");
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    fail(describe(output), ": cannot create files in ", dir, ": ", std::strerror(errno));
  if (!exists) return;
  for (const NamedPath& input : inputs) {
    struct stat in_stat {};
    if (input.path.empty() || input.path == "-" || ::stat(input.path.c_str(), &in_stat) != 0)
      continue;
    if (in_stat.st_dev == out_stat.st_dev && in_stat.st_ino == out_stat.st_ino)
      fail(describe(output), " is the same file as ", describe(input),
           "; writing it would destroy the input: choose another output path");
  }
}

void check_distinct_outputs(const std::vector<NamedPath>& outputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      const NamedPath &a = outputs[i], &b = outputs[j];
      if (a.path.empty() || b.path.empty()) continue;
      std::error_code ea, eb;
      const auto ca = std::filesystem::weakly_canonical(output_target(a.path), ea);
      const auto cb = std::filesystem::weakly_canonical(output_target(b.path), eb);
      if (a.path == b.path || (!ea && !eb && ca == cb))
        fail(a.flag, " and ", b.flag, " name the same file ", a.path,
             ": one output would overwrite the other");
    }
  }
}

void check_input_file(const NamedPath& input) {
  struct stat st {};
  if (::stat(input.path.c_str(), &st) != 0)
    fail(describe(input), ": cannot open: ", std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail(describe(input), ": is a directory; expected a file");
  if (::access(input.path.c_str(), R_OK) != 0)
    fail(describe(input), ": cannot read: ", std::strerror(errno));
}

std::string read_input_text(const NamedPath& input, bool allow_stdin) {
  const bool from_stdin = allow_stdin && input.path == "-";
  int fd = STDIN_FILENO;
  if (!from_stdin) {
    check_input_file(input);
    fd = ::open(input.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(describe(input), ": cannot open: ", std::strerror(errno));
  }
  std::string text;
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      if (!from_stdin) ::close(fd);
      fail(from_stdin ? input.flag + " - (standard input)" : describe(input),
           ": read error: ", std::strerror(err));
    }
    text.append(buffer, static_cast<size_t>(n));
  }
  if (!from_stdin) ::close(fd);
  return text;
}

void write_output_file(const std::string& path, const void* data, uint64_t size) {
  AtomicFile out(path);
  out.write(data, size);
  out.commit();
}

}  // namespace toy::cli
