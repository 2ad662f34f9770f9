// toy train's data end to end: for every --vocab mode, `toy tokenize` of the
// training text with the written model gives exactly the ids training read
// (--dump-tokens); JSON-lines data (chat messages, --pack, --train-on-prompt)
// trains; bad lines and misplaced flags fail with messages naming them.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "support/fixtures.h"

namespace {

using toy::testing::binary_dir;
using toy::testing::fixture_path;
using toy::testing::read_text;
using toy::testing::run_command;
using toy::testing::temp_path;

const std::string kTiny =
    " --n-embd 16 --n-layer 1 --n-head 2 --n-ff 32 --ctx 16 --batch 2 --steps 2"
    " --eval-batches 1 -t 1 -q";

std::string write_temp(const std::string& suffix, const std::string& text) {
  const std::string path = temp_path(suffix);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// Text with what used to differ between training and inference: spaces (a byte
// vocabulary trained them as <0x20>), runs of spaces, tabs, CRLF, non-ASCII, a literal
// "<s>" and a character that is not in a character vocabulary built from the rest.
std::string corpus() {
  static const std::string path = write_temp(
      ".txt", read_text(fixture_path("text/tinyshakespeare.txt")).substr(0, 6000) +
                  "\n  two  spaces\tand a tab\r\nna\xC3\xAFve caf\xC3\xA9 <s> \xE2\x82\xAC end\n");
  return path;
}

class TrainTokenization : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainTokenization, ToyTokenizeOfTheTrainingTextGivesTheTrainingIds) {
  const std::string out = temp_path(".gguf"), dump = temp_path(".ids"), ids = temp_path(".ids");
  std::string output;
  ASSERT_EQ(run_command(binary_dir() + "/toy train -o " + out + " --data " + corpus() + " " +
                            GetParam() + " --dump-tokens " + dump + kTiny,
                        &output),
            0)
      << output;
  ASSERT_EQ(
      run_command(binary_dir() + "/toy tokenize -m " + out + " --file " + corpus() + " > " + ids,
                  &output),
      0)
      << output;
  const std::string trained = read_text(dump), tokenized = read_text(ids);
  EXPECT_GT(trained.size(), 6000u);
  EXPECT_TRUE(trained == tokenized) << "training and `toy tokenize` disagree for " << GetParam();
  for (const std::string& path : {out, dump, ids}) std::remove(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(
    EveryVocabMode, TrainTokenization,
    ::testing::Values("--vocab byte", "--vocab chars",
                      "--vocab-from " + fixture_path("tokenizer/ggml-vocab-llama-spm.gguf"),
                      "--vocab-from " + fixture_path("tokenizer/ggml-vocab-gpt-2.gguf")));

// Twenty short conversations and prompt/completion pairs.
std::string chat_jsonl() {
  std::string text;
  for (int i = 0; i < 20; ++i) {
    const std::string n = std::to_string(i);
    text += R"({"messages": [{"role": "user", "content": "What is )" + n +
            R"( plus one?"}, {"role": "assistant", "content": ")" + std::to_string(i + 1) +
            "\"}]}\n";
    text +=
        R"({"prompt": "Count: )" + n + R"(", "completion": " )" + std::to_string(i + 1) + "\"}\n";
  }
  return text;
}

TEST(TrainJsonl, ChatDataTrainsPackedAndUnpacked) {
  const std::string data = write_temp(".jsonl", chat_jsonl());
  const std::string out = temp_path(".gguf");
  for (const std::string flags : {"", " --pack", " --pack --train-on-prompt --vocab chars"}) {
    std::string output;
    ASSERT_EQ(run_command(binary_dir() + "/toy train -o " + out + " --data " + data + flags +
                              " --n-embd 16 --n-layer 1 --n-head 2 --n-ff 32 --ctx 128 --batch 2"
                              " --steps 2 --eval-batches 1 -t 1",
                          &output),
              0)
        << flags << "\n"
        << output;
    EXPECT_NE(output.find("final: steps 2"), std::string::npos) << output;
    EXPECT_NE(output.find("36 examples"), std::string::npos) << output;  // 40, 4 held out
  }
  // --jsonl reads JSON lines from a file of any name.
  const std::string renamed = write_temp(".data", chat_jsonl());
  std::string output;
  EXPECT_EQ(run_command(binary_dir() + "/toy train -o " + out + " --data " + renamed +
                            " --jsonl --n-embd 16 --n-layer 1 --n-head 2 --n-ff 32 --ctx 128"
                            " --batch 2 --steps 1 -t 1 -q",
                        &output),
            0)
      << output;
  for (const std::string& path : {data, renamed, out}) std::remove(path.c_str());
}

TEST(TrainJsonl, BadLinesAndMisplacedFlagsFailWithAMessage) {
  const std::string data =
      write_temp(".jsonl", "{\"text\": \"fine\"}\n{\"prompt\": \"no completion\"}\n");
  const std::string out = temp_path(".gguf");
  std::string output;
  EXPECT_EQ(run_command(binary_dir() + "/toy train -o " + out + " --data " + data + kTiny, &output),
            1);
  EXPECT_NE(output.find(data + ":2: \"prompt\" without \"completion\""), std::string::npos)
      << output;
  EXPECT_EQ(
      run_command(binary_dir() + "/toy train -o " + out + " --data " + corpus() + " --pack" + kTiny,
                  &output),
      1);
  EXPECT_NE(output.find("--pack needs JSON-lines data"), std::string::npos) << output;
  EXPECT_EQ(run_command(binary_dir() + "/toy train -o " + out + " --data " + corpus() +
                            " --train-on-prompt" + kTiny,
                        &output),
            1);
  EXPECT_NE(output.find("--train-on-prompt needs JSON-lines data"), std::string::npos) << output;
  std::FILE* f = std::fopen(out.c_str(), "rb");
  EXPECT_EQ(f, nullptr);  // nothing written
  if (f) std::fclose(f);
  std::remove(data.c_str());
}

}  // namespace
