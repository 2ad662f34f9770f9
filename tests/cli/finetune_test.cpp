// toy finetune end to end on stories260K (a real TinyStories model with its
// vocabulary) and tinyshakespeare: LoRA and full fine-tuning lower the perplexity
// of held-out text, the adapter works with --lora and `toy merge`, a run resumed
// from its checkpoint ends bit-identical to an uninterrupted one, and bad flags
// are refused before any work.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/training_runs.h"
#include "gguf/reader.h"
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

// The first 120 kB of tinyshakespeare for training, 12 kB from its end held out.
struct Corpus {
  std::string train = temp_path("-train.txt"), val = temp_path("-val.txt");
  Corpus() {
    const std::string text = read_text(fixture_path("text/tinyshakespeare.txt"));
    std::ofstream(train) << text.substr(0, 120000);
    std::ofstream(val) << text.substr(text.size() - 12000);
  }
  ~Corpus() {
    fs::remove(train);
    fs::remove(val);
  }
};

double perplexity(const std::string& args) {
  std::string output;
  EXPECT_EQ(run_toy("perplexity -c 128 -t 2 " + args, &output), 0) << output;
  std::smatch m;
  const std::regex re(R"(PPL = ([0-9.]+))");
  EXPECT_TRUE(std::regex_search(output, m, re)) << output;
  return m.size() == 2 ? std::stod(m[1]) : NAN;
}

std::vector<float> logits(const std::string& args) {
  const std::string out = temp_path(".f32");
  std::string output;
  EXPECT_EQ(run_toy("logits --tokens 1,403,407,261,378,300 -o " + out + " " + args, &output), 0)
      << output;
  const std::vector<uint8_t> bytes = read_bytes(out);
  fs::remove(out);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

TEST(FinetuneCommand, LoraLowersHeldOutPerplexityAndTheAdapterMergesToTheSameModel) {
  const Corpus corpus;
  const std::string adapter = temp_path("-lora.gguf"), merged = temp_path("-merged.gguf");
  std::string output;
  ASSERT_EQ(
      run_toy("finetune -m " + stories() + " --data " + corpus.train + " --val-data " + corpus.val +
                  " -o " + adapter +
                  " --lora-targets all-linear -r 8 --steps 60 --lr 2e-3 -c 128 --batch 4 -q -t 2",
              &output),
      0)
      << output;
  auto file = toy::gguf::File::open(adapter);
  EXPECT_EQ(file->get_string("general.type"), "adapter");
  EXPECT_EQ(file->get_string("adapter.type"), "lora");
  EXPECT_EQ(file->get_f32("adapter.lora.alpha"), 16.0f);
  EXPECT_EQ(file->tensors().size(), 5u * 7u * 2u);  // 5 layers x 7 matrices x (A, B)
  const toy::gguf::TensorInfo* a = file->find_tensor("blk.0.attn_q.weight.lora_a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->ne[1], 8);

  const double before = perplexity("-m " + stories() + " -f " + corpus.val);
  const double after = perplexity("-m " + stories() + " -f " + corpus.val + " --lora " + adapter);
  EXPECT_LT(after, 0.7 * before) << before << " -> " << after;

  ASSERT_EQ(run_toy("merge -m " + stories() + " --lora " + adapter + " -o " + merged, &output), 0)
      << output;
  const std::vector<float> with_adapter = logits("-m " + stories() + " --lora " + adapter);
  const std::vector<float> from_merged = logits("-m " + merged);
  ASSERT_EQ(with_adapter.size(), from_merged.size());
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < with_adapter.size(); ++i) {
    diff = std::max(diff, double(std::abs(with_adapter[i] - from_merged[i])));
    norm = std::max(norm, double(std::abs(with_adapter[i])));
  }
  EXPECT_LE(diff, 1e-4 * norm);
  fs::remove(adapter);
  fs::remove(merged);
}

// Mixed precision (--compute-type bf16, and f16 with its loss scaling) trains to about the
// same loss as f32.
TEST(FinetuneCommand, Bf16AndF16ComputeTrainLikeF32) {
  const Corpus corpus;
  const std::string out = temp_path("-bf16.gguf");
  auto final_loss = [&](const std::string& type) {
    std::string output;
    EXPECT_EQ(run_toy("finetune -m " + stories() + " --data " + corpus.train + " -o " + out +
                          " --lora-targets all-linear --steps 30 --lr 2e-3 -c 64 --batch 4 -q -t 2"
                          " --val-fraction 0 --eval-batches 8 --compute-type " +
                          type,
                      &output),
              0)
        << output;
    std::smatch m;
    EXPECT_TRUE(std::regex_search(output, m, std::regex(R"(train_loss ([0-9.]+))"))) << output;
    return m.size() == 2 ? std::stod(m[1]) : NAN;
  };
  const double f32 = final_loss("f32"), bf16 = final_loss("bf16"), f16 = final_loss("f16");
  EXPECT_NEAR(bf16, f32, 0.03 * f32);
  EXPECT_NEAR(f16, f32, 0.01 * f32);
  fs::remove(out);
}

TEST(FinetuneCommand, FullFinetuneWritesAModelWithLowerPerplexity) {
  const Corpus corpus;
  const std::string out = temp_path("-full.gguf");
  std::string output;
  ASSERT_EQ(
      run_toy("finetune --full -m " + stories() + " --data " + corpus.train + " --val-data " +
                  corpus.val + " -o " + out + " --steps 40 --lr 1e-3 -c 128 --batch 4 -q -t 2",
              &output),
      0)
      << output;
  const auto base = toy::gguf::File::open(stories());
  const auto tuned = toy::gguf::File::open(out);
  EXPECT_EQ(tuned->tensors().size(), base->tensors().size());
  EXPECT_EQ(tuned->get_string("tokenizer.ggml.model"), base->get_string("tokenizer.ggml.model"));
  const double before = perplexity("-m " + stories() + " -f " + corpus.val);
  const double after = perplexity("-m " + out + " -f " + corpus.val);
  EXPECT_LT(after, 0.7 * before) << before << " -> " << after;
  fs::remove(out);
}

TEST(FinetuneCommand, ResumeFromACheckpointIsBitIdentical) {
  const Corpus corpus;
  const std::string a = temp_path("-a.gguf"), b = temp_path("-b.gguf");
  const std::string ckpt = temp_path("-ckpt");
  const std::string common = "finetune -m " + stories() + " --data " + corpus.train +
                             " --lora-targets q,k,v,o -c 64 --batch 3 --lr 1e-3 -t 2"
                             " --lr-schedule constant --val-fraction 0";
  std::string out_a, out_b1, out_b2;
  ASSERT_EQ(run_toy(common + " --steps 20 -o " + a, &out_a), 0) << out_a;
  ASSERT_EQ(run_toy(common + " --steps 10 --save-every 10 --checkpoint-dir " + ckpt + " -o " + b,
                    &out_b1),
            0)
      << out_b1;
  ASSERT_TRUE(fs::exists(ckpt + "/state.gguf"));
  ASSERT_EQ(run_toy(common + " --steps 20 --resume " + ckpt + " -o " + b, &out_b2), 0) << out_b2;
  EXPECT_NE(out_b2.find("resumed from"), std::string::npos) << out_b2;
  std::vector<std::string> resumed = step_losses(out_b1);
  for (const std::string& s : step_losses(out_b2)) resumed.push_back(s);
  EXPECT_EQ(step_losses(out_a), resumed);
  EXPECT_EQ(step_losses(out_a).size(), 20u);
  // Every tensor bit for bit.
  expect_same_tensors(a, b);

  // Another rank is another run: refused, naming what differs.
  std::string output;
  EXPECT_EQ(run_toy(common + " -r 4 --steps 20 --resume " + ckpt + " -o " + b, &output), 1);
  EXPECT_NE(output.find("lora"), std::string::npos) << output;
  fs::remove(a);
  fs::remove(b);
  fs::remove_all(ckpt);
}

// --metrics: a JSON object per step, per-tensor statistics under GGUF names and --tap's
// activation statistics every --metrics-every steps, validation losses when evaluated, and
// a final object.
TEST(FinetuneCommand, MetricsJsonLinesPerStepAndPerTensor) {
  const Corpus corpus;
  const std::string out = temp_path("-m.gguf"), metrics = temp_path("-metrics.jsonl");
  std::string output;
  ASSERT_EQ(run_toy("finetune -m " + stories() + " --data " + corpus.train + " -o " + out +
                        " --steps 6 -c 32 --batch 2 --eval-every 3 --eval-batches 2 -q -t 2"
                        " --metrics " +
                        metrics + " --metrics-every 3 --tap blk.4.resid_post,attn_norm",
                    &output),
            0)
      << output;
  std::ifstream in(metrics);
  std::string line;
  std::vector<nlohmann::json> lines;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 7u);
  for (int i = 0; i < 6; ++i) {
    const nlohmann::json& l = lines[size_t(i)];
    EXPECT_EQ(l["step"], i + 1);
    for (const char* key : {"loss", "lr", "tokens_per_s", "grad_norm", "loss_scale"})
      EXPECT_TRUE(l.contains(key)) << key << " " << l.dump();
    EXPECT_EQ(l.contains("tensors"), (i + 1) % 3 == 0) << l.dump();
    EXPECT_EQ(l.contains("taps"), (i + 1) % 3 == 0) << l.dump();
    EXPECT_EQ(l.contains("val_loss"), (i + 1) % 3 == 0) << l.dump();
  }
  const nlohmann::json& tensors = lines[2]["tensors"];
  ASSERT_TRUE(tensors.contains("blk.0.attn_q.weight.lora_a")) << tensors.dump();
  const nlohmann::json& a = tensors["blk.0.attn_q.weight.lora_a"];
  EXPECT_GT(a["grad_norm"].get<double>(), 0.0);
  EXPECT_GT(a["update_ratio"].get<double>(), 0.0);
  EXPECT_GT(a["drift"].get<double>(), 0.0);
  EXPECT_TRUE(tensors["blk.0.attn_q.weight.lora_b"]["drift"].is_null());  // B starts at 0
  const nlohmann::json& taps = lines[2]["taps"];
  EXPECT_EQ(taps.size(), 6u) << taps.dump();  // attn_norm of 5 layers, resid_post of the last
  EXPECT_GT(taps["blk.4.resid_post"]["rms"].get<double>(), 0.0) << taps.dump();
  EXPECT_EQ(taps["blk.0.attn_norm"]["nonfinite"], 0) << taps.dump();
  EXPECT_EQ(lines[6]["final"], true);
  EXPECT_TRUE(lines[6].contains("val_loss"));
  fs::remove(out);
  fs::remove(metrics);
}

TEST(FinetuneCommand, BadFlagsAndModelsAreRefusedBeforeAnyWork) {
  const Corpus corpus;
  const std::string out = temp_path("-bad.gguf");
  const std::string data = " --data " + corpus.train + " -o " + out;
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {"-m " + stories() + data + " --full -r 4", "--lora-rank"},
      {"-m " + stories() + data + " --train-embeddings", "needs --full"},
      {"-m " + stories() + data + " --lora-targets q,w", "unknown target 'w'"},
      {"-m " + stories() + " --data " + corpus.train + " -o " + stories(), "-o"},
      {"-m " + stories() + data + " --resume /nonexistent/ckpt", "--resume"},
      {"-m " + stories() + data + " -r 0", "--lora-rank"},
      {"-m " + stories() + data + " -r 100000", "larger than"},
      {"-m " + stories() + data + " --full --out-type q3_x", "--out-type"},
      // stories260K's FFN rows (172 values) do not fit Q8_0's 32-value blocks: refused before
      // training, not after.
      {"-m " + stories() + data + " --full --out-type q8_0", "do not fit q8_0 blocks"},
      {"-m " + stories() + data + " --compute-type fp8", "--compute-type must be f32, bf16 or f16"},
      {"-m " + stories() + data + " --metrics /nonexistent/dir/m.jsonl", "--metrics"},
      {"-m " + stories() + data + " --tap ffn_out", "--tap records into --metrics"},
      {"-m " + stories() + data + " --tap ffn --metrics m.jsonl", "unknown tap point"},
      {"-m " + fixture_path("models/llama.gguf") + data, "vocabulary"},
      // Said on start, before the model's missing vocabulary stops the run.
      {"-m " + fixture_path("models/mixtral.gguf") + data, "experts and router are frozen"},
      {"-m " + fixture_path("models/gemma2.gguf") + data, "gemma2"},
  };
  for (const Case& c : cases) {
    std::string output;
    EXPECT_EQ(run_toy("finetune " + c.args, &output), 1) << c.args << "\n" << output;
    EXPECT_NE(output.find(c.message), std::string::npos) << c.args << "\n" << output;
    EXPECT_FALSE(fs::exists(out)) << c.args;
  }
}

}  // namespace
