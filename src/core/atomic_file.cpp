#include "core/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <mutex>

#include "core/error.h"

namespace toy {
namespace {

// ---- Removal of named temporaries when a signal ends the process ----------------------------
//
// A process-wide table because a signal handler can reach nothing else. Only async-signal-safe
// calls happen in the handler: reading the table (published with release/acquire atomics),
// unlink, sigaction, raise.

constexpr int kCleanupSlots = 16;
constexpr int kCleanupSignals[] = {SIGINT, SIGTERM, SIGHUP};
constexpr int kSignalCount = sizeof(kCleanupSignals) / sizeof(kCleanupSignals[0]);

struct CleanupSlot {
  std::atomic<bool> claimed{false};  // owned by an AtomicFile
  std::atomic<bool> armed{false};    // path is complete and should be removed on a signal
  char path[PATH_MAX];
};
CleanupSlot g_slots[kCleanupSlots];
struct sigaction g_previous[kSignalCount];

void on_signal(int sig) {
  const int saved_errno = errno;
  for (CleanupSlot& slot : g_slots)
    if (slot.armed.load(std::memory_order_acquire)) ::unlink(slot.path);
  for (int i = 0; i < kSignalCount; ++i) {
    if (kCleanupSignals[i] != sig) continue;
    const struct sigaction& prev = g_previous[i];
    if (prev.sa_handler == SIG_DFL) {
      // Terminate as the signal would have: the re-raised signal is delivered when this
      // handler returns (it is blocked while the handler runs).
      ::sigaction(sig, &prev, nullptr);
      ::raise(sig);
    } else if (prev.sa_flags & SA_SIGINFO) {
      prev.sa_sigaction(sig, nullptr, nullptr);
    } else if (prev.sa_handler != SIG_IGN) {
      prev.sa_handler(sig);
    }
  }
  errno = saved_errno;
}

void install_handlers_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int i = 0; i < kSignalCount; ++i) {
      struct sigaction current {};
      ::sigaction(kCleanupSignals[i], nullptr, &current);
      g_previous[i] = current;
      // An ignored signal (nohup's SIGHUP) does not end the process: nothing to clean up.
      if (current.sa_handler == SIG_IGN) continue;
      struct sigaction action {};
      action.sa_handler = on_signal;
      sigemptyset(&action.sa_mask);
      action.sa_flags = SA_RESTART;
      ::sigaction(kCleanupSignals[i], &action, nullptr);
    }
  });
}

// Registers `path` for removal on a signal; returns the slot (-1 when the table is full, which
// only loses the signal-time cleanup: stale temporaries are still removed by the next run).
int register_cleanup(const std::string& path) {
  if (path.size() >= PATH_MAX) return -1;
  install_handlers_once();
  for (int i = 0; i < kCleanupSlots; ++i) {
    bool expected = false;
    if (!g_slots[i].claimed.compare_exchange_strong(expected, true)) continue;
    std::memcpy(g_slots[i].path, path.c_str(), path.size() + 1);
    g_slots[i].armed.store(true, std::memory_order_release);
    return i;
  }
  return -1;
}

void unregister_cleanup(int slot) {
  if (slot < 0) return;
  g_slots[slot].armed.store(false, std::memory_order_release);
  g_slots[slot].claimed.store(false, std::memory_order_release);
}

// ---- Names --------------------------------------------------------------------------------

std::string directory_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_name(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// ".NAME.toy-" — every temporary of a target starts with this, followed by "PID-RANDOM".
std::string temp_prefix(const std::string& path) {
  return "." + base_name(path) + ".toy-";
}

std::string temp_name(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  const uint64_t mix =
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
      (counter.fetch_add(1) * 0x9E3779B97F4A7C15ull);
  char suffix[48];
  std::snprintf(suffix, sizeof(suffix), "%ld-%012llx", static_cast<long>(::getpid()),
                static_cast<unsigned long long>(mix & 0xFFFFFFFFFFFFull));
  const std::string dir = directory_of(path);
  return (dir == "/" ? "/" : dir + "/") + temp_prefix(path) + suffix;
}

// Removes temporaries of `path` whose process no longer exists (left by kill -9, or by a power
// loss between link and rename). A live process's temporaries are left alone.
void remove_stale_temporaries(const std::string& path) {
  const std::string dir = directory_of(path);
  const std::string prefix = temp_prefix(path);
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (const dirent* entry = ::readdir(d)) {
    const std::string_view name = entry->d_name;
    if (!name.starts_with(prefix)) continue;
    const std::string rest(name.substr(prefix.size()));
    char* end = nullptr;
    const long pid = std::strtol(rest.c_str(), &end, 10);
    if (pid <= 0 || end == rest.c_str() || *end != '-') continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    ::unlinkat(::dirfd(d), std::string(name).c_str(), 0);
  }
  ::closedir(d);
}

// Gives the anonymous file `fd` the name `name`. AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH;
// /proc/self/fd works for everyone else.
int link_anonymous(int fd, const std::string& name) {
  if (::linkat(fd, "", AT_FDCWD, name.c_str(), AT_EMPTY_PATH) == 0) return 0;
  if (errno == EEXIST) return -1;
  const std::string proc = "/proc/self/fd/" + std::to_string(fd);
  return ::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW);
}

}  // namespace

std::string output_target(const std::string& path) {
  std::string p = path;
  for (int hops = 0; hops < 40; ++hops) {  // Linux's own limit (ELOOP)
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return p;
    char buffer[PATH_MAX];
    const ssize_t n = ::readlink(p.c_str(), buffer, sizeof(buffer));
    if (n < 0 || n >= static_cast<ssize_t>(sizeof(buffer))) return p;
    const std::string link(buffer, static_cast<size_t>(n));
    const std::string dir = directory_of(p);
    p = link.starts_with('/') ? link : (dir == "/" ? "/" : dir + "/") + link;
  }
  fail(path, ": too many levels of symbolic links");
}

AtomicFile::AtomicFile(std::string path, Mode mode) : path_(std::move(path)) {
  if (path_.empty()) fail("output path is empty");
  if (path_.back() == '/') fail(path_, ": is a directory path; expected a file name");
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    // Renaming a new file over /dev/null would replace the device for every program.
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) fail_errno("cannot open", errno);
    in_place_ = true;
    return;
  }
  target_ = output_target(path_);
  dir_ = directory_of(target_);
  remove_stale_temporaries(target_);
  if (mode == Mode::Auto) {
    // Mode 0666: the umask decides, as for any file a Unix tool creates.
    fd_ = ::open(dir_.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
    if (fd_ >= 0) return;
    // Only "the filesystem cannot" falls back; other errors (EACCES, ENOENT, ENOSPC) are real.
    const int err = errno;
    if (err != EOPNOTSUPP && err != EISDIR && err != EINVAL)
      fail_errno(str("cannot create a file in ", dir_).c_str(), err);
  }
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string name = temp_name(target_);
    // Registered before it exists, so no instant passes in which a signal would leave it.
    cleanup_slot_ = register_cleanup(name);
    fd_ = ::open(name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
    if (fd_ >= 0) {
      temp_ = std::move(name);
      return;
    }
    const int err = errno;
    unregister_cleanup(cleanup_slot_);
    cleanup_slot_ = -1;
    if (err != EEXIST) fail_errno(str("cannot create a temporary file in ", dir_).c_str(), err);
  }
  fail(path_, ": cannot find an unused temporary name in ", dir_);
}

AtomicFile::~AtomicFile() {
  discard();
}

void AtomicFile::discard() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_.empty() && !committed_) ::unlink(temp_.c_str());
  unregister_cleanup(cleanup_slot_);
  cleanup_slot_ = -1;
}

void AtomicFile::fail_errno(const char* what, int err) const {
  fail(path_, ": ", what, ": ", std::strerror(err));
}

void AtomicFile::write(const void* data, uint64_t size) {
  TOY_CHECK(fd_ >= 0 && !committed_, "AtomicFile::write after commit or failure");
  const auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(size, 1u << 30));
    const ssize_t n = ::write(fd_, p, chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_errno("cannot write", errno);
    }
    p += n;
    size -= static_cast<uint64_t>(n);
    written_ += static_cast<uint64_t>(n);
  }
}

void AtomicFile::write_zeros(uint64_t count) {
  static const uint8_t kZeros[4096] = {};
  while (count > 0) {
    const uint64_t n = std::min<uint64_t>(count, sizeof(kZeros));
    write(kZeros, n);
    count -= n;
  }
}

void AtomicFile::commit() {
  TOY_CHECK(fd_ >= 0 && !committed_, "AtomicFile::commit twice or after failure");
  if (in_place_) {
    committed_ = true;
    const int closed = ::close(fd_);
    fd_ = -1;
    if (closed != 0) fail_errno("error closing the written file", errno);
    return;
  }
  if (::fsync(fd_) != 0) fail_errno("cannot flush to disk (fsync)", errno);
  if (temp_.empty()) {
    // Link straight to the target when it does not exist yet; otherwise link under a
    // temporary name and rename that over the target (link cannot replace a file).
    if (link_anonymous(fd_, target_) != 0) {
      if (errno != EEXIST) fail_errno("cannot link the written file into place", errno);
      for (int attempt = 0; temp_.empty(); ++attempt) {
        std::string name = temp_name(target_);
        cleanup_slot_ = register_cleanup(name);
        if (link_anonymous(fd_, name) == 0) {
          temp_ = std::move(name);
          break;
        }
        const int err = errno;
        unregister_cleanup(cleanup_slot_);
        cleanup_slot_ = -1;
        if (err != EEXIST || attempt >= 100)
          fail_errno("cannot link the written file into place", err);
      }
    }
  }
  if (!temp_.empty() && ::rename(temp_.c_str(), target_.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp_.c_str());
    temp_.clear();
    fail_errno("cannot rename the written file into place", err);
  }
  committed_ = true;
  const int closed = ::close(fd_);
  const int close_errno = errno;
  fd_ = -1;
  unregister_cleanup(cleanup_slot_);
  cleanup_slot_ = -1;
  // Data was fsync'ed above, so a close error cannot mean lost data; report it anyway (NFS).
  if (closed != 0) fail_errno("error closing the written file", close_errno);
  // Make the new name durable; failing here cannot undo the file, so it is best effort.
  const int dir_fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

}  // namespace toy
