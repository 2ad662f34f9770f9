// toy chat end to end on a tiny random model that carries the phi-3 vocabulary
// and chat template: the conversation is formatted with the template, only the
// unseen part is fed each turn, and replies stream until end of turn.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "gguf/copy.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "support/fixtures.h"

namespace {

using toy::testing::binary_dir;
using toy::testing::fixture_path;
using toy::testing::run_command;
using toy::testing::temp_path;

// A random llama model (toy init) with the tokenizer.* keys of the phi-3 vocabulary.
std::string model_with_phi3_vocab() {
  const std::string random_model = temp_path(".gguf");
  std::string output;
  EXPECT_EQ(run_command(binary_dir() + "/toy init --n-embd 32 --n-layer 1 --n-head 2 --n-ff 64 " +
                            "--vocab 32064 --ctx 256 --seed 7 -o " + random_model,
                        &output),
            0)
      << output;
  auto model = toy::gguf::File::open(random_model);
  auto vocab = toy::gguf::File::open(fixture_path("tokenizer/ggml-vocab-phi-3.gguf"));
  toy::gguf::Writer writer;
  toy::gguf::copy_metadata(*model, writer);
  for (size_t i = 0; i < vocab->metadata_count(); ++i) {
    const toy::gguf::ValueRef value = vocab->metadata(i);
    if (value.key().rfind("tokenizer.", 0) == 0)
      writer.set(std::string(value.key()), value.to_value());
  }
  toy::gguf::copy_tensors(*model, writer);
  const std::string path = temp_path(".gguf");
  writer.write(path);
  std::remove(random_model.c_str());
  return path;
}

TEST(ChatCli, TwoTurnsWithThePhi3Template) {
  const std::string model = model_with_phi3_vocab();
  std::string output;
  const int rc = run_command("printf 'Hi\\nHow are you?\\n' | " + binary_dir() + "/toy chat -m " +
                                 model + " --temp 0 -n 6 --show-prompt --system 'Be brief.'",
                             &output);
  ASSERT_EQ(rc, 0) << output;
  EXPECT_NE(output.find("phi3 template"), std::string::npos) << output;
  // First turn: the whole conversation so far, opened for the assistant.
  EXPECT_NE(output.find("[prompt] <|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n"
                        "<|assistant|>\n"),
            std::string::npos)
      << output;
  // Second turn: only what follows the first reply (its end marker and the new message).
  EXPECT_NE(output.find("[prompt] <|end|>\n<|user|>\nHow are you?<|end|>\n<|assistant|>\n"),
            std::string::npos)
      << output;
  EXPECT_NE(output.find("[6 tokens"), std::string::npos) << output;
  std::remove(model.c_str());
}

TEST(ChatCli, StartsOverWhenTheContextIsFull) {
  const std::string model = model_with_phi3_vocab();
  std::string output;
  const int rc = run_command("printf 'Hi\\nAgain\\n' | " + binary_dir() + "/toy chat -m " + model +
                                 " --temp 0 -n 100 -c 40 --show-prompt",
                             &output);
  ASSERT_EQ(rc, 0) << output;
  EXPECT_NE(output.find("earlier turns are forgotten"), std::string::npos) << output;
  // After the reset the conversation is formatted from the start again.
  EXPECT_NE(output.find("[prompt] <|user|>\nAgain<|end|>\n<|assistant|>\n"), std::string::npos)
      << output;
  std::remove(model.c_str());
}

TEST(ChatCli, ModelWithoutVocabularyIsAnError) {
  std::string output;
  EXPECT_EQ(run_command("printf 'Hi\\n' | " + binary_dir() + "/toy chat -m " +
                            fixture_path("models/llama.gguf"),
                        &output),
            1);
  EXPECT_NE(output.find("no vocabulary"), std::string::npos) << output;
}

}  // namespace
