// Training vocabularies (checked against toy's SentencePiece tokenizer reading
// the written vocabulary back) and the train/validation data loader.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "support/fixtures.h"
#include "tokenizer/tokenizer.h"
#include "train/dataset.h"
#include "train/vocab.h"

namespace toy::train {
namespace {

TEST(TrainVocab, ByteVocabularyIsControlsPlus256ByteTokens) {
  const TrainVocab v = TrainVocab::bytes();
  EXPECT_EQ(v.size(), 259);
  EXPECT_EQ(v.token(0), "<unk>");
  EXPECT_EQ(v.token(1), "<s>");
  EXPECT_EQ(v.token(2), "</s>");
  EXPECT_EQ(v.token(3), "<0x00>");
  EXPECT_EQ(v.token(258), "<0xFF>");
  EXPECT_EQ(v.encode("A\n\xC3\xA9"), (std::vector<int32_t>{3 + 'A', 3 + '\n', 3 + 0xC3, 3 + 0xA9}));
}

TEST(TrainVocab, CharsVocabularyHasOneTokenPerCharacterAndByteFallback) {
  const TrainVocab v = TrainVocab::chars("ab a\n\xC3\xA9");  // a b ' ' \n é
  EXPECT_EQ(v.size(), 259 + 5);
  const std::vector<int32_t> ids = v.encode("ba \xC3\xA9z");
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(v.token(ids[0]), "b");
  EXPECT_EQ(v.token(ids[1]), "a");
  EXPECT_EQ(v.token(ids[2]), "\xE2\x96\x81");  // SentencePiece's space
  EXPECT_EQ(v.token(ids[3]), "\xC3\xA9");
  EXPECT_EQ(ids[4], 3 + 'z');  // not in the corpus: byte fallback
}

TEST(TrainVocab, WrittenVocabularyTokenizesLikeTheTrainingEncoder) {
  const std::string corpus = testing::read_text(testing::fixture_path("text/tinyshakespeare.txt"));
  const TrainVocab v = TrainVocab::chars(corpus.substr(0, 20000));
  EXPECT_GT(v.size(), 259 + 40);
  gguf::Writer writer;
  writer.set("general.architecture", gguf::Value::string("llama"));
  v.write_metadata(writer);
  const std::string path = testing::temp_path(".gguf");
  writer.write(path);
  const auto file = gguf::File::open(path);
  const auto tokenizer = tokenizer::Tokenizer::from_gguf(*file);
  ASSERT_EQ(tokenizer->n_vocab(), v.size());
  const std::string text = corpus.substr(50000, 3000) + "Zebra {qu\xC3\xA9}";
  EXPECT_EQ(tokenizer->tokenize(text), v.encode(text));
  EXPECT_EQ(tokenizer->detokenize(v.encode(text)), text);
}

TEST(Dataset, SplitsTheTailAndSamplesShiftedWindowsReproducibly) {
  std::vector<int32_t> tokens(1000);
  for (int i = 0; i < 1000; ++i) tokens[i] = i;
  const Dataset data(tokens, 0.1, 16, "test");
  EXPECT_EQ(data.train_tokens(), 900);
  EXPECT_EQ(data.val_tokens(), 100);
  EXPECT_EQ(data.val_windows(), 6);  // (100 - 1) / 16
  std::mt19937_64 a(5), b(5);
  Batch x, y;
  data.sample_train(x, 4, a);
  data.sample_train(y, 4, b);
  EXPECT_EQ(x.tokens, y.tokens);
  for (int64_t i = 0; i < 4 * 16; ++i) {
    EXPECT_EQ(x.targets[i], x.tokens[i] + 1);
    EXPECT_LT(x.targets[i], 900);  // never reads the held-out tail
  }
  data.val_batch(x, 4, 4);  // windows 4, 5 and two past the end
  EXPECT_EQ(x.tokens[0], 900 + 4 * 16);
  EXPECT_EQ(x.targets[16 * 2 - 1], 900 + 6 * 16);
  EXPECT_EQ(x.targets[16 * 2], -1);
}

TEST(Dataset, RejectsTooLittleData) {
  std::vector<int32_t> tokens(20, 1);
  EXPECT_THROW(Dataset(tokens, 0.1, 64, "small.txt"), Error);
  EXPECT_THROW(Dataset(tokens, 1.5, 4, "small.txt"), Error);
}

}  // namespace
}  // namespace toy::train
