// toy: one binary, many subcommands (`toy info`, `toy quantize`, ...).
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/process_group.h"
#include "core/error.h"
#include "kernels/cpu/features.h"

namespace toy::cli {

const Command kCommands[] = {
    {"version", "print the version and how this binary was built", run_version},
    {"tokenize", "turn text into token ids with a model's vocabulary", run_tokenize},
    {"detokenize", "turn token ids back into text", run_detokenize},
    {"chat", "chat with a model in the terminal using its chat template", run_chat},
    {"serve", "an OpenAI-compatible HTTP server with continuous batching", run_serve},
    {"logits", "write a model's logits after each token (float32, for checking)", run_logits},
    {"generate", "continue a prompt: sampling, streamed text, tokens/s", run_generate},
    {"perplexity", "perplexity of a model on a text file (llama-perplexity's definition)",
     run_perplexity},
    {"quantize", "convert a GGUF model's weights to another type (f16, q8_0, q4_k, ...)",
     run_quantize},
    {"merge", "add LoRA adapters into a model's weights (like llama-export-lora)", run_merge},
    {"info", "print a GGUF file's version, metadata, tensors and totals", run_info},
    {"init", "write a random-weight model (llama.cpp GGUF layout)", run_init},
    {"bench", "prompt-processing and generation tokens/s, like llama-bench", run_bench},
    {"train", "train a llama-family model from scratch on a text file", run_train},
    {"finetune", "fine-tune a GGUF model: LoRA adapters or every weight", run_finetune},
    {"plot", "draw a --metrics file's loss or gradient norms as an SVG", run_plot},
};
const int kCommandCount = sizeof(kCommands) / sizeof(kCommands[0]);

namespace {

void print_usage(FILE* out) {
  std::fprintf(out, "usage: toy COMMAND [options]   (toy COMMAND --help for its options)\n\n");
  std::fprintf(out, "commands:\n");
  for (int i = 0; i < kCommandCount; ++i)
    std::fprintf(out, "  %-12s %s\n", kCommands[i].name, kCommands[i].summary);
}

}  // namespace
}  // namespace toy::cli

int main(int argc, char** argv) {
  using namespace toy::cli;
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  // llama.cpp's tools and most Unix tools answer --version.
  if (!std::strcmp(argv[1], "--version")) return run_version(argc - 1, argv + 1);
  for (int i = 0; i < kCommandCount; ++i) {
    if (std::strcmp(argv[1], kCommands[i].name) != 0) continue;
    const char* name = kCommands[i].name;
    // The one error path: every failure is one line on stderr and exit code 1. Messages are
    // printed with control bytes escaped: they can quote values read from a file.
    std::string error;
    try {
      // A TOY_BACKEND the CPU cannot run is refused before any work or output.
      toy::cpu::host_backend();
      // Training runs data parallel when mpirun started it (cli/process_group.h).
      if (!std::strcmp(name, "train") || !std::strcmp(name, "finetune"))
        connect_process_group(&argc, &argv);
      return kCommands[i].run(argc - 1, argv + 1);
    } catch (const UsageError& e) {
      error = toy::str("toy ", name, ": error: ", toy::printable(e.message()), " (see toy ", name,
                       " --help)");
    } catch (const toy::Error& e) {
      error = toy::str("toy ", name, ": error: ", toy::printable(e.message()));
    } catch (const std::bad_alloc&) {
      error = toy::str("toy ", name, ": error: out of memory");
    } catch (const std::exception& e) {
      error = toy::str("toy ", name, ": error: ", toy::printable(e.what()));
    }
    report_error(error);
    return 1;
  }
  std::fprintf(stderr, "toy: error: unknown command '%s' (see toy --help)\n",
               toy::printable(argv[1]).c_str());
  return 1;
}
