// toy merge -m BASE --lora ADAPTER [--lora-scale S] -o MERGED.gguf [--out-type T]: adds
// LoRA adapters into the base model's weights, like llama.cpp's llama-export-lora.
//
// Each adapted matrix becomes W' = W + Σ scale·(alpha/r)·B·A, computed in F32 from the
// dequantized base and stored in the base tensor's type (or --out-type). Every other tensor
// and all metadata are copied unchanged, so the result is a standard model of the same
// architecture that llama.cpp and toy load. The output is written atomically.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "cli/adapters.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/files.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "gguf/copy.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "model/lora.h"
#include "model/model.h"
#include "quant/quant.h"
#include "train/finetune.h"

namespace toy::cli {
namespace {

// Writes W' = W + adapter terms as `type` into dst, rows split across the pool.
void merge_rows(const Tensor& w, std::span<const LoraTerm> terms, DType type, uint8_t* dst,
                ThreadPool& pool) {
  const int64_t n_in = w.ne[0];
  const auto out_row_bytes = static_cast<size_t>(row_bytes(type, n_in));
  // A block of rows per task: each thread dequantizes, adds B·A and requantizes its rows.
  constexpr int64_t kRows = 16;
  const int64_t n_blocks = (w.ne[1] + kRows - 1) / kRows;
  pool.parallel_for(n_blocks, [&](int64_t begin, int64_t end) {
    std::vector<float> rows(static_cast<size_t>(kRows * n_in));  // (kRows, n_in)
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t row0 = blk * kRows, n = std::min(kRows, w.ne[1] - row0);
      for (int64_t r = 0; r < n; ++r)
        quant::dequantize_row(w.type, w.row(row0 + r), &rows[r * n_in], n_in);
      add_lora_rows(rows.data(), row0, n, n_in, terms);
      for (int64_t r = 0; r < n; ++r)
        quant::quantize_row(type, &rows[r * n_in], dst + (row0 + r) * out_row_bytes, n_in);
    }
  });
}

}  // namespace

int run_merge(int argc, char** argv) {
  CommandLine cl("merge",
                 "Add LoRA adapters into a model's weights and write the merged model\n"
                 "(llama.cpp's llama-export-lora): W' = W + scale*(alpha/r)*B*A in f32, stored in\n"
                 "the base tensor's type unless --out-type says otherwise.");
  CLI::App& app = cl.app();
  std::string model_path, out_path, out_type_name;
  int threads = default_thread_count();
  app.add_option("-m,--model", model_path, "base GGUF model")->required();
  app.add_option("-o,--output", out_path, "merged model (written atomically)")->required();
  app.add_option("--out-type", out_type_name,
                 "type of the merged matrices: f32, f16, bf16, q8_0, q4_0, q4_k, ... "
                 "(default: each base tensor's type)");
  cl.add_threads(threads);
  LoraOptions lora(cl);
  if (!cl.parse(argc, argv)) return 0;
  if (!lora.given()) usage_error("give at least one adapter with --lora FILE");
  lora.check();
  std::optional<DType> out_type;
  if (!out_type_name.empty()) {
    out_type = dtype_from_name(out_type_name);
    if (!out_type || !quant::can_quantize(*out_type))
      usage_error("--out-type: unknown or unwritable type '", out_type_name,
                  "' (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, ...)");
  }
  std::vector<NamedPath> inputs = lora.inputs();
  inputs.push_back({"-m", model_path});
  check_output({"-o", out_path}, inputs);

  const Model model = Model::load(model_path);
  const LoraSet adapters = lora.load(model);
  const gguf::File& file = *model.file;

  gguf::Writer writer;
  gguf::copy_metadata(file, writer);
  ThreadPool pool(threads);
  int merged = 0;
  for (const gguf::TensorInfo& info : file.tensors()) {
    const Tensor w = file.tensor(info);
    std::vector<int64_t> ne(info.ne.begin(), info.ne.begin() + info.n_dims);
    const auto terms = adapters.find(w.data);
    if (terms.empty()) {
      writer.add_tensor(std::string(info.name), info.type, std::move(ne), w.data);
      continue;
    }
    const DType type = train::written_type(std::string(info.name), info.ne[0], info.type, out_type);
    writer.add_tensor(
        std::string(info.name), type, std::move(ne),
        [w, terms, type, &pool](uint8_t* dst) { merge_rows(w, terms, type, dst, pool); });
    ++merged;
  }
  Timer timer;
  writer.write(out_path);
  std::fprintf(stderr, "toy merge: %d matrices merged from %zu adapter(s) into %s in %.2f s\n",
               merged, adapters.size(), out_path.c_str(), timer.seconds());
  return 0;
}

}  // namespace toy::cli
