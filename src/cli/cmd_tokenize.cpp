// toy tokenize / toy detokenize: text <-> token ids with a model's vocabulary.
//
//   toy tokenize -m MODEL (--text S | --file F | --jsonl) [--add-special] [--parse-special]
//                [--pieces]
//   toy detokenize -m MODEL --ids "1,2,3" [--no-special]
//
// tokenize prints the ids space-separated on one line; --pieces prints one line
// per token instead, "id -> 'piece'" (as llama.cpp's llama-tokenize). --jsonl
// reads {"text": "..."} lines from stdin and writes one {"ids": [...]} line per
// input line, flushed as it goes, so one process serves many strings.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/files.h"
#include "core/error.h"
#include "gguf/reader.h"
#include "infer/token_list.h"
#include "tokenizer/tokenizer.h"

namespace toy::cli {
namespace {

void print_ids(const std::vector<int32_t>& ids) {
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line.push_back(' ');
    line += std::to_string(ids[i]);
  }
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stdout);
}

void print_pieces(const tokenizer::Tokenizer& tok, const std::vector<int32_t>& ids) {
  for (int32_t id : ids) {
    const std::string_view piece = tok.piece(id, /*render_special=*/true);
    std::printf("%6d -> '%.*s'\n", id, static_cast<int>(piece.size()), piece.data());
  }
}

int run_jsonl(const tokenizer::Tokenizer& tok, tokenizer::TokenizeOptions options, bool pieces) {
  std::string line;
  for (int64_t line_number = 1; std::getline(std::cin, line); ++line_number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    nlohmann::json input;
    try {
      input = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      fail("stdin line ", line_number, ": invalid JSON (", e.what(),
           "); expected an object like {\"text\": \"...\"}");
    }
    if (!input.is_object() || !input.contains("text") || !input["text"].is_string())
      fail("stdin line ", line_number, ": expected an object with a string \"text\" field, found ",
           line.substr(0, 200));
    const auto ids = tok.tokenize(input["text"].get_ref<const std::string&>(), options);
    nlohmann::json output;
    output["ids"] = ids;
    if (pieces) {
      nlohmann::json list = nlohmann::json::array();
      for (int32_t id : ids) list.push_back(std::string(tok.piece(id, true)));
      output["pieces"] = std::move(list);
    }
    // Pieces may hold half of a UTF-8 character: replace rather than throw.
    const std::string text = output.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  if (std::cin.bad()) fail("error reading stdin");
  return 0;
}

}  // namespace

int run_tokenize(int argc, char** argv) {
  CommandLine cl("tokenize", "Turn text into token ids with a model's vocabulary.");
  CLI::App& app = cl.app();
  std::string model_path, text, file;
  bool jsonl = false, add_special = false, parse_special = false, pieces = false;
  app.add_option("-m,--model", model_path, "the GGUF model (or vocabulary) file")->required();
  auto* text_option = app.add_option("--text", text, "the text to tokenize");
  auto* file_option =
      app.add_option("-f,--file", file, "tokenize the whole content of this file ('-': stdin)");
  auto* jsonl_option =
      app.add_flag("--jsonl", jsonl, "read {\"text\": ...} lines on stdin, write {\"ids\": [...]}");
  text_option->excludes(file_option)->excludes(jsonl_option);
  file_option->excludes(jsonl_option);
  app.add_flag("--add-special", add_special, "add BOS/EOS as the model asks");
  app.add_flag("--parse-special", parse_special, "turn special-token text into its id");
  app.add_flag("--pieces", pieces, "print each token's id and text instead of the id list");
  if (!cl.parse(argc, argv)) return 0;
  if (!jsonl && text_option->count() == 0 && file_option->count() == 0)
    usage_error("give one of --text, --file or --jsonl");
  auto model = gguf::File::open(model_path);
  auto tok = tokenizer::Tokenizer::from_gguf(*model);
  const tokenizer::TokenizeOptions options{add_special, parse_special};
  if (jsonl) return run_jsonl(*tok, options, pieces);
  if (file_option->count()) text = read_input_text({"--file", file});
  const auto ids = tok->tokenize(text, options);
  if (pieces)
    print_pieces(*tok, ids);
  else
    print_ids(ids);
  return 0;
}

int run_detokenize(int argc, char** argv) {
  CommandLine cl("detokenize", "Turn token ids back into text with a model's vocabulary.");
  CLI::App& app = cl.app();
  std::string model_path, ids_text;
  bool no_special = false;
  app.add_option("-m,--model", model_path, "the GGUF model (or vocabulary) file")->required();
  app.add_option("--ids,--tokens", ids_text,
                 "token ids separated by commas or spaces, e.g. 1,2,3 or as toy tokenize prints "
                 "them (an empty list gives no text)")
      ->required();
  app.add_flag("--no-special", no_special, "print nothing for control tokens (BOS, EOS, ...)");
  if (!cl.parse(argc, argv)) return 0;
  const bool no_ids = ids_text.find_first_not_of(" \t\n\r") == std::string::npos;
  const std::vector<int32_t> ids = no_ids ? std::vector<int32_t>() : parse_token_list(ids_text);
  auto model = gguf::File::open(model_path);
  auto tok = tokenizer::Tokenizer::from_gguf(*model);
  tokenizer::DetokenizeOptions options;
  options.render_special = !no_special;
  const std::string text = tok->detokenize(ids, options);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace toy::cli
