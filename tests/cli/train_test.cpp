// toy train end to end on a tiny configuration: the loss drops, the final line
// has the documented shape, the output GGUF carries llama.cpp's metadata and a
// real tokenizer, reloads through `toy generate`, and bad flags fail cleanly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "gguf/reader.h"
#include "support/fixtures.h"

namespace {

using toy::testing::binary_dir;
using toy::testing::fixture_path;
using toy::testing::read_text;
using toy::testing::run_command;
using toy::testing::temp_path;

// The first 60 kB of tinyshakespeare in a temporary file.
std::string small_corpus() {
  static const std::string path = [] {
    const std::string p = temp_path(".txt");
    std::ofstream(p) << read_text(fixture_path("text/tinyshakespeare.txt")).substr(0, 60000);
    return p;
  }();
  return path;
}

struct Final {
  long steps = 0;
  double train_loss = 0, val_loss = 0, tokens_per_s = 0;
};

Final parse_final(const std::string& output) {
  std::smatch m;
  const std::regex re(
      R"(final: steps (\d+) train_loss ([0-9.]+) val_loss ([0-9.]+) tokens_per_s ([0-9]+))");
  EXPECT_TRUE(std::regex_search(output, m, re)) << output;
  Final f;
  if (m.size() == 5) {
    f.steps = std::stol(m[1]);
    f.train_loss = std::stod(m[2]);
    f.val_loss = std::stod(m[3]);
    f.tokens_per_s = std::stod(m[4]);
  }
  return f;
}

const std::string kTiny =
    " --n-embd 32 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 64 --ctx 32 --batch 8"
    " --lr 3e-3 --warmup 5 --eval-every 20 -q";

TEST(TrainCommand, LossDropsAndTheOutputReloads) {
  const std::string out = temp_path(".gguf");
  std::string output;
  ASSERT_EQ(run_command(binary_dir() + "/toy train -o " + out + " --data " + small_corpus() +
                            " --vocab chars --steps 60 -t 1" + kTiny,
                        &output),
            0)
      << output;
  const Final f = parse_final(output);
  EXPECT_EQ(f.steps, 60);
  auto file = toy::gguf::File::open(out);
  const long n_vocab = static_cast<long>(file->get("tokenizer.ggml.tokens").array_size());
  // From ~ln(n_vocab) at initialization to clearly below the unigram level.
  EXPECT_LT(f.train_loss, std::log(double(n_vocab)) - 1.0) << output;
  EXPECT_GT(f.val_loss, 0.0);
  EXPECT_GT(f.tokens_per_s, 0.0);
  EXPECT_EQ(file->get_string("general.architecture"), "llama");
  EXPECT_EQ(file->get_integer("llama.block_count"), 2);
  EXPECT_EQ(file->get_integer("llama.attention.head_count_kv"), 2);
  EXPECT_EQ(file->get_string("tokenizer.ggml.model"), "llama");
  EXPECT_NE(file->find_tensor("blk.1.attn_q.weight"), nullptr);
  EXPECT_NE(file->find_tensor("output.weight"), nullptr);
  EXPECT_EQ(
      run_command(binary_dir() + "/toy generate -m " + out + " -p \"ROMEO:\" -n 8 -t 1", &output),
      0)
      << output;
}

TEST(TrainCommand, ProgressSaysHowOldTheValidationLossIs) {
  const std::string out = temp_path(".gguf");
  std::string output;
  ASSERT_EQ(run_command(binary_dir() + "/toy train -o " + out + " --data " + small_corpus() +
                            " --n-embd 16 --n-layer 1 --n-head 2 --n-ff 32 -c 16 --batch 2"
                            " --steps 12 --eval-every 5 --eval-batches 2 -t 1",
                        &output),
            0)
      << output;
  // stderr is a pipe: one line per step. Fresh at steps 5, 10 and 12, marked stale between.
  EXPECT_TRUE(
      std::regex_search(output, std::regex(R"(step 5/12 \| loss [0-9.]+ \| val [0-9.]+ \|)")))
      << output;
  EXPECT_TRUE(std::regex_search(
      output, std::regex(R"(step 7/12 \| loss [0-9.]+ \| val [0-9.]+ \(step 5\) \|)")))
      << output;
  EXPECT_TRUE(std::regex_search(
      output, std::regex(R"(step 11/12 \| loss [0-9.]+ \| val [0-9.]+ \(step 10\) \|)")))
      << output;
  EXPECT_NE(output.find("final val_loss over the whole held-out split"), std::string::npos)
      << output;
  std::remove(out.c_str());
}

TEST(TrainCommand, SameSeedGivesTheSameFileAndQ8OutputLoads) {
  const std::string a = temp_path(".gguf"), b = temp_path(".gguf"), q = temp_path(".gguf");
  const std::string common =
      " --data " + small_corpus() + " --vocab byte --steps 5 --seed 9 -t 1" + kTiny;
  std::string output;
  ASSERT_EQ(run_command(binary_dir() + "/toy train -o " + a + common, &output), 0) << output;
  const Final fa = parse_final(output);
  ASSERT_EQ(run_command(binary_dir() + "/toy train -o " + b + common, &output), 0) << output;
  const Final fb = parse_final(output);
  EXPECT_EQ(fa.train_loss, fb.train_loss);
  {  // bit-identical weights (the files differ only in general.name, taken from the path)
    auto fa_file = toy::gguf::File::open(a), fb_file = toy::gguf::File::open(b);
    ASSERT_EQ(fa_file->tensors().size(), fb_file->tensors().size());
    for (const auto& info : fa_file->tensors()) {
      const toy::Tensor x = fa_file->tensor(info), y = fb_file->tensor(info.name);
      ASSERT_EQ(x.bytes(), y.bytes());
      EXPECT_EQ(0, std::memcmp(x.data, y.data, x.bytes())) << info.name;
    }
  }
  ASSERT_EQ(run_command(binary_dir() + "/toy train -o " + q + common + " --out-type q8_0 --tied",
                        &output),
            0)
      << output;
  auto file = toy::gguf::File::open(q);
  EXPECT_EQ(file->find_tensor("blk.0.ffn_up.weight")->type, toy::DType::Q8_0);
  EXPECT_EQ(file->find_tensor("blk.0.ffn_norm.weight")->type, toy::DType::F32);
  EXPECT_EQ(file->find_tensor("output.weight"), nullptr);  // tied
  // 3 controls, 256 bytes and SentencePiece's space "▁".
  EXPECT_EQ(file->get("tokenizer.ggml.tokens").array_size(), 260u);
  EXPECT_EQ(run_command(binary_dir() + "/toy generate -m " + q + " -p hello -n 4 -t 1", &output), 0)
      << output;
}

TEST(TrainCommand, VocabFromAModelUsesItsTokenizerAndCopiesIt) {
  const std::string out = temp_path(".gguf");
  const std::string vocab = fixture_path("tokenizer/ggml-vocab-llama-spm.gguf");
  std::string output;
  ASSERT_EQ(run_command(binary_dir() + "/toy train -o " + out + " --data " + small_corpus() +
                            " --vocab-from " + vocab +
                            " --n-embd 32 --n-layer 1 --n-head 2 --n-ff 64 --ctx 16 --batch 2"
                            " --steps 3 --eval-batches 2 -t 1 -q",
                        &output),
            0)
      << output;
  parse_final(output);
  auto file = toy::gguf::File::open(out);
  auto source = toy::gguf::File::open(vocab);
  EXPECT_EQ(file->get("tokenizer.ggml.tokens").array_size(),
            source->get("tokenizer.ggml.tokens").array_size());
  EXPECT_EQ(file->get_integer("llama.vocab_size"),
            static_cast<int64_t>(source->get("tokenizer.ggml.tokens").array_size()));
  EXPECT_EQ(
      run_command(binary_dir() + "/toy generate -m " + out + " -p \"To be\" -n 4 -t 1", &output), 0)
      << output;
}

// --donor-embeddings: the donor's vocabulary and frozen table through a trained lens; the
// written model is a plain GGUF (lens folded into a [n_embd, V] token_embd) that generates,
// and the checkpoint keeps the lens unfolded for --resume.
TEST(TrainCommand, ProjectionLensIsFoldedIntoTheWrittenModel) {
  const std::string out = temp_path(".gguf"), ckpt = temp_path("lens-ckpt");
  const std::string donor = fixture_path("models/stories260K.gguf");
  const std::string common = " --data " + small_corpus() + " --donor-embeddings " + donor +
                             " --n-embd 48 --n-layer 1 --n-head 4 --n-ff 64 --ctx 16 --batch 4"
                             " --eval-batches 2 -t 1 -q --save-every 2 --checkpoint-dir " +
                             ckpt;
  std::string output;
  ASSERT_EQ(run_command(binary_dir() + "/toy train -o " + out + common + " --steps 2", &output), 0)
      << output;
  auto file = toy::gguf::File::open(out);
  const toy::gguf::TensorInfo* embd = file->find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->ne[0], 48);
  EXPECT_EQ(embd->ne[1], 512);  // the donor's vocabulary
  EXPECT_EQ(file->find_tensor("lens.proj.weight"), nullptr);
  EXPECT_EQ(file->get("tokenizer.ggml.tokens").array_size(), 512u);
  auto state = toy::gguf::File::open(ckpt + "/state.gguf");
  const toy::gguf::TensorInfo* lens = state->find_tensor("lens.proj.weight");
  ASSERT_NE(lens, nullptr);
  EXPECT_EQ(lens->ne[0], 64);  // stories260K is 64 wide
  EXPECT_EQ(lens->ne[1], 48);
  EXPECT_EQ(
      run_command(binary_dir() + "/toy train -o " + out + common + " --steps 4 --resume " + ckpt,
                  &output),
      0)
      << output;
  EXPECT_EQ(run_command(binary_dir() + "/toy generate -m " + out + " -p \"Once upon\" -n 4 -t 1",
                        &output),
            0)
      << output;
  // The donor decides the vocabulary and the token table: these flags contradict it.
  for (const char* flag : {" --tied", " --vocab chars"}) {
    EXPECT_EQ(
        run_command(binary_dir() + "/toy train -o " + out + ".2" + common + " --steps 2" + flag,
                    &output),
        1)
        << flag;
    EXPECT_NE(output.find("--donor-embeddings"), std::string::npos) << output;
  }
  std::filesystem::remove_all(ckpt);
  std::filesystem::remove(out);
}

TEST(TrainCommand, BadInputFailsWithAMessage) {
  std::string output;
  const std::string out = temp_path(".gguf");
  EXPECT_NE(run_command(binary_dir() + "/toy train -o " + out + " --data /nonexistent.txt" + kTiny,
                        &output),
            0);
  EXPECT_NE(output.find("/nonexistent.txt"), std::string::npos) << output;
  EXPECT_NE(run_command(binary_dir() + "/toy train -o " + out + " --data " + small_corpus() +
                            kTiny + " --n-head 3",
                        &output),
            0);
  EXPECT_NE(output.find("--n-head"), std::string::npos) << output;
  EXPECT_NE(run_command(binary_dir() + "/toy train -o " + out + " --data " + small_corpus() +
                            kTiny + " --ctx 100000",
                        &output),
            0);
  EXPECT_NE(output.find("--ctx"), std::string::npos) << output;
  EXPECT_NE(run_command(binary_dir() + "/toy train -o " + out + " --data " + small_corpus() +
                            kTiny + " --out-type q4_k",
                        &output),
            0);
  EXPECT_NE(output.find("--out-type"), std::string::npos) << output;
  std::FILE* f = std::fopen(out.c_str(), "rb");
  EXPECT_EQ(f, nullptr);  // nothing written on failure
  if (f) std::fclose(f);
}

}  // namespace
