# Cross-compiling toy for ARM64 Linux on an x86-64 Debian machine, with Debian's
# g++-aarch64-linux-gnu and the arm64 multiarch packages of the libraries
# (libpcre2-dev:arm64, libgtest-dev:arm64); scripts/test-aarch64.sh installs them
# and runs the tests under qemu-user. Use:
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# find_package / find_library look in /usr/lib/aarch64-linux-gnu (multiarch).
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# Built programs (gtest discovery, tests) run under user-mode emulation; qemu's
# default CPU ("max") has dotprod, fp16 and i8mm, so the NEON backend runs.
# The arm64 multiarch packages bring a second arm64 glibc (/usr/lib/aarch64-linux-gnu);
# the loader of /usr/aarch64-linux-gnu must load its own libc, not that one (a
# mismatched pair hangs in the first pthread_create), hence LD_LIBRARY_PATH.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu -E
                                  LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib)
# pkg-config must describe the arm64 libraries, not the host's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
