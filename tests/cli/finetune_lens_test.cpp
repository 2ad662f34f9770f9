// toy finetune --full --donor-embeddings end to end: stories260K (64 wide, tied, a 512-token
// SentencePiece vocabulary) fine-tuned over donors 32 wide — one with another vocabulary (a
// byte vocabulary: a new head) and one with stories260K's own (its tied head is kept). The
// written model is a standard GGUF of the donor's vocabulary that toy runs, the lens shows in
// --metrics, a resumed run is bit-identical, and LoRA or a bad donor is refused before any work.
// (That the written file's logits are the training forward's: tests/train/lens_finetune_test.)
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/training_runs.h"
#include "gguf/copy.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "support/fixtures.h"

namespace {

namespace fs = std::filesystem;
using toy::testing::binary_dir;
using toy::testing::fixture_path;
using toy::testing::read_bytes;
using toy::testing::read_text;
using toy::testing::run_command;
using toy::testing::temp_path;

using toy::testing::expect_same_tensors;
using toy::testing::run_toy;
using toy::testing::step_losses;

std::string stories() {
  return fixture_path("models/stories260K.gguf");
}

// The first 20 kB of tinyshakespeare.
std::string corpus() {
  static const std::string path = [] {
    const std::string p = temp_path("-lens.txt");
    std::ofstream(p) << read_text(fixture_path("text/tinyshakespeare.txt")).substr(0, 20000);
    return p;
  }();
  return path;
}

// A one-step toy train model 32 wide: its vocabulary from `vocab_flags`.
std::string make_donor(const std::string& vocab_flags) {
  const std::string path = temp_path("-donor.gguf");
  std::string output;
  EXPECT_EQ(run_toy("train -o " + path + " --data " + corpus() + " " + vocab_flags +
                        " --n-embd 32 --n-layer 1 --n-head 2 --n-ff 32 --ctx 16 --batch 2 --steps 1"
                        " --eval-batches 1 -q -t 1",
                    &output),
            0)
      << output;
  return path;
}

std::string byte_donor() {  // another vocabulary than stories260K's
  static const std::string path = make_donor("--vocab byte");
  return path;
}

std::string stories_vocab_donor() {  // stories260K's vocabulary, another width
  static const std::string path = make_donor("--vocab-from " + stories());
  return path;
}

std::string lens_args(const std::string& donor) {
  return "finetune --full -m " + stories() + " --donor-embeddings " + donor + " --data " +
         corpus() + " -c 32 --batch 2 --lr 1e-3 -t 1 --eval-batches 1";
}

TEST(FinetuneLens, AnotherVocabularyAndWidthGivesAStandardModelOfTheDonorsVocabulary) {
  const std::string out = temp_path("-lens.gguf"), metrics = temp_path("-lens.jsonl");
  std::string output;
  ASSERT_EQ(run_toy(lens_args(byte_donor()) + " --steps 4 -o " + out + " --metrics " + metrics +
                        " --metrics-every 2 --out-type f16",
                    &output),
            0)
      << output;
  EXPECT_NE(output.find("projection lens from"), std::string::npos) << output;
  EXPECT_NE(output.find("a new output.weight [64, "), std::string::npos) << output;

  const auto donor = toy::gguf::File::open(byte_donor());
  const auto base = toy::gguf::File::open(stories());
  const auto file = toy::gguf::File::open(out);
  const int64_t V = static_cast<int64_t>(donor->get("tokenizer.ggml.tokens").array_size());
  ASSERT_NE(V, 512);
  EXPECT_EQ(file->get("tokenizer.ggml.tokens").array_size(), static_cast<size_t>(V));
  EXPECT_EQ(file->get_string("tokenizer.ggml.model"), donor->get_string("tokenizer.ggml.model"));
  EXPECT_EQ(file->get_integer("llama.vocab_size"), V);
  for (const char* name : {"token_embd.weight", "output.weight"}) {
    const toy::gguf::TensorInfo* t = file->find_tensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->ne[0], 64) << name;  // the base's width
    EXPECT_EQ(t->ne[1], V) << name;
    EXPECT_EQ(t->type, toy::DType::F16) << name;  // --out-type: both are trained
  }
  EXPECT_EQ(file->find_tensor("lens.proj.weight"), nullptr);
  // The base's tensors, and the head the tied base did not have.
  EXPECT_EQ(file->tensors().size(), base->tensors().size() + 1);

  const std::string logits = temp_path("-lens.f32");
  ASSERT_EQ(run_toy("logits -m " + out + " --tokens 1,72,101,108 -o " + logits, &output), 0)
      << output;
  EXPECT_EQ(read_bytes(logits).size(), static_cast<size_t>(4 * V) * sizeof(float));
  EXPECT_EQ(run_toy("generate -m " + out + " -p \"To be\" -n 4 -t 1", &output), 0) << output;

  // The lens and the new head under their own names in the per-tensor statistics.
  std::ifstream in(metrics);
  std::string line;
  std::vector<nlohmann::json> lines;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  ASSERT_GE(lines.size(), 2u);
  const nlohmann::json& tensors = lines[1]["tensors"];
  for (const char* name : {"lens.proj.weight", "output.weight", "blk.0.attn_q.weight"}) {
    ASSERT_TRUE(tensors.contains(name)) << name << " " << tensors.dump();
    EXPECT_GT(tensors[name]["grad_norm"].get<double>(), 0.0) << name;
  }
  EXPECT_FALSE(tensors.contains("token_embd.weight")) << tensors.dump();  // the donor's: frozen
  fs::remove(out);
  fs::remove(metrics);
  fs::remove(logits);
}

// The donor has stories260K's vocabulary: its tied head (its own token_embd) stays, frozen,
// written as output.weight in its stored type, while token_embd becomes the folded lens.
TEST(FinetuneLens, TheSameVocabularyKeepsTheBasesTiedHead) {
  const std::string out = temp_path("-lens-same.gguf");
  std::string output;
  ASSERT_EQ(run_toy(lens_args(stories_vocab_donor()) + " --steps 2 -o " + out, &output), 0)
      << output;
  EXPECT_NE(output.find("the base's tied head"), std::string::npos) << output;
  const auto base = toy::gguf::File::open(stories());
  const auto file = toy::gguf::File::open(out);
  const toy::Tensor base_table = base->tensor("token_embd.weight");
  const toy::Tensor head = file->tensor("output.weight");
  const toy::Tensor table = file->tensor("token_embd.weight");
  ASSERT_EQ(head.bytes(), base_table.bytes());
  EXPECT_EQ(std::memcmp(head.data, base_table.data, head.bytes()), 0);
  ASSERT_EQ(table.bytes(), base_table.bytes());
  EXPECT_NE(std::memcmp(table.data, base_table.data, table.bytes()), 0);
  EXPECT_EQ(file->get("tokenizer.ggml.tokens").array_size(), 512u);
  EXPECT_EQ(run_toy("generate -m " + out + " -p \"Once upon\" -n 4 -t 1", &output), 0) << output;
  fs::remove(out);
}

TEST(FinetuneLens, ResumeKeepsTheLensUnfoldedAndIsBitIdentical) {
  const std::string a = temp_path("-lens-a.gguf"), b = temp_path("-lens-b.gguf");
  const std::string ckpt = temp_path("-lens-ckpt");
  const std::string common = lens_args(byte_donor()) + " --lr-schedule constant --val-fraction 0";
  std::string out_a, out_b1, out_b2;
  ASSERT_EQ(run_toy(common + " --steps 6 -o " + a, &out_a), 0) << out_a;
  ASSERT_EQ(
      run_toy(common + " --steps 3 --save-every 3 --checkpoint-dir " + ckpt + " -o " + b, &out_b1),
      0)
      << out_b1;
  const auto state = toy::gguf::File::open(ckpt + "/state.gguf");
  const toy::gguf::TensorInfo* proj = state->find_tensor("lens.proj.weight");
  ASSERT_NE(proj, nullptr);
  EXPECT_EQ(proj->ne[0], 32);  // the donor's width
  EXPECT_EQ(proj->ne[1], 64);  // the base's
  EXPECT_NE(state->find_tensor("output.weight"), nullptr);
  EXPECT_EQ(state->find_tensor("token_embd.weight"), nullptr);  // the donor's, not trained
  ASSERT_EQ(run_toy(common + " --steps 6 --resume " + ckpt + " -o " + b, &out_b2), 0) << out_b2;
  EXPECT_NE(out_b2.find("resumed from"), std::string::npos) << out_b2;
  std::vector<std::string> resumed = step_losses(out_b1);
  for (const std::string& s : step_losses(out_b2)) resumed.push_back(s);
  EXPECT_EQ(step_losses(out_a), resumed);
  EXPECT_EQ(step_losses(out_a).size(), 6u);
  expect_same_tensors(a, b);
  // Another donor is another run: refused, naming it.
  std::string output;
  EXPECT_EQ(run_toy(lens_args(stories_vocab_donor()) +
                        " --lr-schedule constant --val-fraction 0 --steps 6 --resume " + ckpt +
                        " -o " + b,
                    &output),
            1);
  EXPECT_NE(output.find("donor-embeddings"), std::string::npos) << output;
  fs::remove(a);
  fs::remove(b);
  fs::remove_all(ckpt);
}

// stories260K without its token_embd.weight: a vocabulary but no table.
std::string donor_without_table() {
  const auto model = toy::gguf::File::open(stories());
  toy::gguf::Writer writer;
  toy::gguf::copy_metadata(*model, writer);
  for (const toy::gguf::TensorInfo& info : model->tensors())
    if (info.name != "token_embd.weight")
      writer.add_tensor(std::string(info.name), info.type,
                        std::vector<int64_t>(info.ne.begin(), info.ne.begin() + info.n_dims),
                        model->tensor(info).data);
  const std::string path = temp_path("-no-table.gguf");
  writer.write(path);
  return path;
}

TEST(FinetuneLens, LoraAndBadDonorsAreRefusedBeforeAnyWork) {
  const std::string out = temp_path("-lens-bad.gguf"), no_table = donor_without_table();
  const std::string data = " --data " + corpus() + " -o " + out + " --steps 2";
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {"-m " + stories() + " --donor-embeddings " + byte_donor() + data,
       "a LoRA adapter cannot change the vocabulary; use --full"},
      {"-m " + stories() + " --donor-embeddings " + stories_vocab_donor() + data + " -r 4",
       "a LoRA adapter cannot change the vocabulary; use --full"},
      {"--full -m " + stories() + " --donor-embeddings " + fs::temp_directory_path().string() +
           data,
       "--donor-embeddings"},
      {"--full -m " + stories() + " --donor-embeddings /nonexistent/donor.gguf" + data,
       "--donor-embeddings"},
      {"--full -m " + stories() + " --donor-embeddings " + corpus() + data,
       "--donor-embeddings: " + corpus() + ": byte offset 0: not a GGUF file"},
      {"--full -m " + stories() + " --donor-embeddings " + no_table + data, "token_embd.weight"},
      {"--full -m " + stories() + " --donor-embeddings " + fixture_path("models/llama.gguf") + data,
       "no vocabulary"},
      {"--full -m " + stories() + " --donor-embeddings " + fixture_path("lora/llama-lora.gguf") +
           data,
       "--donor-embeddings: " + fixture_path("lora/llama-lora.gguf")},
  };
  for (const Case& c : cases) {
    std::string output;
    EXPECT_EQ(run_toy("finetune " + c.args, &output), 1) << c.args << "\n" << output;
    EXPECT_NE(output.find(c.message), std::string::npos) << c.args << "\n" << output;
    EXPECT_FALSE(fs::exists(out)) << c.args;
  }
  fs::remove(no_table);
}

}  // namespace
