// toy quantize IN.gguf OUT.gguf TYPE [-t N]: converts a model's weight matrices to
// another weight type, like llama-quantize.
//
// Weight matrices (n_dims >= 2, name ending in ".weight", not a norm, not the MoE
// router `ffn_gate_inp`) are converted row by row — 3-D expert tensors per row too;
// everything else is copied unchanged. TYPE q4_k_m / q5_k_m / q4_k_s / q5_k_s are
// llama.cpp's K-quant mixtures (output and some attn_v / ffn_down layers get more bits);
// rows that do not fit a K-quant's 256 block fall back to a block-32 type like
// llama-quantize does (quant/quant_policy.h). TYPE = f32 dequantizes every tensor, so the
// output holds exactly the values the engine computes with. Metadata is copied and
// general.file_type (llama.cpp's LLAMA_FTYPE numbering) updated. The output is
// written atomically: on any error nothing appears under OUT.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
#include "quant/quant.h"
#include "quant/quant_policy.h"

namespace toy::cli {
namespace {

// The output types and their llama.cpp file type (LLAMA_FTYPE_*). A plain K-quant name
// (q4_k) is pure: every weight in that type, like `llama-quantize --pure Q4_K_S`. The _s/_m
// names are llama.cpp's mixtures (see quant/quant_policy.h).
struct TargetType {
  std::string_view name;
  DType type;
  uint32_t file_type;
  quant::Mix mix = quant::Mix::kPure;
};

constexpr TargetType kTargets[] = {
    {"f32", DType::F32, 0},
    {"f16", DType::F16, 1},
    {"bf16", DType::BF16, 32},
    {"q8_0", DType::Q8_0, 7},
    {"q4_0", DType::Q4_0, 2},
    {"q4_1", DType::Q4_1, 3},
    {"q5_0", DType::Q5_0, 8},
    {"q5_1", DType::Q5_1, 9},
    {"q2_k", DType::Q2_K, 10},
    {"q3_k", DType::Q3_K, 11},
    {"q4_k", DType::Q4_K, 14},
    {"q5_k", DType::Q5_K, 16},
    {"q6_k", DType::Q6_K, 18},
    {"q4_k_s", DType::Q4_K, 14, quant::Mix::kQ4_K_S},
    {"q4_k_m", DType::Q4_K, 15, quant::Mix::kQ4_K_M},
    {"q5_k_s", DType::Q5_K, 16, quant::Mix::kQ5_K_S},
    {"q5_k_m", DType::Q5_K, 17, quant::Mix::kQ5_K_M},
};

constexpr uint32_t kQuantizationVersion = 2;  // ggml's GGML_QNT_VERSION

std::string valid_type_list() {
  std::string list;
  for (const TargetType& t : kTargets) list += (list.empty() ? "" : ", ") + std::string(t.name);
  return list;
}

const TargetType& parse_target(const std::string& name) {
  std::string lower = name;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const TargetType& t : kTargets)
    if (t.name == lower) return t;
  usage_error("unknown TYPE '", name, "'; valid types: ", valid_type_list());
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The tensors llama-quantize converts: weight matrices, not norms (1-D in practice, but
// some architectures have 2-D norms), not the rope frequency factors, and not the MoE
// router, which llama.cpp keeps in its source type because routing is sensitive to it,
// and not a gated delta-net layer's convolution kernel.
bool is_weight_matrix(const gguf::TensorInfo& info) {
  const std::string_view name = info.name;
  return info.n_dims >= 2 && ends_with(name, ".weight") &&
         name.find("norm") == std::string_view::npos &&
         name.find("rope_freqs") == std::string_view::npos &&
         name.find("ffn_gate_inp.weight") == std::string_view::npos &&
         name.find("ssm_conv1d.weight") == std::string_view::npos;  // read as F32 (as llama.cpp)
}

// What happens to one tensor.
struct Plan {
  const gguf::TensorInfo* info;
  DType out_type;
  bool convert;      // dequantize + quantize rows (false: copy the bytes)
  std::string note;  // why a weight did not get the wanted type, if it did not
};

Plan plan_tensor(const gguf::TensorInfo& info, const TargetType& target,
                 const quant::ModelLayout& layout) {
  Plan plan{&info, info.type, false, ""};
  // f32 is a full dequantization: every tensor, weight or not.
  const bool wanted = target.type == DType::F32 ? info.type != DType::F32 : is_weight_matrix(info);
  if (!wanted) return plan;
  const std::string name(info.name);
  const DType chosen = quant::mixture_type(target.mix, target.type, name, info.ne[0], layout);
  if (info.type == chosen) return plan;
  if (!quant::can_dequantize(info.type)) {
    plan.note =
        str("cannot convert from ", dtype_name(info.type), "; kept as ", dtype_name(info.type));
    return plan;
  }
  const std::optional<DType> fitting = quant::fitting_type(chosen, info.ne[0]);
  const int64_t block = dtype_info(chosen).block_size;
  if (!fitting) {
    plan.note =
        str(name, ": row length ", info.ne[0], " is not a multiple of ", dtype_name(chosen),
            "'s block size ", block, " and no fallback fits; kept as ", dtype_name(info.type));
    return plan;
  }
  if (*fitting != chosen) {
    plan.note = str(name, ": row length ", info.ne[0], " is not a multiple of ", dtype_name(chosen),
                    "'s block size ", block, "; wanted ", dtype_name(chosen), ", using fallback ",
                    dtype_name(*fitting), " (as llama-quantize)");
  }
  if (info.type == *fitting) return plan;  // the fallback is the source type: copy
  plan.out_type = *fitting;
  plan.convert = true;
  return plan;
}

// What the mixtures need to know about the model, from its metadata and tensor names.
quant::ModelLayout model_layout(const gguf::File& file) {
  const std::string arch = file.get_string_or("general.architecture", "");
  quant::ModelLayout layout;
  layout.n_layer = static_cast<int>(file.get_integer_or(arch + ".block_count", 0));
  // Without a block count (not a model file llama.cpp would load), count the blocks.
  if (layout.n_layer <= 0) {
    for (const gguf::TensorInfo& info : file.tensors()) {
      int layer = -1;
      if (std::sscanf(std::string(info.name).c_str(), "blk.%d.", &layer) == 1)
        layout.n_layer = std::max(layout.n_layer, layer + 1);
    }
  }
  layout.n_expert = static_cast<int>(file.get_integer_or(arch + ".expert_count", 0));
  layout.has_output = file.find_tensor("output.weight") != nullptr;
  return layout;
}

// Converts every row of `src` (rows of ne[0] elements in src.type) into `dst` as `type`,
// rows split across the pool; each thread owns one F32 row of scratch.
// A NaN or infinity in the source is refused, naming its place: the quantizers would turn it
// into a finite number and hide the damage.
void convert_rows(const std::string& name, const Tensor& src, DType type, uint8_t* dst,
                  ThreadPool& pool) {
  const int64_t row = src.ne[0];
  const auto out_row_bytes = static_cast<size_t>(row_bytes(type, row));
  const int64_t rows = src.rows();
  // Enough rows per chunk that each thread's share is worth a wake-up.
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(row, 1));
  pool.parallel_for(
      rows,
      [&](int64_t begin, int64_t end) {
        std::vector<float> scratch(static_cast<size_t>(row));  // (ne[0],)
        for (int64_t r = begin; r < end; ++r) {
          const float* values = nullptr;
          if (src.type == DType::F32) {
            values = reinterpret_cast<const float*>(src.row(r));
          } else {
            quant::dequantize_row(src.type, src.row(r), scratch.data(), row);
            values = scratch.data();
          }
          for (int64_t i = 0; i < row; ++i)
            if (!std::isfinite(values[i]))
              fail("tensor '", name, "' holds ", std::isnan(values[i]) ? "NaN" : "infinity",
                   " at element ", r * row + i, " (row ", r, ", column ", i,
                   "); the model is damaged (toy info --check lists every such tensor)");
          quant::quantize_row(type, values, dst + static_cast<size_t>(r) * out_row_bytes, row);
        }
      },
      grain);
}

double mib(uint64_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

std::string shape_text(const gguf::TensorInfo& info) {
  std::string s = "[";
  for (int d = 0; d < info.n_dims; ++d) s += (d ? ", " : "") + std::to_string(info.ne[d]);
  return s + "]";
}

}  // namespace

int run_quantize(int argc, char** argv) {
  CommandLine cl("quantize", "Convert a GGUF model's weight matrices to another weight type");
  CLI::App& app = cl.app();
  std::string in_path, out_path, type_name;
  int threads = default_thread_count();
  bool verbose = false;
  app.add_option("input", in_path, "input GGUF file")->required();
  app.add_option("output", out_path, "output GGUF file (written atomically)")->required();
  app.add_option("type", type_name,
                 "target weight type: " + valid_type_list() +
                     ". q4_k, q5_k, ... give every weight that type; q4_k_m, q5_k_m, q4_k_s, "
                     "q5_k_s are llama.cpp's mixtures. Rows that do not fit a K-quant's 256 "
                     "block use q5_0 (q4_k), q5_1 (q5_k), q8_0 (q6_k) or q4_0 (q2_k, q3_k)")
      ->required();
  cl.add_threads(threads, "threads converting rows");
  app.add_flag("-v,--verbose", verbose, "one line per tensor (type, size, fallback notes)");
  if (!cl.parse(argc, argv)) return 0;

  const TargetType& target = parse_target(type_name);
  check_input_file({"input", in_path});
  check_output({"output", out_path}, {{"input", in_path}});
  const auto file = gguf::File::open(in_path);

  const quant::ModelLayout layout = model_layout(*file);
  std::vector<Plan> plans;
  for (const gguf::TensorInfo& info : file->tensors())
    plans.push_back(plan_tensor(info, target, layout));

  gguf::Writer writer;
  gguf::copy_metadata(*file, writer);
  writer.set("general.file_type", gguf::Value::u32(target.file_type));
  if (dtype_info(target.type).quantized)
    writer.set("general.quantization_version", gguf::Value::u32(kQuantizationVersion));

  ThreadPool pool(threads);
  const size_t total = plans.size();
  uint64_t bytes_in = 0, bytes_out = 0;
  int converted = 0, notes = 0;
  // Per-tensor lines only when asked (-v): a 273-tensor model used to print 457 lines. On a
  // terminal a single progress line shows where the conversion is.
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  for (size_t i = 0; i < total; ++i) {
    const Plan& plan = plans[i];
    const gguf::TensorInfo& info = *plan.info;
    const Tensor src = file->tensor(info);
    std::vector<int64_t> ne(info.ne.begin(), info.ne.begin() + info.n_dims);
    const uint64_t out_bytes =
        src.rows() * static_cast<uint64_t>(row_bytes(plan.out_type, src.ne[0]));
    bytes_in += info.bytes;
    bytes_out += out_bytes;
    converted += plan.convert ? 1 : 0;
    notes += plan.note.empty() ? 0 : 1;
    // Runs when the writer reaches this tensor, so one tensor is converted at a time.
    auto fill = [&plan, &info, src, i, total, out_bytes, &pool, verbose, tty](uint8_t* dst) {
      if (verbose) {
        std::fprintf(stderr, "[%4zu/%4zu] %-32s %-18s %6s -> %-6s %9.3f MiB -> %9.3f MiB%s\n",
                     i + 1, total, std::string(info.name).c_str(), shape_text(info).c_str(),
                     std::string(dtype_name(info.type)).c_str(),
                     std::string(dtype_name(plan.out_type)).c_str(), mib(info.bytes),
                     mib(out_bytes), plan.convert ? "" : "  (copied)");
        if (!plan.note.empty()) std::fprintf(stderr, "           note: %s\n", plan.note.c_str());
      } else if (tty) {
        // One line rewritten in place: a progress bar, not a log.
        std::fprintf(stderr, "\r[%4zu/%4zu] %-60.60s", i + 1, total,
                     std::string(info.name).c_str());
        if (i + 1 == total) std::fprintf(stderr, "\r%80s\r", "");
      }
      if (plan.convert) {
        convert_rows(std::string(info.name), src, plan.out_type, dst, pool);
      } else {
        std::memcpy(dst, src.data, info.bytes);
      }
    };
    writer.add_tensor(std::string(info.name), plan.out_type, std::move(ne), fill);
  }

  std::fprintf(stderr, "toy quantize: %s -> %s (%s, %d threads)\n", in_path.c_str(),
               out_path.c_str(), std::string(target.name).c_str(), threads);
  Timer timer;
  writer.write(out_path);
  if (notes > 0 && !verbose)
    std::fprintf(
        stderr,
        "note: %d tensors did not get %s (their rows do not fit its block: a fallback type "
        "or their own type); -v lists them\n",
        notes, std::string(target.name).c_str());
  std::fprintf(stderr, "converted %d of %zu tensors in %.2f s\n", converted, total,
               timer.seconds());
  std::fprintf(stderr, "model size: %.2f MiB -> %.2f MiB (%.1f%%)\n", mib(bytes_in), mib(bytes_out),
               bytes_in ? 100.0 * bytes_out / bytes_in : 100.0);
  return 0;
}

}  // namespace toy::cli
