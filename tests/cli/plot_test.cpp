// toy plot and toy train --plot end to end: the SVG parses as XML (xmllint), renders with
// librsvg (rsvg-convert, as a browser would show it) to a PNG that is not blank, holds the
// expected series and legend, is the same whether drawn during training or afterwards from
// the --metrics file; bad inputs are refused naming the file and line, leaving no output.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/fixtures.h"

namespace {

namespace fs = std::filesystem;
using toy::testing::binary_dir;
using toy::testing::fixture_path;
using toy::testing::read_bytes;
using toy::testing::read_text;
using toy::testing::run_command;
using toy::testing::temp_path;

using toy::testing::run_toy;

bool have(const std::string& tool) {
  return run_command("command -v " + tool, nullptr) == 0;
}

std::string write_file(const std::string& suffix, const std::string& text) {
  const std::string path = temp_path(suffix);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// A short run's log as toy train --metrics writes it: per-step lines, validation every 4
// steps, a null loss, an overflow-skipped step, per-tensor statistics every 4 steps and the
// final line.
std::string small_metrics(int n_layers = 2) {
  std::string text;
  for (int step = 1; step <= 12; ++step) {
    char line[256];
    std::snprintf(line, sizeof(line),
                  "{\"step\":%d,\"loss\":%s,\"lr\":%g,\"tokens_per_s\":1000.0,\"grad_norm\":%g,"
                  "\"loss_scale\":1.0,\"seconds\":%d.5",
                  step, step == 6 ? "null" : std::to_string(4.0 - 0.2 * step).c_str(),
                  1e-3 * std::min(step, 4) / 4, 2.0 / step, step);
    text += line;
    if (step == 7) text += ",\"skipped\":true";
    if (step % 4 == 0) text += ",\"val_loss\":" + std::to_string(4.1 - 0.2 * step);
    if (step % 4 == 0) {
      text += ",\"tensors\":{";
      for (int l = 0; l < n_layers; ++l)
        for (const char* t : {"attn_q", "ffn_down"}) {
          std::snprintf(line, sizeof(line),
                        "\"blk.%d.%s.weight\":{\"grad_norm\":%g,\"update_ratio\":0.001,"
                        "\"drift\":0.01},",
                        l, t, 0.5 / (l + 1) / step);
          text += line;
        }
      text += "\"token_embd.weight\":{\"grad_norm\":0.2,\"update_ratio\":null,\"drift\":null}}";
    }
    text += "}\n";
  }
  text +=
      "{\"final\":true,\"step\":12,\"train_loss\":1.6,\"val_loss\":1.7,"
      "\"tokens_per_s\":1000.0}\n";
  return text;
}

// The SVG is well-formed XML and librsvg draws it: the PNG has the SVG's size and is not an
// empty canvas (much larger than a blank render of the same size, which compresses to little).
void expect_renders(const std::string& svg_path) {
  std::string output;
  ASSERT_TRUE(fs::exists(svg_path)) << svg_path;
  if (!have("xmllint") || !have("rsvg-convert"))
    GTEST_SKIP() << "xmllint / rsvg-convert missing: run scripts/install-deps.sh";
  EXPECT_EQ(run_command("xmllint --noout '" + svg_path + "'", &output), 0) << output;
  const std::string png = temp_path(".png");
  ASSERT_EQ(run_command("rsvg-convert -o '" + png + "' '" + svg_path + "'", &output), 0) << output;
  const std::vector<uint8_t> bytes = read_bytes(png);
  ASSERT_GT(bytes.size(), 24u);
  EXPECT_EQ(std::string(bytes.begin() + 1, bytes.begin() + 4), "PNG");
  const auto be32 = [&](size_t at) {
    return (uint32_t(bytes[at]) << 24) | (uint32_t(bytes[at + 1]) << 16) |
           (uint32_t(bytes[at + 2]) << 8) | uint32_t(bytes[at + 3]);
  };
  const uint32_t width = be32(16), height = be32(20);  // IHDR
  EXPECT_GE(width, 400u);
  EXPECT_GE(height, 300u);
  const std::string blank =
      write_file(".svg", "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                             std::to_string(width) + "\" height=\"" + std::to_string(height) +
                             "\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/></svg>");
  const std::string blank_png = temp_path(".png");
  ASSERT_EQ(run_command("rsvg-convert -o '" + blank_png + "' '" + blank + "'", &output), 0);
  EXPECT_GT(bytes.size(), 5 * read_bytes(blank_png).size());
  fs::remove(png);
  fs::remove(blank_png);
  fs::remove(blank);
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(PlotCommand, LossPlotHasTheSeriesAxesAndLegend) {
  const std::string metrics = write_file(".jsonl", small_metrics());
  const std::string svg = temp_path(".svg");
  std::string output;
  ASSERT_EQ(run_toy("plot " + metrics + " -o " + svg + " --title 'loss <&> \"run\"'", &output), 0)
      << output;
  expect_renders(svg);
  const std::string text = read_text(svg);
  EXPECT_TRUE(text.starts_with("<?xml")) << text.substr(0, 100);
  for (const char* expected : {">train loss<", ">val loss<", ">learning rate<", ">step<",
                               ">final val (whole split)<", "loss &lt;&amp;&gt; &quot;run&quot;"})
    EXPECT_NE(text.find(expected), std::string::npos) << expected;
  // Train loss, validation loss and lr are lines; the null loss at step 6 breaks the train
  // line into two pieces (two "M" commands in its path).
  EXPECT_EQ(count(text, "<path "), 3u);
  const size_t train_path = text.find("<path d=\"M");
  ASSERT_NE(train_path, std::string::npos);
  const std::string d = text.substr(train_path, text.find('"', train_path + 9) - train_path);
  EXPECT_EQ(count(d, "M"), 2u) << d;
  // Validation points are marked: 3 of them, plus the final value.
  EXPECT_GE(count(text, "<circle"), 4u);

  // --smooth: an EMA line over the faint raw curve, with the same gap.
  ASSERT_EQ(run_toy("plot " + metrics + " -o " + svg + " --smooth 0.5", &output), 0) << output;
  expect_renders(svg);
  const std::string smoothed = read_text(svg);
  EXPECT_EQ(count(smoothed, "<path "), 4u);
  EXPECT_NE(smoothed.find(">smoothed (EMA 0.5)<"), std::string::npos);
  EXPECT_NE(smoothed.find("stroke-opacity=\"0.3\""), std::string::npos);
  EXPECT_EQ(run_toy("plot " + metrics + " -o " + svg + " --smooth 1", &output), 1);
  EXPECT_NE(output.find("--smooth"), std::string::npos) << output;
}

TEST(PlotCommand, GradsPlotHasOneLinePerTensorOrPerLayer) {
  std::string output;
  const std::string svg = temp_path(".svg");
  const std::string few = write_file(".jsonl", small_metrics(2));  // 5 tensors
  ASSERT_EQ(run_toy("plot " + few + " --grads -o " + svg, &output), 0) << output;
  expect_renders(svg);
  std::string text = read_text(svg);
  for (const char* name : {">all (global norm)<", ">blk.0.attn_q.weight<",
                           ">blk.1.ffn_down.weight<", ">token_embd.weight<", "(log scale)"})
    EXPECT_NE(text.find(name), std::string::npos) << name;

  // 8 layers × 2 + 1 tensors: combined per layer (9 lines), then the 4 largest.
  const std::string many = write_file(".jsonl", small_metrics(8));
  ASSERT_EQ(run_toy("plot " + many + " --grads -o " + svg, &output), 0) << output;
  text = read_text(svg);
  EXPECT_NE(text.find(">blk.7<"), std::string::npos);
  EXPECT_EQ(text.find(">blk.7.attn_q.weight<"), std::string::npos);
  EXPECT_NE(text.find("17 tensors combined per layer"), std::string::npos);
  ASSERT_EQ(run_toy("plot " + many + " --grads --max-lines 4 -o " + svg, &output), 0) << output;
  expect_renders(svg);
  text = read_text(svg);
  EXPECT_NE(text.find("4 of 9 largest"), std::string::npos);
  EXPECT_NE(text.find(">blk.0<"), std::string::npos);  // the largest layer stays
  EXPECT_EQ(text.find(">blk.7<"), std::string::npos);  // the smallest is left out
}

TEST(PlotCommand, SinglePointAndEmptySeriesStillRender) {
  const std::string metrics =
      write_file(".jsonl", "{\"step\":1,\"loss\":2.5,\"lr\":null,\"grad_norm\":1.0}\n");
  const std::string svg = temp_path(".svg");
  std::string output;
  ASSERT_EQ(run_toy("plot " + metrics + " -o " + svg, &output), 0) << output;
  expect_renders(svg);
  const std::string text = read_text(svg);
  EXPECT_NE(text.find("<circle"), std::string::npos);    // a lone point is a dot
  EXPECT_NE(text.find(">no data<"), std::string::npos);  // the lr panel
  ASSERT_EQ(run_toy("plot " + metrics + " --grads -o " + svg, &output), 0) << output;
  expect_renders(svg);
}

TEST(PlotCommand, BadInputsAreRefusedAndLeaveNoOutput) {
  const std::string dir = temp_path("-dir");
  fs::create_directory(dir);
  const std::string out = dir + "/out.svg";
  const std::string good = write_file(".jsonl", small_metrics());
  struct Case {
    std::string args, expected;
  };
  const std::string not_json = write_file(".jsonl", small_metrics() + "step 13 loss 1.0\n");
  const std::string no_steps = write_file(".jsonl", "{\"text\":\"hello\"}\n{\"text\":\"x\"}\n");
  const std::string array = write_file(".jsonl", "[1, 2]\n");
  const std::string bad_step = write_file(".jsonl", "{\"step\":\"one\",\"loss\":1}\n");
  const std::string empty = write_file(".jsonl", "");
  const Case cases[] = {
      {dir + "/missing.jsonl -o " + out, "missing.jsonl: cannot open"},
      {dir + " -o " + out, "is a directory"},
      {not_json + " -o " + out, not_json + " line 14: not JSON"},
      {no_steps + " -o " + out, no_steps + ": no training steps"},
      {array + " -o " + out, array + " line 1: expected a JSON object"},
      {bad_step + " -o " + out, bad_step + " line 1: \"step\" must be"},
      {empty + " -o " + out, empty + ": the file is empty"},
      {good + " -o " + good, "is the same file as"},
      {good + " -o " + dir, "is a directory"},
      {good + " -o " + dir + "/no/such/dir/x.svg", "does not exist"},
      {good, "-o"},
      {good + " -o " + out + " --grads --max-lines 0", "--max-lines"},
  };
  for (const Case& c : cases) {
    std::string output;
    EXPECT_EQ(run_toy("plot " + c.args, &output), 1) << c.args << "\n" << output;
    EXPECT_NE(output.find(c.expected), std::string::npos) << c.args << "\n" << output;
    EXPECT_FALSE(fs::exists(out)) << c.args;
  }
  EXPECT_EQ(read_text(good), small_metrics());  // -o equal to the input did not touch it
  fs::remove_all(dir);
}

const std::string kTiny =
    " --n-embd 32 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 64 --ctx 32 --batch 8"
    " --lr 3e-3 --warmup 5 --eval-every 10 -q -t 1";

std::string small_corpus() {
  static const std::string path = [] {
    const std::string p = temp_path(".txt");
    std::ofstream(p) << read_text(fixture_path("text/tinyshakespeare.txt")).substr(0, 20000);
    return p;
  }();
  return path;
}

TEST(PlotTraining, TrainWritesThePlotsAndToyPlotDrawsTheSameFromMetrics) {
  const std::string model = temp_path(".gguf"), loss = temp_path(".svg"), grads = temp_path(".svg"),
                    metrics = temp_path(".jsonl");
  std::string output;
  ASSERT_EQ(run_toy("train -o " + model + " --data " + small_corpus() +
                        " --vocab chars --steps 30" + kTiny + " --metrics-every 5 --plot " + loss +
                        " --plot-grads " + grads + " --metrics " + metrics,
                    &output),
            0)
      << output;
  expect_renders(loss);
  expect_renders(grads);
  const std::string text = read_text(loss);
  EXPECT_NE(text.find(">val loss<"), std::string::npos);
  EXPECT_NE(text.find("step 30: loss"), std::string::npos);
  EXPECT_NE(read_text(grads).find(">blk.1<"), std::string::npos);  // 2 layers' tensors, combined

  // The metrics file drawn afterwards gives the same picture: the JSON numbers round-trip.
  const std::string again = temp_path(".svg");
  ASSERT_EQ(
      run_toy("plot " + metrics + " -o " + again + " --title 'train: " + model + "'", &output), 0)
      << output;
  EXPECT_EQ(read_text(again), text);
  ASSERT_EQ(run_toy("plot " + metrics + " --grads -o " + again +
                        " --title 'gradient norms: train: " + model + "'",
                    &output),
            0)
      << output;
  EXPECT_EQ(read_text(again), read_text(grads));
}

TEST(PlotTraining, PlotWithoutMetricsAndBadPlotFlags) {
  const std::string model = temp_path(".gguf"), loss = temp_path(".svg");
  const std::string base =
      "train -o " + model + " --data " + small_corpus() + " --vocab chars --steps 6" + kTiny;
  std::string output;
  ASSERT_EQ(run_toy(base + " --plot " + loss, &output), 0) << output;
  expect_renders(loss);
  EXPECT_NE(read_text(loss).find(">train loss<"), std::string::npos);

  // A run that diverges stops with an error, and its plot shows the steps up to there.
  const std::string diverged = temp_path(".svg");
  EXPECT_EQ(run_toy("train -o " + model + " --data " + small_corpus() +
                        " --vocab chars --steps 40 --n-embd 32 --n-layer 2 --n-head 4 --n-ff 64"
                        " --ctx 32 --batch 8 -q -t 1 --lr 1e3 --grad-clip 0 --plot " +
                        diverged,
                    &output),
            1);
  EXPECT_NE(output.find("not finite"), std::string::npos) << output;
  expect_renders(diverged);
  EXPECT_NE(read_text(diverged).find(">train loss<"), std::string::npos);

  const std::string dir = temp_path("-dir");
  fs::create_directory(dir);
  EXPECT_EQ(run_toy(base + " --plot " + dir, &output), 1);
  EXPECT_NE(output.find("--plot"), std::string::npos) << output;
  EXPECT_EQ(run_toy(base + " --plot " + small_corpus(), &output), 1);
  EXPECT_NE(output.find("same file"), std::string::npos) << output;
  EXPECT_EQ(run_toy(base + " --plot " + dir + "/m.jsonl --metrics " + dir + "/m.jsonl", &output),
            1);
  EXPECT_NE(output.find("--plot and --metrics name the same file"), std::string::npos) << output;
  EXPECT_EQ(run_toy(base + " --plot " + dir + "/p.svg --plot-grads " + dir + "/./p.svg", &output),
            1);
  EXPECT_NE(output.find("--plot-grads and --plot name the same file"), std::string::npos) << output;
  EXPECT_EQ(run_toy(base + " --plot-grads " + dir + "/g.svg --metrics-every 0", &output), 1);
  EXPECT_NE(output.find("--metrics-every"), std::string::npos) << output;
  EXPECT_TRUE(fs::is_empty(dir));
  fs::remove_all(dir);
}

// toy finetune shares the flags: LoRA tensors are plotted under their adapter names, the
// plots are written at --save-every, and a resumed run's plot continues the curve from the
// steps its --metrics file already holds.
TEST(PlotTraining, FinetuneWritesAtSaveEveryAndResumeContinuesTheCurve) {
  const std::string corpus = temp_path(".txt");
  std::ofstream(corpus) << read_text(fixture_path("text/tinyshakespeare.txt")).substr(0, 8000);
  const std::string out = temp_path(".gguf"), ckpt = temp_path("-ckpt"), loss = temp_path(".svg"),
                    grads = temp_path(".svg"), metrics = temp_path(".jsonl");
  const std::string common = "finetune -m " + fixture_path("models/stories260K.gguf") + " --data " +
                             corpus + " -o " + out + " --lora-targets q,v -c 32" +
                             " --batch 2 --eval-every 4 --eval-batches 2 -q -t 1 --metrics " +
                             metrics + " --metrics-every 2 --plot " + loss + " --plot-grads " +
                             grads + " --save-every 4 --checkpoint-dir " + ckpt;
  std::string output;
  ASSERT_EQ(run_toy(common + " --steps 4", &output), 0) << output;
  expect_renders(grads);
  EXPECT_NE(read_text(grads).find(">blk.0<"), std::string::npos);  // 5 layers × 4 adapters
  EXPECT_NE(read_text(grads).find("20 tensors combined per layer"), std::string::npos);
  EXPECT_NE(read_text(loss).find("step 4: loss"), std::string::npos);
  ASSERT_EQ(run_toy(common + " --steps 8 --resume " + ckpt, &output), 0) << output;
  expect_renders(loss);
  const std::string text = read_text(loss);
  EXPECT_NE(text.find("step 8: loss"), std::string::npos);
  // Steps 1..8 in one line: 8 points, the first at step 1 (x = the left edge of the axis).
  const size_t at = text.find("<path d=\"M");
  ASSERT_NE(at, std::string::npos);
  const std::string d = text.substr(at, text.find('"', at + 9) - at);
  EXPECT_EQ(count(d, "L"), 7u) << d;
  std::string again = temp_path(".svg");
  ASSERT_EQ(
      run_toy("plot " + metrics + " -o " + again + " --title 'finetune: " + out + "'", &output), 0)
      << output;
  EXPECT_EQ(read_text(again), text);
  ASSERT_EQ(run_toy("plot " + metrics + " --grads --max-lines 20 -o " + again, &output), 0)
      << output;
  EXPECT_NE(read_text(again).find(">blk.0.attn_q.weight.lora_a<"), std::string::npos);
  fs::remove_all(ckpt);
}

}  // namespace
