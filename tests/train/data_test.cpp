// Training vocabularies (checked against toy's SentencePiece tokenizer reading
// the written vocabulary back) and the train/validation data loader.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
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

TEST(TrainVocab, ByteVocabularyIsControls256ByteTokensAndTheSpace) {
  const TrainVocab v = TrainVocab::bytes();
  EXPECT_EQ(v.size(), 260);
  EXPECT_EQ(v.token(0), "<unk>");
  EXPECT_EQ(v.token(1), "<s>");
  EXPECT_EQ(v.token(2), "</s>");
  EXPECT_EQ(v.token(3), "<0x00>");
  EXPECT_EQ(v.token(258), "<0xFF>");
  EXPECT_EQ(v.token(259), "\xE2\x96\x81");  // SentencePiece's space
  const auto tok = v.tokenizer();
  const std::string text = "A b\n\xC3\xA9";
  EXPECT_EQ(tok->tokenize(text),
            (std::vector<int32_t>{3 + 'A', 259, 3 + 'b', 3 + '\n', 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(tok->detokenize(tok->tokenize(text)), text);
}

TEST(TrainVocab, CharsVocabularyHasOneTokenPerCharacterAndByteFallback) {
  const TrainVocab v = TrainVocab::chars("ab a\n\xC3\xA9");  // a b ' ' \n é
  EXPECT_EQ(v.size(), 259 + 5);
  const std::vector<int32_t> ids = v.tokenizer()->tokenize("ba \xC3\xA9z");
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(v.token(ids[0]), "b");
  EXPECT_EQ(v.token(ids[1]), "a");
  EXPECT_EQ(v.token(ids[2]), "\xE2\x96\x81");  // SentencePiece's space
  EXPECT_EQ(v.token(ids[3]), "\xC3\xA9");
  EXPECT_EQ(ids[4], 3 + 'z');  // not in the corpus: byte fallback
}

// The tokenizer training uses (built from the vocabulary before any file exists) and the
// tokenizer of the written model give the same ids: the root of `toy tokenize` on a trained
// model reproducing the training ids, for every --vocab mode.
TEST(TrainVocab, TrainingTokenizerIsTheWrittenModelsTokenizer) {
  const std::string corpus = testing::read_text(testing::fixture_path("text/tinyshakespeare.txt"));
  const std::string text = corpus.substr(50000, 3000) + "Zebra {qu\xC3\xA9} \xFF\t\r\n  <s> end";
  for (const char* mode : {"byte", "chars"}) {
    SCOPED_TRACE(mode);
    const TrainVocab v = std::string(mode) == "chars" ? TrainVocab::chars(corpus.substr(0, 20000))
                                                      : TrainVocab::bytes();
    const std::vector<int32_t> trained = v.tokenizer()->tokenize(text);
    gguf::Writer writer;
    writer.set("general.architecture", gguf::Value::string("llama"));
    v.write_metadata(writer);
    const std::string path = testing::temp_path(".gguf");
    writer.write(path);
    const auto file = gguf::File::open(path);
    const auto written = tokenizer::Tokenizer::from_gguf(*file);
    ASSERT_EQ(written->n_vocab(), v.size());
    EXPECT_EQ(written->tokenize(text), trained);
    // Every id is a character (or byte) of the text: a space is one token, never "▁"'s bytes.
    EXPECT_EQ(std::count(trained.begin(), trained.end(), 3 + ' '), 0);
    EXPECT_EQ(std::count(trained.begin(), trained.end(), 3 + 0xE2), 0);
    const std::string valid = corpus.substr(50000, 3000) + "Zebra";
    EXPECT_EQ(written->detokenize(written->tokenize(valid)), valid);
    std::remove(path.c_str());
  }
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

// Examples of n tokens with the given loss masks (ids 100·e + i, so every id says where
// it came from).
std::vector<Example> make_examples(const std::vector<std::vector<uint8_t>>& masks) {
  std::vector<Example> examples;
  for (size_t e = 0; e < masks.size(); ++e) {
    Example ex;
    for (size_t i = 0; i < masks[e].size(); ++i) ex.tokens.push_back(int32_t(100 * e + i));
    ex.loss = masks[e];
    examples.push_back(ex);
  }
  return examples;
}

TEST(Dataset, ExamplesBecomeOneRowEachWithMaskedTargetsAndPadding) {
  // Example 0: prompt of 2 tokens, completion of 3; example 1: all loss; example 2 held out.
  const auto examples = make_examples({{0, 0, 1, 1, 1}, {1, 1, 1}, {0, 1}});
  const Dataset data(examples, 0.34, 6, /*pack=*/false, "sft.jsonl");
  EXPECT_TRUE(data.has_examples());
  EXPECT_EQ(data.train_stats().rows, 2);
  EXPECT_EQ(data.val_windows(), 1);
  EXPECT_EQ(data.train_tokens(), 5 + 3);
  Batch batch;
  data.val_batch(batch, 2, 0);
  EXPECT_EQ(batch.tokens, (std::vector<int32_t>{200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(batch.targets, (std::vector<int32_t>{201, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}));
  EXPECT_TRUE(batch.segment.empty());
  // Training rows drawn at random: each is one of the two examples, laid out whole.
  std::mt19937_64 rng(3);
  bool seen[2] = {false, false};
  for (int k = 0; k < 20; ++k) {
    data.sample_train(batch, 1, rng);
    EXPECT_EQ(batch.positions, (std::vector<int32_t>{0, 1, 2, 3, 4, 5}));
    if (batch.tokens[0] == 0) {
      seen[0] = true;
      EXPECT_EQ(batch.tokens, (std::vector<int32_t>{0, 1, 2, 3, 0, 0}));
      // Token 1 is prompt: position 0 predicts nothing; tokens 2..4 are targets.
      EXPECT_EQ(batch.targets, (std::vector<int32_t>{-1, 2, 3, 4, -1, -1}));
    } else {
      seen[1] = true;
      EXPECT_EQ(batch.tokens, (std::vector<int32_t>{100, 101, 0, 0, 0, 0}));
      EXPECT_EQ(batch.targets, (std::vector<int32_t>{101, 102, -1, -1, -1, -1}));
    }
  }
  EXPECT_TRUE(seen[0] && seen[1]);
}

TEST(Dataset, PackedRowsKeepExamplesApartWithSegmentsAndRestartingPositions) {
  // Lengths (positions = tokens − 1): 4, 2, 5, 1, 3, 7 (truncated from 9), and one dropped.
  std::vector<std::vector<uint8_t>> masks = {std::vector<uint8_t>(5, 1),
                                             std::vector<uint8_t>(3, 1),
                                             std::vector<uint8_t>(6, 1),
                                             std::vector<uint8_t>(2, 1),
                                             {1, 0, 1, 1},
                                             std::vector<uint8_t>(9, 1),
                                             {1, 0, 0}};
  const auto examples = make_examples(masks);
  const int64_t T = 7;
  const Dataset data(examples, 0.0, T, /*pack=*/true, "sft.jsonl");
  EXPECT_TRUE(data.packed());
  EXPECT_EQ(data.train_stats().examples, 6);
  EXPECT_EQ(data.train_stats().truncated, 1);
  EXPECT_EQ(data.train_stats().dropped, 1);  // no target (only token 0 has loss)
  // 4+2+5+1+3+7 = 22 positions in rows of 7: best-fit decreasing needs 4 rows.
  EXPECT_EQ(data.train_stats().rows, 4);
  std::vector<int> covered(examples.size() * 100, 0);
  std::mt19937_64 rng(1);
  Batch batch;
  for (int k = 0; k < 200; ++k) {
    data.sample_train(batch, 1, rng);
    ASSERT_EQ(batch.segment.size(), size_t(T));
    for (int64_t p = 0; p < T; ++p) {
      const int32_t token = batch.tokens[p], e = token / 100, i = token % 100;
      if (batch.segment[p] < 0) {  // padding
        EXPECT_EQ(batch.targets[p], -1);
        continue;
      }
      // Positions restart per example; a segment is one example; targets stay inside it.
      EXPECT_EQ(batch.positions[p], i);
      if (p > 0 && batch.segment[p - 1] == batch.segment[p]) {
        EXPECT_EQ(batch.tokens[p - 1] / 100, e);
      } else {
        EXPECT_EQ(i, 0);
      }
      const int32_t expected = masks[e][i + 1] ? token + 1 : -1;
      EXPECT_EQ(batch.targets[p], expected) << "example " << e << " token " << i;
      covered[token] = 1;
    }
  }
  // Every position of every kept example appears (the truncated one up to T positions).
  const int64_t lengths[] = {4, 2, 5, 1, 3, 7};
  for (int e = 0; e < 6; ++e)
    for (int i = 0; i < lengths[e]; ++i) EXPECT_EQ(covered[100 * e + i], 1) << e << " " << i;
  EXPECT_EQ(covered[100 * 5 + 7], 0);  // cut off
}

TEST(Dataset, ExamplesNeedSomethingToLearnInEachPart) {
  EXPECT_THROW(Dataset(make_examples({{0, 0}, {1, 0}}), 0.0, 8, false, "x.jsonl"), Error);
  // Five examples hold out none at 0.1.
  try {
    Dataset(make_examples({{1, 1}, {1, 1}, {1, 1}, {1, 1}, {1, 1}}), 0.1, 8, true, "x.jsonl");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.jsonl"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace toy::train
