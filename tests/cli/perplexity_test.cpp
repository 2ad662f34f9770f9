// `toy perplexity` end to end against llama.cpp's numbers for the same model, text and
// chunking. The constants were produced on this project's machine by
//   llama-ref.sh ppl stories260K.gguf tinyshakespeare.txt CTX 8
// (../shared/bench/llama-ref.sh, files from ../shared/fixtures/models and /text)
// for CTX = 64 and 128 (llama.cpp mid-2025, F32 KV cache; 4 decimals as printed), and are
// kept here because CI may not have llama.cpp built.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <regex>
#include <string>
#include <vector>

#include "support/fixtures.h"

namespace {

using toy::testing::binary_dir;
using toy::testing::fixture_path;
using toy::testing::run_command;

struct LlamaCppPerplexity {
  int ctx;
  std::vector<double> running;  // [1] .. [8]
};

const LlamaCppPerplexity kReference[] = {
    {64, {39.0277, 68.5057, 59.5852, 58.0069, 59.2719, 63.9656, 61.7280, 58.8651}},
    {128, {69.1915, 56.2755, 58.3962, 57.2366, 61.8520, 57.6768, 56.2394, 56.5420}},
};

std::string run_ppl(const std::string& args, int* status) {
  std::string out;
  *status = run_command(binary_dir() + "/toy perplexity -m " +
                            fixture_path("models/stories260K.gguf") + " " + args + " 2>&1",
                        &out);
  return out;
}

std::vector<double> running_estimates(const std::string& out) {
  std::vector<double> v;
  const std::regex chunk(R"(\[(\d+)\]([0-9.]+),)");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), chunk); it != std::sregex_iterator();
       ++it)
    v.push_back(std::stod((*it)[2]));
  return v;
}

double final_ppl(const std::string& out, double* uncertainty) {
  std::smatch m;
  const std::regex final_line(R"(Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+))");
  if (!std::regex_search(out, m, final_line)) return NAN;
  *uncertainty = std::stod(m[2]);
  return std::stod(m[1]);
}

TEST(ToyPerplexity, MatchesLlamaCpp) {
  const std::string text = fixture_path("text/tinyshakespeare.txt");
  for (const auto& ref : kReference) {
    for (const std::string extra : {"", " -b 48 --kv-type f32 --exact -t 1"}) {
      int status = -1;
      const std::string out =
          run_ppl("-f " + text + " -c " + std::to_string(ref.ctx) + " --chunks 8" + extra, &status);
      ASSERT_EQ(status, 0) << out;
      const auto running = running_estimates(out);
      ASSERT_EQ(running.size(), ref.running.size()) << out;
      for (size_t i = 0; i < running.size(); ++i)
        EXPECT_NEAR(running[i], ref.running[i], 1e-3 * ref.running[i])
            << "ctx " << ref.ctx << extra << " chunk " << i + 1;
      double uncertainty = 0;
      const double ppl = final_ppl(out, &uncertainty);
      EXPECT_NEAR(ppl, ref.running.back(), 1e-3 * ref.running.back()) << out;
      // A standard error of a mean over ~250-500 tokens: a few percent of the PPL.
      EXPECT_GT(uncertainty, 0.005 * ppl) << out;
      EXPECT_LT(uncertainty, 0.5 * ppl) << out;
    }
  }
}

TEST(ToyPerplexity, ShortTextAndBadFlagsAreErrors) {
  int status = -1;
  // 2 chunks of 512 tokens need 1024 tokens; a few bytes of text have far fewer.
  std::string out;
  status = run_command("printf 'a short text' | " + binary_dir() + "/toy perplexity -m " +
                           fixture_path("models/stories260K.gguf") + " -f - -c 256 2>&1",
                       &out);
  EXPECT_NE(status, 0);
  EXPECT_NE(out.find("needs at least 512"), std::string::npos) << out;
  out = run_ppl("-f /nonexistent.txt", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(out.find("-f /nonexistent.txt"), std::string::npos) << out;
  out = run_ppl("-f " + fixture_path("text/tinyshakespeare.txt") + " --chunks -2", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(out.find("--chunks"), std::string::npos) << out;
}

}  // namespace
