// Hybrid models (gated delta-net layers) end to end: toy init --layer-pattern, toy
// train --layer-pattern, then generate, perplexity, chat, logits (prefill = decode),
// quantize, and toy finetune (LoRA and full, with an F16 output) on the result.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "support/fixtures.h"

namespace {

using toy::testing::binary_dir;
using toy::testing::fixture_path;
using toy::testing::read_bytes;
using toy::testing::read_text;
using toy::testing::run_command;
using toy::testing::temp_path;

int toy_run(const std::string& args, std::string* output) {
  return run_command("timeout 300 '" + binary_dir() + "/toy' " + args + " 2>&1", output);
}

std::string corpus() {
  static const std::string path = [] {
    const std::string p = temp_path("-hybrid.txt");
    std::ofstream(p) << read_text(fixture_path("text/tinyshakespeare.txt")).substr(0, 40000);
    return p;
  }();
  return path;
}

std::vector<float> floats(const std::string& path) {
  const std::vector<uint8_t> bytes = read_bytes(path);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

TEST(HybridCommands, InitWritesThePerLayerKinds) {
  const std::string path = temp_path("-init-hybrid.gguf");
  std::string out;
  ASSERT_EQ(toy_run("init --n-embd 64 --n-layer 4 --n-head 4 --n-ff 96 --vocab 300 "
                    "--layer-pattern attn,gdn -o " +
                        path,
                    &out),
            0)
      << out;
  auto file = toy::gguf::File::open(path);
  EXPECT_EQ(file->get("llama.attention.head_count_kv").u32s(), (std::vector<uint32_t>{4, 0, 4, 0}));
  EXPECT_EQ(file->get_u32("llama.ssm.conv_kernel"), 4u);
  EXPECT_NE(file->find_tensor("blk.1.ssm_conv1d.weight"), nullptr);
  EXPECT_EQ(file->find_tensor("blk.1.attn_q.weight"), nullptr);
  EXPECT_NE(toy_run("init --n-embd 64 --n-layer 4 --n-head 4 --n-ff 96 --vocab 300 "
                    "--layer-pattern attn,lstm -o " +
                        temp_path(".gguf"),
                    &out),
            0);
  EXPECT_NE(out.find("--layer-pattern entry 2 is 'lstm'"), std::string::npos) << out;
}

TEST(HybridCommands, TrainThenRunAndFinetune) {
  const std::string model = temp_path("-trained-hybrid.gguf");
  std::string out;
  ASSERT_EQ(toy_run("train -o " + model + " --data " + corpus() +
                        " --vocab chars --n-embd 32 --n-layer 2 --n-head 4 --n-ff 64 --ctx 32"
                        " --batch 8 --steps 30 --lr 3e-3 --warmup 5 -t 2 -q"
                        " --layer-pattern gdn,attn",
                    &out),
            0)
      << out;
  ASSERT_EQ(toy_run("generate -m " + model + " -p ROMEO -n 16 --temp 0", &out), 0) << out;
  ASSERT_EQ(toy_run("perplexity -m " + model + " -f " + corpus() + " -c 32 --chunks 3", &out), 0)
      << out;
  EXPECT_NE(out.find("Final estimate: PPL"), std::string::npos) << out;
  // Two chat turns: the second continues the recurrent state the first left in the cache.
  ASSERT_EQ(run_command("printf 'ROMEO\\nJULIET\\n' | timeout 300 '" + binary_dir() +
                            "/toy' chat -m " + model + " --temp 0 -n 6 --ignore-eos -c 128 2>&1",
                        &out),
            0)
      << out;
  size_t replies = 0;
  for (size_t at = out.find("[6 tokens"); at != std::string::npos;
       at = out.find("[6 tokens", at + 1))
    ++replies;
  EXPECT_EQ(replies, 2u) << out;
  // A whole prompt at once and one token at a time through the recurrent state.
  const std::string a = temp_path(".f32"), b = temp_path(".f32");
  const std::string ids = "--tokens 1,5,9,2,7,3,8,4,6,10,11,12,13,14,15,16,17";
  ASSERT_EQ(toy_run("logits -m " + model + " " + ids + " -o " + a, &out), 0) << out;
  ASSERT_EQ(toy_run("logits -m " + model + " " + ids + " --decode -o " + b, &out), 0) << out;
  const auto la = floats(a), lb = floats(b);
  ASSERT_EQ(la.size(), lb.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < la.size(); ++i) {
    diff = std::max(diff, double(std::abs(la[i] - lb[i])));
    scale = std::max(scale, double(std::abs(la[i])));
  }
  EXPECT_LE(diff, 1e-5 * scale);
  // Quantized: the convolution kernel stays F32, the rest Q8_0.
  const std::string q8 = temp_path("-hybrid-q8.gguf");
  ASSERT_EQ(toy_run("quantize " + model + " " + q8 + " q8_0", &out), 0) << out;
  ASSERT_EQ(toy_run("generate -m " + q8 + " -p ROMEO -n 8 --temp 0", &out), 0) << out;
  // LoRA (q,v: the fused attn_qkv in the GDN layer) and a full fine-tune written as F16.
  const std::string adapter = temp_path("-hybrid-lora.gguf");
  ASSERT_EQ(toy_run("finetune -m " + model + " --data " + corpus() + " -o " + adapter +
                        " --steps 4 --batch 4 --ctx 32 -t 2 -q",
                    &out),
            0)
      << out;
  auto lora = toy::gguf::File::open(adapter);
  EXPECT_NE(lora->find_tensor("blk.0.attn_qkv.weight.lora_a"), nullptr);
  EXPECT_NE(lora->find_tensor("blk.1.attn_q.weight.lora_a"), nullptr);
  ASSERT_EQ(
      toy_run("generate -m " + model + " --lora " + adapter + " -p ROMEO -n 8 --temp 0", &out), 0)
      << out;
  const std::string full = temp_path("-hybrid-full.gguf");
  ASSERT_EQ(toy_run("finetune -m " + model + " --data " + corpus() + " -o " + full +
                        " --full --out-type f16 --steps 4 --batch 4 --ctx 32 -t 2 -q",
                    &out),
            0)
      << out;
  ASSERT_EQ(toy_run("generate -m " + full + " -p ROMEO -n 8 --temp 0", &out), 0) << out;
  // Packed rows would carry a recurrent state from one example into the next.
  const std::string jsonl = temp_path(".jsonl");
  std::ofstream(jsonl) << "{\"text\": \"to be or not to be\"}\n{\"text\": \"that is it\"}\n";
  EXPECT_NE(toy_run("finetune -m " + model + " --data " + jsonl + " -o " + temp_path(".gguf") +
                        " --pack --steps 1 --batch 1 --ctx 32 -q",
                    &out),
            0);
}

}  // namespace
