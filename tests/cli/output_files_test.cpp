// Output files (issue 10): every command that writes checks the path before any work, never
// writes over one of its inputs (also through a symlink or a hard link), reports a failed
// write with the errno text and leaves nothing; and kill -9, SIGTERM or SIGINT at any moment of
// quantize, train --save-every or finetune --save-every leaves only the previous or the new
// complete file (and checkpoint).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gguf/reader.h"
#include "support/fixtures.h"

namespace toy {
namespace {

namespace fs = std::filesystem;
using testing::fixture_path;
using testing::temp_path;

std::string toy_binary() {
  return testing::binary_dir() + "/toy";
}

using toy::testing::run_toy;

std::string stories() {
  return fixture_path("models/stories260K.gguf");
}

struct TempDir {
  TempDir() : path(temp_path("-dir")) { fs::create_directory(path); }
  ~TempDir() { fs::remove_all(path); }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }
  std::string path;
};

std::string write_corpus(const std::string& dir) {
  const std::string path = dir + "/corpus.txt";
  std::ofstream(path)
      << testing::read_text(fixture_path("text/tinyshakespeare.txt")).substr(0, 20000);
  return path;
}

const char* kTinyTrain = " --n-embd 16 --n-layer 1 --n-head 2 --n-ff 32 --batch 2 -c 16 -q";

void expect_error(const std::string& args, const std::string& message) {
  std::string output;
  // `timeout`: a check that came after the work would make this run for minutes.
  EXPECT_EQ(testing::run_command("timeout 30 '" + toy_binary() + "' " + args, &output), 1)
      << args << "\n"
      << output;
  EXPECT_NE(output.find(message), std::string::npos) << args << "\n" << output;
}

TEST(OutputFiles, BadOutputPathsAreRefusedBeforeAnyWork) {
  TempDir dir;
  const std::string corpus = write_corpus(dir.path);
  const std::string long_train = " --data " + corpus + kTinyTrain + " --steps 1000000";
  expect_error("train -o /nonexistent/dir/model.gguf" + long_train,
               "-o /nonexistent/dir/model.gguf: directory /nonexistent/dir does not exist");
  expect_error("train -o " + dir.path + long_train, "-o " + dir.path + ": is a directory");
  expect_error("logits -m " + stories() + " --tokens 1,2 -o " + dir.path,
               "-o " + dir.path + ": is a directory");
  expect_error("quantize " + stories() + " " + dir.path + " q8_0",
               "output " + dir.path + ": is a directory");
  expect_error("init --n-embd 8 --n-layer 1 --n-head 2 --n-ff 8 --vocab 8 -o " + dir.path,
               "-o " + dir.path + ": is a directory");
  expect_error("init --n-embd 8 --n-layer 1 --n-head 2 --n-ff 8 --vocab 8 -o " + corpus + "/x",
               "is not a directory");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"corpus.txt"});
}

TEST(OutputFiles, AnOutputThatIsAnInputIsRefused) {
  TempDir dir;
  const std::string model = dir.path + "/model.gguf";
  fs::copy_file(stories(), model);
  fs::create_symlink(model, dir.path + "/symlink.gguf");
  fs::create_hard_link(model, dir.path + "/hardlink.gguf");
  const std::string corpus = write_corpus(dir.path);
  const auto model_bytes = testing::read_bytes(model);
  const auto corpus_bytes = testing::read_bytes(corpus);
  for (const char* out : {"/model.gguf", "/symlink.gguf", "/hardlink.gguf", "/./model.gguf"}) {
    expect_error("logits -m " + model + " --tokens 1,2,3 -o " + dir.path + out,
                 " is the same file as -m " + model);
    expect_error("quantize " + model + " " + dir.path + out + " q8_0",
                 " is the same file as input " + model);
  }
  expect_error("train -o " + corpus + " --data " + corpus + kTinyTrain + " --steps 2",
               "-o " + corpus + " is the same file as --data " + corpus);
  expect_error("train -o " + model + " --data " + corpus + " --vocab-from " + dir.path +
                   "/hardlink.gguf" + kTinyTrain + " --steps 2",
               "is the same file as --vocab-from");
  EXPECT_EQ(testing::read_bytes(model), model_bytes);
  EXPECT_EQ(testing::read_bytes(corpus), corpus_bytes);
}

TEST(OutputFiles, TwoOutputsNamingOneFileAreRefused) {
  TempDir dir;
  const std::string corpus = write_corpus(dir.path);
  const std::string out = dir.path + "/out.gguf", same = dir.path + "/./out.gguf";
  expect_error("train -o " + out + " --metrics " + same + " --data " + corpus + kTinyTrain,
               "--metrics and -o name the same file");
  expect_error(
      "logits -m " + stories() + " --tokens 1,2 --tap attn_norm --tap-out " + out + " -o " + same,
      "--tap-out and -o name the same file");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"corpus.txt"});
}

TEST(OutputFiles, ALinkIsWrittenThroughAndADeviceInPlace) {
  TempDir dir;
  fs::create_symlink("target.gguf", dir.path + "/link.gguf");
  std::string output;
  ASSERT_EQ(run_toy("quantize " + stories() + " " + dir.path + "/link.gguf q8_0", &output), 0)
      << output;
  EXPECT_TRUE(fs::is_symlink(dir.path + "/link.gguf"));
  EXPECT_TRUE(fs::is_regular_file(dir.path + "/target.gguf"));
  ASSERT_EQ(run_toy("quantize " + stories() + " /dev/null q8_0", &output), 0) << output;
  EXPECT_TRUE(fs::is_character_file("/dev/null"));  // not replaced by a regular file
  ASSERT_EQ(run_toy("logits -m " + stories() + " --tokens 1,2 -o /dev/null", &output), 0) << output;
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
}

TEST(OutputFiles, DirectoriesAsInputsGetAClearError) {
  TempDir dir;
  const std::string out = dir.path + "/out";
  const std::string vocab = fixture_path("tokenizer/ggml-vocab-llama-spm.gguf");
  expect_error("tokenize -m " + vocab + " --file " + dir.path,
               "--file " + dir.path + ": is a directory; expected a file");
  expect_error("train -o " + out + " --data " + dir.path + kTinyTrain,
               "--data " + dir.path + ": is a directory; expected a file");
  expect_error("generate -m " + stories() + " -f " + dir.path,
               "-f " + dir.path + ": is a directory; expected a file");
  expect_error("quantize " + dir.path + " " + out + " q8_0",
               "input " + dir.path + ": is a directory; expected a file");
  expect_error("info " + dir.path, dir.path + ": is a directory; expected a GGUF file");
  expect_error("logits -m " + dir.path + " --tokens 1 -o " + out, "is a directory");
  EXPECT_TRUE(dir.entries().empty());
}

TEST(OutputFiles, AFailedWriteGivesTheReasonAndLeavesNothing) {
  // A file-size limit fails write() as a full disk does (EFBIG, "File too large").
  TempDir dir;
  const std::string limited = "trap '' XFSZ; ulimit -f 2; timeout 30 '" + toy_binary() + "' ";
  std::string output;
  EXPECT_EQ(testing::run_command(limited + "logits -m " + stories() + " --tokens 1,2,3,4 -o " +
                                     dir.path + "/out.f32",
                                 &output),
            1)
      << output;
  EXPECT_NE(
      output.find("toy logits: error: " + dir.path + "/out.f32: cannot write: File too large"),
      std::string::npos)
      << output;
  EXPECT_EQ(testing::run_command(
                limited + "quantize -t 1 " + stories() + " " + dir.path + "/out.gguf f16", &output),
            1)
      << output;
  EXPECT_NE(output.find(dir.path + "/out.gguf: cannot write: File too large"), std::string::npos)
      << output;
  EXPECT_TRUE(dir.entries().empty());
}

// Starts `toy ARGS...` with its output discarded; returns its pid.
pid_t spawn_toy(const std::vector<std::string>& args) {
  std::vector<std::string> full = {toy_binary()};
  full.insert(full.end(), args.begin(), args.end());
  const pid_t pid = ::fork();
  if (pid == 0) {
    // A runner started in the background may ignore SIGINT; the child must not inherit that.
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    std::vector<char*> argv;
    for (std::string& a : full) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// Runs `args` and delivers `sig` after `delay`; returns when the process is gone.
void interrupt(const std::vector<std::string>& args, int sig, std::chrono::milliseconds delay) {
  const pid_t pid = spawn_toy(args);
  ASSERT_GT(pid, 0);
  std::this_thread::sleep_for(delay);
  ::kill(pid, sig);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
}

// The directory holds exactly `inputs` and those of `outputs` that exist, each a complete GGUF
// (the previous or the new one): no temporary, no half-written file.
void expect_clean(const TempDir& dir, std::vector<std::string> inputs,
                  const std::vector<std::string>& outputs, const std::string& context) {
  for (const std::string& out : outputs) {
    if (!fs::exists(dir.path + "/" + out)) continue;
    inputs.push_back(out);
    if (fs::is_directory(dir.path + "/" + out)) {
      // A checkpoint directory: at most its one state file, complete.
      for (const auto& e : fs::directory_iterator(dir.path + "/" + out)) {
        EXPECT_EQ(e.path().filename(), "state.gguf") << context;
        try {
          const auto file = gguf::File::open(e.path().string());
          EXPECT_GT(file->tensors().size(), 0u) << context;
        } catch (const std::exception& ex) {
          ADD_FAILURE() << context << ": " << e.path() << " is not a complete GGUF: " << ex.what();
        }
      }
      continue;
    }
    try {
      const auto file = gguf::File::open(dir.path + "/" + out);  // validates every offset/size
      EXPECT_GT(file->tensors().size(), 0u) << context;
    } catch (const std::exception& e) {
      ADD_FAILURE() << context << ": " << out << " is not a complete GGUF: " << e.what();
    }
  }
  std::sort(inputs.begin(), inputs.end());
  EXPECT_EQ(dir.entries(), inputs) << context;
}

TEST(OutputFiles, SignalsAtAnyMomentLeaveOnlyACompleteFile) {
  TempDir dir;
  const std::string model = dir.path + "/in.gguf";
  std::string output;
  // Big enough that quantizing it takes a few hundred milliseconds on one thread.
  ASSERT_EQ(run_toy("init --n-embd 256 --n-layer 4 --n-head 4 --n-ff 688 --vocab 4096 -o " + model,
                    &output),
            0)
      << output;
  const std::string corpus = write_corpus(dir.path);
  std::mt19937 rng(::testing::UnitTest::GetInstance()->random_seed());
  std::uniform_int_distribution<int> delay_ms(5, 400);
  for (const int sig : {SIGKILL, SIGTERM, SIGINT}) {
    for (int round = 0; round < 2; ++round) {
      const auto delay = std::chrono::milliseconds(delay_ms(rng));
      const std::string context =
          std::string(strsignal(sig)) + " after " + std::to_string(delay.count()) + " ms";
      // Later rounds have an earlier output in place: it must survive or be replaced whole.
      interrupt({"quantize", "-t", "1", model, dir.path + "/out.gguf", "q6_k"}, sig, delay);
      const std::vector<std::string> outputs = {"out.gguf", "trained.gguf", "ckpt", "lora.gguf",
                                                "lora-ckpt"};
      expect_clean(dir, {"corpus.txt", "in.gguf"}, outputs, "quantize, " + context);
      interrupt({"train",
                 "-o",
                 dir.path + "/trained.gguf",
                 "--data",
                 corpus,
                 "--n-embd",
                 "32",
                 "--n-layer",
                 "2",
                 "--n-head",
                 "2",
                 "--n-ff",
                 "64",
                 "-c",
                 "32",
                 "--batch",
                 "4",
                 "--steps",
                 "100000",
                 "--save-every",
                 "1",
                 "--checkpoint-dir",
                 dir.path + "/ckpt",
                 "-q",
                 "-t",
                 "1"},
                sig, delay);
      expect_clean(dir, {"corpus.txt", "in.gguf"}, outputs, "train --save-every 1, " + context);
      interrupt({"finetune",
                 "-m",
                 stories(),
                 "-o",
                 dir.path + "/lora.gguf",
                 "--data",
                 corpus,
                 "-c",
                 "32",
                 "--batch",
                 "2",
                 "--steps",
                 "100000",
                 "--save-every",
                 "1",
                 "--checkpoint-dir",
                 dir.path + "/lora-ckpt",
                 "-q",
                 "-t",
                 "1"},
                sig, delay);
      expect_clean(dir, {"corpus.txt", "in.gguf"}, outputs, "finetune --save-every 1, " + context);
    }
  }
}

}  // namespace
}  // namespace toy
