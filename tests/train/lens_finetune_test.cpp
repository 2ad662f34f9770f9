// The projection lens under full fine-tuning (toy finetune --full --donor-embeddings): a base's
// blocks over a donor's frozen table of another width, read through a new lens.proj.weight.
// The head is the base's when the vocabulary is the same (its output.weight, or for a tied
// base its own token_embd, which the donor's table no longer stands for), else a new
// output.weight that starts as the folded table. Whichever, the written model (lens folded,
// a standard GGUF) gives the training forward's logits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include "gguf/reader.h"
#include "grad_check.h"
#include "inference_logits.h"
#include "kernels/cpu/features.h"
#include "model/model.h"
#include "quant/quant.h"
#include "support/fixtures.h"
#include "train/finetune.h"
#include "train/lens.h"
#include "train/model.h"
#include "train/params.h"

namespace toy::train {
namespace {

constexpr int64_t kSeqs = 2, kPos = 6;

// A donor table [d_donor, V] in `type` (Q8_0: any stored type is read), random rows.
struct DonorTable {
  std::vector<uint8_t> bytes;
  Tensor table;
  DonorTable(int64_t d_donor, int64_t n_vocab, DType type) {
    const std::vector<double> values = testing::random_values(d_donor * n_vocab, 5, 0.05);
    const int64_t row = row_bytes(type, d_donor);
    bytes.resize(static_cast<size_t>(row * n_vocab));
    for (int64_t v = 0; v < n_vocab; ++v) {
      const std::vector<float> r(values.begin() + v * d_donor, values.begin() + (v + 1) * d_donor);
      quant::quantize_row(type, r.data(), bytes.data() + v * row, d_donor);
    }
    table = Tensor::view(type, bytes.data(), {d_donor, n_vocab});
  }
};

std::vector<int32_t> batch_tokens(int64_t n_vocab, int64_t mul, int64_t add) {
  std::vector<int32_t> tokens;
  for (int64_t i = 0; i < kSeqs * kPos; ++i)
    tokens.push_back(static_cast<int32_t>((i * mul + add) % n_vocab));
  return tokens;
}

// Trains `steps` AdamW steps on one batch; returns the first and last loss.
std::pair<double, double> train_steps(ParamStore<float>& store, int steps, const Compute& cx) {
  TrainModel<float> model(store, kSeqs, kPos);
  const int64_t V = store.config().n_vocab;
  const std::vector<int32_t> tokens = batch_tokens(V, 7, 3), targets = batch_tokens(V, 5, 1);
  double first = 0.0, last = 0.0;
  for (int step = 1; step <= steps; ++step) {
    store.zero_grads();
    const CrossEntropyResult r = model.forward(tokens.data(), targets.data(), cx);
    model.backward(1.0 / double(r.counted), cx);
    last = r.loss_sum / double(r.counted);
    if (step == 1) first = last;
    adamw_step(store, AdamWConfig{}, 3e-3, step, &cx.pool);
  }
  return {first, last};
}

// Writes the store folded, checks it is a standard lens-free model of the donor's vocabulary
// and that its inference logits are the training forward's to 1e-5 of their scale.
Model write_and_compare(ParamStore<float>& store, const Model& base, const Compute& cx,
                        const std::string& path) {
  write_finetuned_model(path, store, base, std::nullopt, cx.pool, [](gguf::Writer& w) {
    w.set("tokenizer.ggml.model", gguf::Value::string("none"));
  });
  Model written = Model::load(path);
  const ModelConfig& c = store.config();
  EXPECT_EQ(written.config.n_embd_lens, 0);
  EXPECT_EQ(written.config.n_vocab, c.n_vocab);
  EXPECT_EQ(written.weights.token_embd.ne[0], c.n_embd);
  EXPECT_EQ(written.weights.token_embd.ne[1], c.n_vocab);
  EXPECT_NE(written.weights.output.data, nullptr);  // the head is always written explicitly
  EXPECT_EQ(written.file->find_tensor("lens.proj.weight"), nullptr);

  // The forward on the store as it is now (a fresh TrainModel: no optimizer step after it).
  TrainModel<float> train(store, kSeqs, kPos);
  const std::vector<int32_t> tokens = batch_tokens(c.n_vocab, 3, 2);
  const std::vector<int32_t> targets = batch_tokens(c.n_vocab, 5, 1);
  train.forward(tokens.data(), targets.data(), cx);
  const int64_t V = c.n_vocab;
  for (int64_t s = 0; s < kSeqs; ++s) {
    const std::vector<int32_t> seq(tokens.begin() + s * kPos, tokens.begin() + (s + 1) * kPos);
    const std::vector<float> ref = testing::inference_logits(written, seq, nullptr, cx);
    double diff = 0.0, scale = 0.0;
    for (int64_t i = 0; i < kPos * V; ++i) {
      diff = std::max(diff, std::abs(double(train.logits()[s * kPos * V + i]) - ref[i]));
      scale = std::max(scale, std::abs(double(ref[i])));
    }
    EXPECT_LE(diff, 1e-5 * scale) << "sequence " << s;
  }
  return written;
}

const float* f32_data(const Tensor& t) {
  EXPECT_EQ(t.type, DType::F32);
  return static_cast<const float*>(t.data);
}

// Another vocabulary (40 tokens) and width (32) than the base's (320, 64): a new head that
// starts as the folded table, the lens and the blocks train, the donor's table does not.
TEST(LensFinetune, AnotherVocabularyGetsANewHeadStartingAsTheFoldedTable) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  const Model base = Model::load(testing::fixture_path("models/llama.gguf"));
  DonorTable donor(32, 40, DType::Q8_0);
  const std::vector<uint8_t> donor_before = donor.bytes;
  LensStore lens = make_lens_store(base, donor.table, /*keep_base_head=*/false,
                                   /*train_embeddings=*/false, /*train_experts=*/false, 7);
  EXPECT_EQ(lens.head, LensHead::New);
  ParamStore<float>& store = *lens.store;
  EXPECT_EQ(store.config().n_vocab, 40);
  EXPECT_EQ(store.config().n_embd_lens, 32);
  EXPECT_EQ(store.find("token_embd.weight"), nullptr);
  EXPECT_EQ(store.find("output_norm.weight"), nullptr);
  const ParamTensor* proj = store.find("lens.proj.weight");
  const ParamTensor* head = store.find("output.weight");
  ASSERT_NE(proj, nullptr);
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(proj->spec.ne[0], 32);
  EXPECT_EQ(proj->spec.ne[1], 64);
  EXPECT_EQ(head->spec.ne[0], 64);
  EXPECT_EQ(head->spec.ne[1], 40);
  // Tied at step 0: the head is the folded lens table, bit for bit.
  const std::vector<float> folded = fold_lens(store);
  ASSERT_EQ(static_cast<int64_t>(folded.size()), head->numel);
  EXPECT_EQ(std::memcmp(folded.data(), store.params() + head->offset, folded.size() * 4), 0);
  // The blocks start as the base's.
  const ParamTensor* wq = store.find("blk.0.attn_q.weight");
  ASSERT_NE(wq, nullptr);
  EXPECT_EQ(std::memcmp(store.params() + wq->offset, base.weights.layers[0].attn_q.data,
                        static_cast<size_t>(wq->numel) * 4),
            0);

  const auto [first, last] = train_steps(store, 20, cx);
  EXPECT_LT(last, 0.8 * first);
  EXPECT_EQ(donor.bytes, donor_before);
  const std::string path = testing::temp_path("lens-new-head.gguf");
  const Model written = write_and_compare(store, base, cx, path);
  // The trained head, no longer the folded table.
  EXPECT_EQ(std::memcmp(f32_data(written.weights.output), store.params() + head->offset,
                        static_cast<size_t>(head->numel) * 4),
            0);
  std::filesystem::remove(path);
}

// The same vocabulary on a tied base: its head is its own token_embd (not the donor's table),
// frozen in place, or with train_embeddings an F32 copy that trains; written as output.weight.
TEST(LensFinetune, ATiedBaseKeepsItsOwnTableAsTheHead) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  const Model base = Model::load(testing::fixture_path("models/llama-tied.gguf"));
  ASSERT_EQ(base.weights.output.data, nullptr);
  const Tensor& base_table = base.weights.token_embd;  // [64, 320]
  DonorTable donor(96, base.config.n_vocab, DType::F32);
  for (bool train_embeddings : {false, true}) {
    LensStore lens =
        make_lens_store(base, donor.table, /*keep_base_head=*/true, train_embeddings, false, 7);
    EXPECT_EQ(lens.head, LensHead::BaseTied);
    ParamStore<float>& store = *lens.store;
    const ParamTensor* head = store.find("output.weight");
    if (train_embeddings) {
      ASSERT_NE(head, nullptr);
      EXPECT_NE(store.find("output_norm.weight"), nullptr);
      EXPECT_EQ(std::memcmp(store.params() + head->offset, base_table.data, base_table.bytes()), 0);
    } else {
      EXPECT_EQ(head, nullptr);
      EXPECT_EQ(store.weights().output.data, base_table.data);  // read in place
    }
    train_steps(store, 5, cx);
    const std::string path = testing::temp_path("lens-tied.gguf");
    const Model written = write_and_compare(store, base, cx, path);
    const Tensor& out = written.weights.output;
    if (train_embeddings) {
      EXPECT_EQ(std::memcmp(out.data, store.params() + head->offset, out.bytes()), 0);
      EXPECT_NE(std::memcmp(out.data, base_table.data, out.bytes()), 0);
    } else {
      ASSERT_EQ(out.bytes(), base_table.bytes());
      EXPECT_EQ(std::memcmp(out.data, base_table.data, out.bytes()), 0);
    }
    std::filesystem::remove(path);
  }
}

// The same vocabulary on an untied base: its output.weight stays, frozen and written as stored.
TEST(LensFinetune, AnUntiedBaseKeepsItsOutputWeight) {
  ThreadPool pool(2);
  const Compute cx{pool, cpu::host_backend()};
  const Model base = Model::load(testing::fixture_path("models/llama.gguf"));
  DonorTable donor(32, base.config.n_vocab, DType::Q8_0);
  LensStore lens = make_lens_store(base, donor.table, true, false, false, 7);
  EXPECT_EQ(lens.head, LensHead::Base);
  EXPECT_EQ(lens.store->find("output.weight"), nullptr);
  train_steps(*lens.store, 5, cx);
  const std::string path = testing::temp_path("lens-untied.gguf");
  const Model written = write_and_compare(*lens.store, base, cx, path);
  const Tensor& out = written.weights.output;
  ASSERT_EQ(out.bytes(), base.weights.output.bytes());
  EXPECT_EQ(std::memcmp(out.data, base.weights.output.data, out.bytes()), 0);
  // Every tensor of the base is written once, with nothing added.
  EXPECT_EQ(written.file->tensors().size(), base.file->tensors().size());
  std::filesystem::remove(path);
}

TEST(LensFinetune, SameVocabularyComparesTheTokenTexts) {
  const auto stories = gguf::File::open(testing::fixture_path("models/stories260K.gguf"));
  const auto bare = gguf::File::open(testing::fixture_path("models/llama.gguf"));
  const tokenizer::Vocab a = tokenizer::Vocab::from_gguf(*stories);
  const tokenizer::Vocab b = tokenizer::Vocab::from_gguf(*stories);
  const tokenizer::Vocab none = tokenizer::Vocab::from_gguf(*bare);
  EXPECT_TRUE(same_vocabulary(a, b));
  EXPECT_FALSE(same_vocabulary(a, none));
  EXPECT_FALSE(same_vocabulary(none, none));  // bare ids: nothing says they are the same tokens
}

}  // namespace
}  // namespace toy::train
