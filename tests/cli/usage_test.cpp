// The command line as a user meets it (issue 10): every bad value refused before any work,
// naming the flag and its range, in one line with exit code 1 and the help hint; llama.cpp's
// flag habits (-ngl, --version, -f, -p -, -e, -n -1, -c everywhere); `--` ending options;
// token id lists in the form `toy tokenize` prints them.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "support/fixtures.h"

namespace toy {
namespace {

namespace fs = std::filesystem;
using testing::fixture_path;
using testing::temp_path;

std::string toy_binary() {
  return "'" + testing::binary_dir() + "/toy'";
}

// Runs `toy ARGS` (stdout and stderr together); returns the exit status.
using toy::testing::run_toy;

// Runs `toy ARGS` keeping stdout only.
int toy_stdout(const std::string& args, std::string* output) {
  return testing::run_command("(" + toy_binary() + " " + args + " 2>/dev/null)", output);
}

std::string stories() {
  return fixture_path("models/stories260K.gguf");
}

// The first 20 kB of tinyshakespeare in a temporary file.
std::string corpus() {
  static const std::string path = [] {
    const std::string p = temp_path(".txt");
    std::ofstream(p)
        << testing::read_text(fixture_path("text/tinyshakespeare.txt")).substr(0, 20000);
    return p;
  }();
  return path;
}

const char* kTinyTrain = " --n-embd 16 --n-layer 1 --n-head 2 --n-ff 32 --batch 2 -q";

// A usage error: exit 1 and exactly one line, "toy CMD: error: MESSAGE (see toy CMD --help)".
void expect_usage_error(const std::string& command, const std::string& args,
                        const std::string& message) {
  std::string output;
  EXPECT_EQ(run_toy(command + " " + args, &output), 1) << command << " " << args << "\n" << output;
  const std::string line =
      "toy " + command + ": error: " + message + " (see toy " + command + " --help)\n";
  EXPECT_EQ(output, line) << command << " " << args;
}

TEST(Usage, SamplingValuesAreRefusedWithTheFlagAndTheRange) {
  const std::string base = "-m " + stories() + " -p hi ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--temp nan", "--temp: must be in [0, inf), got nan"},
      {"--temp inf", "--temp: must be in [0, inf), got inf"},
      {"--temp -0.5", "--temp: must be in [0, inf), got -0.5"},
      {"--top-p 0", "--top-p: must be in (0, 1], got 0"},
      {"--top-p 1.5", "--top-p: must be in (0, 1], got 1.5"},
      {"--top-k -1", "--top-k: must be in [0, inf), got -1"},
      {"--min-p nan", "--min-p: must be in [0, 1], got nan"},
      {"--repeat-penalty inf", "--repeat-penalty: must be in (0, inf), got inf"},
      {"-c -1", "--ctx-size: must be in [0, inf), got -1"},
      {"-n -2", "--n-predict: must be in [-1, inf), got -2"},
      {"-t 0", "--threads: must be in [1, inf), got 0"},
      {"-t -2", "--threads: must be in [1, inf), got -2"},
      {"--temp abc", "--temp: expected a number in [0, inf), got 'abc'"},
  };
  for (const auto& [flag, message] : cases) expect_usage_error("generate", base + flag, message);
  expect_usage_error("chat", "-m " + stories() + " --repeat-penalty 0",
                     "--repeat-penalty: must be in (0, inf), got 0");
  expect_usage_error("bench", "-m " + stories() + " -t 0", "--threads: must be in [1, inf), got 0");
  expect_usage_error("bench", "-m " + stories() + " -t -2",
                     "--threads: must be in [1, inf), got -2");
  expect_usage_error("logits", "-m " + stories() + " --tokens 1 -o x -t 0",
                     "--threads: must be in [1, inf), got 0");
  expect_usage_error("quantize", "a b q8_0 -t 0", "--threads: must be in [1, inf), got 0");
}

TEST(Usage, TrainValuesAreRefusedBeforeTrainingStarts) {
  const std::string out = temp_path(".gguf");
  const std::string base = "-o " + out + " --data " + corpus() + kTinyTrain + " -c 16 --steps 5 ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--beta1 1", "--beta1: must be in [0, 1), got 1"},
      {"--beta2 -0.1", "--beta2: must be in [0, 1), got -0.1"},
      {"--adam-eps 0", "--adam-eps: must be in (0, inf), got 0"},
      {"--grad-clip nan", "--grad-clip: must be in [0, inf), got nan"},
      {"--warmup -1", "--warmup: must be in [0, inf), got -1"},
      {"--min-lr nan", "--min-lr: must be in [0, inf), got nan"},
      {"--lr inf", "--lr: must be in (0, inf), got inf"},
      {"--rms-eps 0", "--rms-eps: must be in (0, inf), got 0"},
      {"--rms-eps 1e-50", "--rms-eps: must be in (0, inf), got 0"},
      {"--rope-base 0", "--rope-base: must be in (0, inf), got 0"},
      {"--init-scale nan", "--init-scale: must be in [0, inf), got nan"},
      {"--weight-decay nan", "--weight-decay: must be in [0, inf), got nan"},
      {"--eval-every -1", "--eval-every: must be in [0, inf), got -1"},
      {"--save-every -1", "--save-every: must be in [0, inf), got -1"},
      {"-t -2", "--threads: must be in [1, inf), got -2"},
  };
  for (const auto& [flag, message] : cases) {
    expect_usage_error("train", base + flag, message);
    EXPECT_FALSE(fs::exists(out)) << flag;
  }
  expect_usage_error("init", "--n-embd 8 --n-layer 1 --n-head 2 --n-ff 8 --vocab 8 -t 0 -o " + out,
                     "--threads: must be in [1, inf), got 0");
}

TEST(Usage, ParseErrorsAreOneLineWithExitCode1) {
  // The unknown flag is the mistake, not the -m it pushed out of view.
  expect_usage_error("generate", "--bogus", "unknown option '--bogus'");
  expect_usage_error("quantize", "", "input is required");
  expect_usage_error("info", "a b", "The following argument was not expected: b");
  expect_usage_error("generate", "-m " + stories() + " -p hi -n many",
                     "--n-predict: expected a number in [-1, inf), got 'many'");
  expect_usage_error("generate", "-m " + stories(),
                     "give a prompt with -p TEXT, -f FILE or --tokens IDS");
  std::string output;
  EXPECT_EQ(run_toy("", &output), 2);  // no command at all
  EXPECT_EQ(run_toy("nosuch", &output), 1);
  EXPECT_EQ(output, "toy: error: unknown command 'nosuch' (see toy --help)\n");
}

TEST(Usage, HelpHeadersNameTheWholeCommand) {
  for (const char* command : {"quantize", "info", "generate", "chat", "logits", "tokenize",
                              "detokenize", "init", "bench", "train"}) {
    std::string output;
    EXPECT_EQ(toy_stdout(std::string(command) + " --help", &output), 0) << command;
    EXPECT_NE(output.find("Usage: toy " + std::string(command) + " "), std::string::npos) << output;
  }
}

TEST(Usage, VersionFlag) {
  std::string output;
  EXPECT_EQ(toy_stdout("--version", &output), 0);
  EXPECT_EQ(output.rfind("toy ", 0), 0u) << output;
}

TEST(Usage, GpuLayersAreAcceptedWithANoteAndThreadsAreCapped) {
  // -ngl used to be read as -n "gl"; -t 10000 used to hang.
  std::string output;
  EXPECT_EQ(
      run_toy("generate -m " + stories() + " -p Once -n 3 --temp 0 -ngl 99 -t 10000", &output), 0)
      << output;
  EXPECT_NE(output.find("toy generate: note: -ngl 99: toy has no GPU backend"), std::string::npos)
      << output;
  EXPECT_NE(output.find("toy generate: note: -t 10000 is more than the"), std::string::npos)
      << output;
  EXPECT_EQ(run_toy("bench -m " + stories() + " -p 8 -n 2 -r 1 --n-gpu-layers 10", &output), 0)
      << output;
  EXPECT_NE(output.find("no GPU backend"), std::string::npos) << output;
}

TEST(Usage, PromptFromTextFileOrStandardInputIsTheSame) {
  const std::string file = temp_path(".txt");
  std::ofstream(file) << "Once upon a time";
  const std::string base = "generate -m " + stories() + " -n 6 --temp 0 --print-ids ";
  std::string from_text, from_file, from_stdin_p, from_stdin_f;
  ASSERT_EQ(toy_stdout(base + "-p 'Once upon a time'", &from_text), 0);
  ASSERT_EQ(toy_stdout(base + "-f " + file, &from_file), 0);
  ASSERT_EQ(toy_stdout(base + "-p - < " + file, &from_stdin_p), 0);
  ASSERT_EQ(toy_stdout(base + "-f - < " + file, &from_stdin_f), 0);
  EXPECT_FALSE(from_text.empty());
  EXPECT_EQ(from_file, from_text);
  EXPECT_EQ(from_stdin_p, from_text);
  EXPECT_EQ(from_stdin_f, from_text);
  // One final newline is dropped (as llama.cpp does), so a file written by an editor is the same.
  std::ofstream(file) << "Once upon a time\n";
  std::string with_newline, echoed;
  ASSERT_EQ(toy_stdout(base + "-f " + file, &with_newline), 0);
  ASSERT_EQ(
      testing::run_command(
          "(echo 'Once upon a time' | " + toy_binary() + " " + base + "-p - 2>/dev/null)", &echoed),
      0);
  EXPECT_EQ(with_newline, from_text);
  EXPECT_EQ(echoed, from_text);
  // -e turns "\n" into a newline, as the file's real newline.
  std::ofstream(file) << "Once\nupon";
  std::string escaped, real;
  ASSERT_EQ(toy_stdout(base + "-e -p 'Once\\nupon'", &escaped), 0);
  ASSERT_EQ(toy_stdout(base + "-f " + file, &real), 0);
  EXPECT_EQ(escaped, real);
  std::string output;
  EXPECT_EQ(run_toy(base + "-f /nonexistent.txt", &output), 1);
  EXPECT_NE(output.find("-f /nonexistent.txt: cannot open: No such file or directory"),
            std::string::npos)
      << output;
  fs::remove(file);
}

TEST(Usage, SeedIsPrintedAndRepeatsTheRun) {
  const std::string base = "generate -m " + stories() + " -p Once -n 8 --temp 1 --print-ids";
  std::string output;
  ASSERT_EQ(run_toy(base, &output), 0) << output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(output, m, std::regex(R"(repeat this run with --seed (\d+))")))
      << output;
  const std::string seed = m[1];
  std::string first, second;
  ASSERT_EQ(toy_stdout(base + " --seed " + seed, &first), 0);
  ASSERT_EQ(toy_stdout(base + " --seed " + seed, &second), 0);
  EXPECT_EQ(first, second);
  EXPECT_NE(output.find(first), std::string::npos) << "the seeded run differs from the printed one";
}

TEST(Usage, NMinusOneGeneratesUntilTheContextIsFull) {
  std::string ids;
  ASSERT_EQ(
      toy_stdout("generate -m " + stories() + " -p Once -n -1 -c 24 --temp 0 --print-ids", &ids),
      0);
  const size_t n = std::count(ids.begin(), ids.end(), ' ') + 1;
  EXPECT_GT(n, 1u) << ids;
  EXPECT_LE(n, 24u) << ids;
}

TEST(Usage, ContextBeyondTheModelsIsAWarningAndBenchRefusesIt) {
  const auto model = gguf::File::open(stories());
  const int64_t trained = model->get_integer("llama.context_length");
  std::string output;
  EXPECT_EQ(run_toy("generate -m " + stories() + " -p Once -n 2 --temp 0 -c " +
                        std::to_string(2 * trained),
                    &output),
            0)
      << output;
  EXPECT_NE(
      output.find("warning: -c " + std::to_string(2 * trained) +
                  " is larger than the model's training context (" + std::to_string(trained) + ")"),
      std::string::npos)
      << output;
  EXPECT_EQ(run_toy("bench -m " + stories() + " -r 1 -n 1 -p " + std::to_string(trained), &output),
            1);
  EXPECT_NE(output.find("more than " + stories() + " was trained for"), std::string::npos)
      << output;
}

TEST(Usage, ContextSizeFlagInInitAndTrain) {
  const std::string model = temp_path(".gguf");
  std::string output;
  ASSERT_EQ(
      run_toy("init --n-embd 16 --n-layer 1 --n-head 2 --n-ff 16 --vocab 32 -c 96 -o " + model,
              &output),
      0)
      << output;
  EXPECT_EQ(gguf::File::open(model)->get_integer("llama.context_length"), 96);
  ASSERT_EQ(
      run_toy("train -o " + model + " --data " + corpus() + kTinyTrain + " --ctx-size 24 --steps 2",
              &output),
      0)
      << output;
  EXPECT_EQ(gguf::File::open(model)->get_integer("llama.context_length"), 24);
  fs::remove(model);
}

TEST(Usage, DoubleDashEndsTheOptions) {
  const std::string dir = temp_path("-dir");
  fs::create_directory(dir);
  fs::copy_file(stories(), dir + "/-in.gguf");
  std::string output;
  EXPECT_EQ(testing::run_command(
                "cd " + dir + " && " + toy_binary() + " quantize -t 1 -- -in.gguf -out.gguf q8_0",
                &output),
            0)
      << output;
  EXPECT_TRUE(fs::exists(dir + "/-out.gguf"));
  fs::remove_all(dir);
}

TEST(Usage, DetokenizeTakesTheIdsAsTokenizePrintsThem) {
  const std::string vocab = fixture_path("tokenizer/ggml-vocab-llama-spm.gguf");
  std::string ids;
  ASSERT_EQ(toy_stdout("tokenize -m " + vocab + " --text 'Hello world, again'", &ids), 0);
  ASSERT_FALSE(ids.empty());
  ids.pop_back();  // the newline
  ASSERT_NE(ids.find(' '), std::string::npos) << ids;
  std::string with_commas = ids;
  std::replace(with_commas.begin(), with_commas.end(), ' ', ',');
  std::string spaced, commas, tokens_flag;
  ASSERT_EQ(toy_stdout("detokenize -m " + vocab + " --ids '" + ids + "'", &spaced), 0);
  ASSERT_EQ(toy_stdout("detokenize -m " + vocab + " --ids " + with_commas, &commas), 0);
  ASSERT_EQ(toy_stdout("detokenize -m " + vocab + " --tokens '" + ids + "'", &tokens_flag), 0);
  EXPECT_NE(spaced.find("Hello world, again"), std::string::npos) << spaced;
  EXPECT_EQ(commas, spaced);
  EXPECT_EQ(tokens_flag, spaced);
  std::string output;
  EXPECT_EQ(run_toy("detokenize -m " + vocab + " --ids '1,,2'", &output), 1);
  EXPECT_NE(output.find("entry 2 ('') is not a token id"), std::string::npos) << output;
}

}  // namespace
}  // namespace toy
