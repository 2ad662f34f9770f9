#include "cli/process_group.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

namespace toy::cli {
namespace {

std::unique_ptr<train::Communicator>& group() {
  static std::unique_ptr<train::Communicator> g;
  return g;
}

}  // namespace

void connect_process_group(int* argc, char*** argv) {
  group() = train::connect_process_group(argc, argv);
}

train::Communicator& process_group() {
  if (!group()) group() = train::single_process();
  return *group();
}

void report_error(const std::string& line) {
  train::Communicator& g = process_group();
  if (g.size() == 1) {
    std::fprintf(stderr, "%s\n", line.c_str());
    return;
  }
  if (g.rank() != 0) {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    std::fprintf(stderr, "rank %d: %s\n", g.rank(), line.c_str());
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
  g.abort(1);
}

}  // namespace toy::cli
