// AtomicFile: complete or nothing under the final name, in both modes (O_TMPFILE and the named
// temporary used where a filesystem lacks it), after errors and after signals; and stale
// temporaries of dead processes are removed.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "support/fixtures.h"

namespace toy {
namespace {

namespace fs = std::filesystem;

// A fresh empty directory, removed with everything in it at the end of the test.
struct TempDir {
  TempDir() : path(testing::temp_path("-dir")) { fs::create_directory(path); }
  ~TempDir() { fs::remove_all(path); }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename());
    return names;
  }
  std::string path;
};

class AtomicFileModes : public ::testing::TestWithParam<AtomicFile::Mode> {};

TEST_P(AtomicFileModes, NothingUnderTheNameUntilCommit) {
  TempDir dir;
  const std::string target = dir.path + "/out.bin";
  {
    AtomicFile out(target, GetParam());
    out.write("hello ", 6);
    out.write_zeros(3);
    EXPECT_FALSE(fs::exists(target));
    out.commit();
  }
  EXPECT_EQ(testing::read_text(target), std::string("hello \0\0\0", 9));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.bin"});
}

TEST_P(AtomicFileModes, ReplacesAnExistingFileInOneStep) {
  TempDir dir;
  const std::string target = dir.path + "/out.bin";
  {
    AtomicFile first(target, GetParam());
    first.write("old", 3);
    first.commit();
  }
  {
    AtomicFile second(target, GetParam());
    second.write("new contents", 12);
    EXPECT_EQ(testing::read_text(target), "old");  // the previous file, until commit
    second.commit();
  }
  EXPECT_EQ(testing::read_text(target), "new contents");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.bin"});
}

TEST_P(AtomicFileModes, AbandonedFileLeavesNothing) {
  TempDir dir;
  {
    AtomicFile out(dir.path + "/out.bin", GetParam());
    out.write("partial", 7);
  }  // destroyed without commit, as when an exception unwinds
  EXPECT_TRUE(dir.entries().empty());
}

TEST_P(AtomicFileModes, SigtermWhileWritingLeavesNothing) {
  TempDir dir;
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    AtomicFile out(dir.path + "/out.bin", GetParam());
    out.write("partial", 7);
    ::raise(SIGTERM);
    ::_exit(0);  // not reached: SIGTERM's default action ends the process
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_TRUE(dir.entries().empty());
}

TEST_P(AtomicFileModes, WriteErrorsNameTheFileAndTheReason) {
  TempDir dir;
  const std::string target = dir.path + "/out.bin";
  // A file-size limit makes write() fail like a full disk does (EFBIG instead of ENOSPC).
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    try {
      AtomicFile out(target, GetParam());
      std::vector<char> big(1 << 16, 'x');
      out.write(big.data(), big.size());
      out.commit();
    } catch (const Error& e) {
      const std::string expected = target + ": cannot write: File too large";
      ::_exit(e.message() == expected ? 42 : 1);
    }
    ::_exit(2);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 42);
  EXPECT_TRUE(dir.entries().empty());
}

TEST_P(AtomicFileModes, ASymbolicLinkIsWrittenThrough) {
  TempDir dir;
  fs::create_directory(dir.path + "/real");
  const std::string link = dir.path + "/link.bin", dangling = dir.path + "/dangling.bin";
  fs::create_symlink("real/target.bin", link);                 // relative, to a file not there yet
  fs::create_symlink(dir.path + "/real/other.bin", dangling);  // absolute
  for (const std::string& path : {link, link, dangling}) {     // create, then replace
    AtomicFile out(path, GetParam());
    out.write("data", 4);
    out.commit();
  }
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_TRUE(fs::is_symlink(dangling));
  EXPECT_EQ(testing::read_text(dir.path + "/real/target.bin"), "data");
  EXPECT_EQ(testing::read_text(dir.path + "/real/other.bin"), "data");
  EXPECT_EQ(output_target(link), dir.path + "/real/target.bin");
}

INSTANTIATE_TEST_SUITE_P(Modes, AtomicFileModes,
                         ::testing::Values(AtomicFile::Mode::Auto, AtomicFile::Mode::NamedTemp),
                         [](const auto& info) {
                           return info.param == AtomicFile::Mode::Auto ? "Auto" : "NamedTemp";
                         });

TEST(AtomicFile, UsesAnAnonymousFileWhereTheFilesystemHasOne) {
  TempDir dir;
  AtomicFile out(dir.path + "/out.bin");
  EXPECT_TRUE(out.anonymous());  // /tmp on this project's machines: ext4 or tmpfs
  EXPECT_TRUE(dir.entries().empty());
}

TEST(AtomicFile, RemovesTemporariesOfDeadProcessesOnly) {
  TempDir dir;
  const pid_t dead = ::fork();
  ASSERT_GE(dead, 0);
  if (dead == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(dead, nullptr, 0), dead);
  const std::string stale = dir.path + "/.out.bin.toy-" + std::to_string(dead) + "-0123456789ab";
  const std::string live = dir.path + "/.out.bin.toy-" + std::to_string(::getpid()) + "-0a";
  const std::string other = dir.path + "/.other.bin.toy-" + std::to_string(dead) + "-0b";
  for (const std::string& path : {stale, live, other}) ::close(::creat(path.c_str(), 0644));
  AtomicFile out(dir.path + "/out.bin");
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(live));   // this process is running: maybe still writing it
  EXPECT_TRUE(fs::exists(other));  // another target's
}

TEST(AtomicFile, DevicesAndFifosAreWrittenInPlace) {
  {
    AtomicFile out("/dev/null");
    out.write("discarded", 9);
    out.commit();
  }
  struct stat st {};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));  // still the device, not a file renamed over it

  TempDir dir;
  const std::string fifo = dir.path + "/pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const pid_t reader = ::fork();
  ASSERT_GE(reader, 0);
  if (reader == 0) {
    char buffer[16] = {};
    const int fd = ::open(fifo.c_str(), O_RDONLY);
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    ::_exit(n == 5 && std::string(buffer, 5) == "hello" ? 0 : 1);
  }
  {
    AtomicFile out(fifo);
    out.write("hello", 5);
    out.commit();
  }
  int status = -1;
  ASSERT_EQ(::waitpid(reader, &status, 0), reader);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"pipe"});
}

TEST(AtomicFile, ALoopOfLinksIsNamed) {
  TempDir dir;
  fs::create_symlink(dir.path + "/b", dir.path + "/a");
  fs::create_symlink(dir.path + "/a", dir.path + "/b");
  try {
    AtomicFile out(dir.path + "/a");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.message(), dir.path + "/a: too many levels of symbolic links");
  }
}

TEST(AtomicFile, MissingDirectoryIsReportedWithErrnoText) {
  try {
    AtomicFile out("/nonexistent-dir/out.bin");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.message(),
              "/nonexistent-dir/out.bin: cannot create a file in /nonexistent-dir: No such file or "
              "directory");
  }
}

TEST(Error, KeepsEmbeddedNulBytesAndPrintsThemEscaped) {
  using namespace std::string_literals;
  const Error e("unsupported architecture 'llama\0x'"s);
  EXPECT_EQ(e.message().size(), 34u);
  EXPECT_EQ(printable(e.message()), "unsupported architecture 'llama\\x00x'");
  EXPECT_EQ(printable("a\nb\x1b[31m\x7f"), "a\\nb\\x1b[31m\\x7f");
  EXPECT_EQ(printable("na\xc3\xafve"), "na\xc3\xafve");  // UTF-8 is not a control byte
}

TEST(Error, FormatsByteSizes) {
  EXPECT_EQ(format_bytes(512), "512 bytes");
  EXPECT_EQ(format_bytes(3 * 1024), "3.00 KiB");
  EXPECT_EQ(format_bytes(1536ull << 20), "1.50 GiB");
}

}  // namespace
}  // namespace toy
