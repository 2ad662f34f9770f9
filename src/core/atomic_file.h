// AtomicFile: the one way toy writes an output file. The file appears under its
// name complete or not at all — after an error, Ctrl-C, SIGTERM or kill -9 the
// target is either untouched (the previous file, or nothing) or the new
// complete file, and no temporary is left behind.
//
// On Linux the data goes to an anonymous file in the target's directory
// (open(O_TMPFILE)): it has no name until commit() links it in, so a killed
// process leaves nothing — the kernel frees it with the last descriptor. Where
// the filesystem has no O_TMPFILE (some network and FUSE filesystems), a hidden
// named temporary `.NAME.toy-PID-RANDOM` is used instead: it is unlinked on
// error and by a SIGINT/SIGTERM/SIGHUP handler, and one left by a kill -9 (its
// PID no longer running) is removed by the next AtomicFile for the same target.
//
// A symbolic link as `path` is written through, as a shell redirect or cp would: the link
// stays and the file it names is replaced. A device, FIFO or socket (/dev/null, /dev/stdout,
// a named pipe) is written in place: there is no file there to replace.
//
//   AtomicFile out(path);          // fails now (with errno text) if it cannot be created
//   out.write(bytes, n);           // ENOSPC etc. → toy::Error naming the file
//   out.commit();                  // fsync, then atomically replace `path`
//   // destroyed without commit(): nothing appears under `path`
#pragma once

#include <cstdint>
#include <string>

namespace toy {

class AtomicFile {
 public:
  enum class Mode {
    Auto,       // O_TMPFILE if the filesystem supports it, else a named temporary
    NamedTemp,  // always the named temporary (tests of the fallback)
  };

  explicit AtomicFile(std::string path, Mode mode = Mode::Auto);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Appends bytes (retrying short writes and EINTR).
  void write(const void* data, uint64_t size);
  void write_zeros(uint64_t count);
  // Makes the data durable and gives it the final name, replacing any file there
  // in one rename. After commit() the object only closes.
  void commit();

  const std::string& path() const { return path_; }
  // True when the data has no name until commit() (O_TMPFILE, or a device written in place).
  bool anonymous() const { return temp_.empty(); }
  uint64_t bytes_written() const { return written_; }

 private:
  [[noreturn]] void fail_errno(const char* what, int err) const;
  void discard() noexcept;

  std::string path_;
  std::string target_;  // path_ with symbolic links followed: the file replaced
  std::string dir_;     // target_'s directory
  std::string temp_;    // the named temporary (fallback), empty with O_TMPFILE
  int fd_ = -1;
  int cleanup_slot_ = -1;  // signal-cleanup registration of temp_
  uint64_t written_ = 0;
  bool committed_ = false;
  bool in_place_ = false;  // a device, FIFO or socket: written directly
};

// `path` with symbolic links followed (also a dangling one: the file it would create);
// `path` itself when it is not a link. Throws toy::Error on a loop of links.
std::string output_target(const std::string& path);

}  // namespace toy
