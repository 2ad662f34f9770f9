// The `toy` subcommands. Each lives in its own cmd_<name>.cpp, parses its own
// flags (CLI11), calls into the library layers and prints; nothing else.
#pragma once

namespace toy::cli {

// Every command gets argv starting at its own name (argv[0] == "info", ...) and
// returns the process exit code. toy::Error escaping a command is printed by main.
struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);
};

// The registry, in the order `toy --help` lists them (defined in main.cpp).
extern const Command kCommands[];
extern const int kCommandCount;

int run_version(int argc, char** argv);
int run_tokenize(int argc, char** argv);
int run_detokenize(int argc, char** argv);
int run_chat(int argc, char** argv);
int run_logits(int argc, char** argv);
int run_generate(int argc, char** argv);
int run_quantize(int argc, char** argv);
int run_info(int argc, char** argv);
int run_init(int argc, char** argv);
int run_bench(int argc, char** argv);
int run_train(int argc, char** argv);
int run_finetune(int argc, char** argv);
int run_perplexity(int argc, char** argv);
int run_merge(int argc, char** argv);
int run_serve(int argc, char** argv);
int run_plot(int argc, char** argv);

}  // namespace toy::cli
