// toy chat end to end on a tiny random model that carries the phi-3 vocabulary
// and chat template: the conversation is formatted with the template, only the
// unseen part is fed each turn, and replies stream until end of turn.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

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

size_t occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(ChatCli, SlashCommands) {
  const std::string model = model_with_phi3_vocab();
  std::string output;
  const int rc = run_command(
      "printf '/help\\nHi\\n/clear\\n/system Be "
      "brief.\\nHello\\n/bogus\\n//slash\\n/exit\\nnever\\n' | " +
          binary_dir() + "/toy chat -m " + model + " --temp 0 -n 4 --show-prompt",
      &output);
  ASSERT_EQ(rc, 0) << output;
  EXPECT_NE(output.find("/system TEXT   set the system message"), std::string::npos) << output;
  EXPECT_NE(output.find("[prompt] <|user|>\nHi<|end|>\n<|assistant|>\n"), std::string::npos)
      << output;
  EXPECT_NE(output.find("toy chat: conversation cleared"), std::string::npos) << output;
  // After /clear and /system the conversation starts again, with the new system message.
  EXPECT_NE(output.find("[prompt] <|system|>\nBe brief.<|end|>\n<|user|>\nHello<|end|>\n"),
            std::string::npos)
      << output;
  EXPECT_NE(output.find("toy chat: unknown command '/bogus'; /help lists them"), std::string::npos)
      << output;
  EXPECT_NE(output.find("<|user|>\n/slash<|end|>"), std::string::npos) << output;
  EXPECT_EQ(output.find("never"), std::string::npos) << output;  // /exit ended the chat
  EXPECT_EQ(occurrences(output, "[4 tokens"), 3u) << output;
  std::remove(model.c_str());
}

TEST(ChatCli, DropsTheOldestTurnsAndKeepsChatting) {
  const std::string model = model_with_phi3_vocab();
  std::string output;
  std::string huge;
  for (int i = 0; i < 60; ++i) huge += "word ";
  const int rc =
      run_command("printf 'one\\ntwo\\nthree\\n" + huge + "\\nfour\\n' | " + binary_dir() +
                      "/toy chat -m " + model + " --temp 0 -n 8 -c 48 --show-prompt --system S",
                  &output);
  ASSERT_EQ(rc, 0) << output;
  EXPECT_NE(output.find("earlier turns are forgotten (dropped the oldest"), std::string::npos)
      << output;
  // The message that cannot fit at all is refused; the chat goes on with the next one.
  EXPECT_NE(output.find("does not fit the context of 48 tokens; not sent"), std::string::npos)
      << output;
  EXPECT_EQ(occurrences(output, "[8 tokens"), 4u) << output;
  // The system message survives every drop.
  const size_t last = output.rfind("[prompt] <|system|>\nS<|end|>");
  ASSERT_NE(last, std::string::npos) << output;
  EXPECT_EQ(output.find("<|user|>\none<|end|>", last), std::string::npos) << output;
  std::remove(model.c_str());
}

TEST(ChatCli, CtrlCStopsTheReplyNotTheProgram) {
  const std::string model = model_with_phi3_vocab();
  int to_chat[2], from_chat[2];
  ASSERT_EQ(::pipe(to_chat), 0);
  ASSERT_EQ(::pipe(from_chat), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGINT, SIG_DFL);
    ::dup2(to_chat[0], 0);
    ::dup2(from_chat[1], 1);
    ::dup2(from_chat[1], 2);
    ::close(to_chat[1]);
    ::close(from_chat[0]);
    const std::string toy = binary_dir() + "/toy";
    // -n -1, no end of turn and a long context: each reply goes on until interrupted (a
    // reply that ended by itself would meet the second Ctrl-C at the prompt instead).
    ::execl(toy.c_str(), toy.c_str(), "chat", "-m", model.c_str(), "--temp", "0", "-n", "-1",
            "--ignore-eos", "-c", "16384", "-t", "1", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(to_chat[0]);
  ::close(from_chat[1]);
  auto say = [&](const char* text) { ASSERT_GT(::write(to_chat[1], text, std::strlen(text)), 0); };
  // Reads the chat's output until `done` holds (or it ends): each Ctrl-C is sent while a reply
  // is streaming, whatever the machine's load, not after a fixed delay.
  std::string output;
  auto read_until = [&](auto done) {
    char buffer[4096];
    ssize_t n = 0;
    while (!done() && (n = ::read(from_chat[0], buffer, sizeof buffer)) > 0)
      output.append(buffer, n);
  };
  // A reply is streaming once 64 bytes have come after the last prompt marker.
  auto replying = [&] {
    const size_t prompt = output.rfind("\n> ");
    return prompt != std::string::npos && output.size() > prompt + 64;
  };
  auto interrupted = [&](size_t times) {
    return [&, times] { return occurrences(output, "reply interrupted (Ctrl-C)") >= times; };
  };
  say("Hi\n");
  read_until(replying);
  ::kill(pid, SIGINT);
  read_until(interrupted(1));
  say("Again\n");
  read_until([&] { return replying() && output.rfind("\n> ") > output.find("reply interrupted"); });
  ::kill(pid, SIGINT);
  read_until(interrupted(2));
  ::close(to_chat[1]);  // Ctrl-D
  read_until([] { return false; });
  ::close(from_chat[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_EQ(occurrences(output, "reply interrupted (Ctrl-C)"), 2u) << output;
  EXPECT_EQ(occurrences(output, " tokens, "), 2u) << output;
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
