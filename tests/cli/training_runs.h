// What the CLI training tests read back from a `toy train` / `toy finetune` run: the
// per-step losses of its progress output and the tensors of the file it wrote.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <regex>
#include <string>
#include <vector>

#include "gguf/reader.h"

namespace toy::testing {

// Per-step losses printed on a pipe ("step N/M | loss X | ..."), as "N:X".
inline std::vector<std::string> step_losses(const std::string& output) {
  std::vector<std::string> losses;
  const std::regex re(R"(step (\d+)/\d+ \| loss ([0-9.]+))");
  for (auto it = std::sregex_iterator(output.begin(), output.end(), re);
       it != std::sregex_iterator(); ++it)
    losses.push_back((*it)[1].str() + ":" + (*it)[2].str());
  return losses;
}

// Both GGUF files hold the same tensors, bit for bit (metadata such as general.name may
// differ: it is the output's file name).
inline void expect_same_tensors(const std::string& path_a, const std::string& path_b) {
  const auto file_a = gguf::File::open(path_a), file_b = gguf::File::open(path_b);
  ASSERT_EQ(file_a->tensors().size(), file_b->tensors().size());
  for (const gguf::TensorInfo& info : file_a->tensors()) {
    const Tensor ta = file_a->tensor(info), tb = file_b->tensor(info.name);
    ASSERT_EQ(ta.bytes(), tb.bytes()) << info.name;
    EXPECT_EQ(std::memcmp(ta.data, tb.data, ta.bytes()), 0) << info.name;
  }
}

}  // namespace toy::testing
