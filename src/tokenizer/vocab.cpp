#include "tokenizer/vocab.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "core/error.h"
#include "gguf/reader.h"

namespace toy::tokenizer {

namespace {

// tokenizer.ggml.pre values and what they select (llama.cpp llama_vocab::impl::load).
struct PreEntry {
  const char* name;
  PreType type;
  bool clean_spaces;
  bool ignore_merges;
  bool add_bos;
};

constexpr PreEntry kPreTypes[] = {
    {"default", PreType::Default, true, false, false},
    {"llama3", PreType::Llama3, true, true, true},
    {"llama-v3", PreType::Llama3, true, true, true},
    {"llama-bpe", PreType::Llama3, true, true, true},
    {"falcon3", PreType::Llama3, true, true, true},
    {"falcon-h1", PreType::Llama3, true, true, true},
    {"pixtral", PreType::Llama3, true, true, true},
    {"midm-2.0", PreType::Llama3, true, true, true},
    {"lfm2", PreType::Llama3, true, true, true},
    {"dbrx", PreType::Llama3, true, false, false},
    {"smaug-bpe", PreType::Llama3, true, false, false},
    {"deepseek-llm", PreType::DeepseekLlm, false, false, false},
    {"deepseek-coder", PreType::DeepseekCoder, false, false, false},
    {"falcon", PreType::Falcon, true, false, false},
    {"mpt", PreType::Gpt2, true, false, false},
    {"starcoder", PreType::Starcoder, true, false, false},
    {"gpt-2", PreType::Gpt2, true, false, false},
    {"phi-2", PreType::Gpt2, true, false, false},
    {"jina-es", PreType::Gpt2, true, false, false},
    {"jina-de", PreType::Gpt2, true, false, false},
    {"gigachat", PreType::Gpt2, true, false, false},
    {"jina-v2-es", PreType::Gpt2, true, false, false},
    {"jina-v2-de", PreType::Gpt2, true, false, false},
    {"a.x-4.0", PreType::Gpt2, true, false, false},
    {"mellum", PreType::Gpt2, true, false, false},
    {"exaone4", PreType::Gpt2, true, false, false},
    {"olmo", PreType::Gpt2, true, false, false},
    {"jais", PreType::Gpt2, true, false, false},
    {"refact", PreType::Starcoder, true, false, false},
    {"command-r", PreType::Starcoder, false, false, false},
    {"smollm", PreType::Starcoder, false, false, false},
    {"codeshell", PreType::Starcoder, true, false, false},
    {"exaone", PreType::Starcoder, true, false, false},
    {"minerva-7b", PreType::Starcoder, true, false, false},
    {"qwen2", PreType::Qwen2, false, false, false},
    {"deepseek-r1-qwen", PreType::Qwen2, false, false, false},
    {"megrez", PreType::Qwen2, true, false, false},
    {"stablelm2", PreType::Qwen2, true, false, false},
    {"poro-chat", PreType::Poro, false, false, false},
    {"bloom", PreType::Poro, true, false, false},
    {"gpt3-finnish", PreType::Poro, true, false, false},
    {"viking", PreType::Viking, false, false, false},
    {"chameleon", PreType::Chameleon, false, false, true},
};

const char* const kEotTexts[] = {
    "<|eot_id|>",        "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>",   "<EOT>",      "_<EOT>",  "[EOT]",         "<｜end▁of▁sentence｜>",
    "<end_of_utterance>"};
const char* const kEomTexts[] = {"<|eom_id|>"};
const char* const kFimPreTexts[] = {"<|fim_prefix|>",  "<fim-prefix>", "<fim_prefix>",
                                    "<｜fim▁begin｜>", "<PRE>",        "▁<PRE>",
                                    "<|code_prefix|>", "<|prefix|>"};
const char* const kFimSufTexts[] = {"<|fim_suffix|>",  "<fim-suffix>", "<fim_suffix>",
                                    "<｜fim▁hole｜>",  "<SUF>",        "▁<SUF>",
                                    "<|code_suffix|>", "<|suffix|>"};
const char* const kFimMidTexts[] = {"<|fim_middle|>",  "<fim-middle>", "<fim_middle>",
                                    "<｜fim▁end｜>",   "<MID>",        "▁<MID>",
                                    "<|code_middle|>", "<|middle|>"};
const char* const kFimPadTexts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
const char* const kFimRepTexts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
                                    "<reponame>"};
const char* const kFimSepTexts[] = {"<|file_sep|>"};
const char* const kEogTexts[] = {"<|eot_id|>",
                                 "<|im_end|>",
                                 "<|end|>",
                                 "<|return|>",
                                 "<|call|>",
                                 "<|flush|>",
                                 "<|calls|>",
                                 "<end_of_turn>",
                                 "<|endoftext|>",
                                 "<|eom_id|>",
                                 "<EOT>",
                                 "_<EOT>",
                                 "[EOT]",
                                 "[EOS]",
                                 "<|end_of_text|>",
                                 "<end_of_utterance>",
                                 "<eos>",
                                 "<turn|>",
                                 "<|tool_response>",
                                 "<｜end▁of▁sentence｜>",
                                 "[e~["};

// Ends generation but keeps its token type. llama.cpp (the mid-2025 reference) does not know
// "</s>" by text; later versions re-type it CONTROL for paddleocr, which breaks vocabularies
// where it is a user-defined token matched in plain text (phi-3: "... </s>" must give id 2
// without parse_special; Gemma 4 and PLaMo needed workarounds upstream).
const char* const kEogKeepTypeTexts[] = {"</s>"};

template <size_t N>
bool text_in(std::string_view text, const char* const (&list)[N]) {
  for (const char* candidate : list)
    if (text == candidate) return true;
  return false;
}

}  // namespace

Vocab Vocab::from_gguf(const gguf::File& file) {
  Vocab vocab;
  vocab.source_ = file.path();
  if (!file.has("tokenizer.ggml.model"))
    fail(file.path(),
         ": missing key tokenizer.ggml.model (the tokenizer type: llama, gpt2 or none)");
  vocab.model_name_ = std::string(file.get_string("tokenizer.ggml.model"));
  vocab.pre_name_ = file.get_string_or("tokenizer.ggml.pre", "");
  vocab.chat_template_ = file.get_string_or("tokenizer.chat_template", "");

  if (vocab.model_name_ == "none" || vocab.model_name_ == "no_vocab") {
    vocab.type_ = VocabType::None;
    const std::string arch = file.get_string_or("general.architecture", "");
    const int64_t n = file.get_integer_or(arch + ".vocab_size", 0);
    if (n < 0 || n > (int64_t{1} << 30))
      fail(file.path(), ": ", arch, ".vocab_size = ", n, " is out of range");
    vocab.n_vocab_ = static_cast<int32_t>(n);
    return vocab;
  }
  if (vocab.model_name_ == "llama") {
    vocab.type_ = VocabType::Spm;
    vocab.bos_ = 1;
    vocab.eos_ = 2;
    vocab.unk_ = 0;
    vocab.add_space_prefix_ = true;
    vocab.add_bos_ = true;
  } else if (vocab.model_name_ == "gpt2") {
    vocab.type_ = VocabType::Bpe;
    vocab.bos_ = 11;
    vocab.eos_ = 11;
    vocab.clean_spaces_ = true;
    vocab.choose_pre_type();
  } else {
    fail(file.path(), ": tokenizer.ggml.model = '", vocab.model_name_,
         "' is not supported (expected llama, gpt2 or none)");
  }
  vocab.add_space_prefix_ =
      file.get_bool_or("tokenizer.ggml.add_space_prefix", vocab.add_space_prefix_);

  vocab.read_tokens(file);
  if (vocab.type_ == VocabType::Bpe) vocab.read_merges(file);
  vocab.read_special_ids(file);
  vocab.mark_control_looking_tokens();

  for (int32_t id = 0; id < vocab.n_vocab_; ++id)
    if (vocab.tokens_[id].attr & (kAttrControl | kAttrUserDefined | kAttrUnknown))
      vocab.special_by_length_.push_back(id);
  std::stable_sort(vocab.special_by_length_.begin(), vocab.special_by_length_.end(),
                   [&](int32_t a, int32_t b) {
                     return vocab.tokens_[a].text.size() > vocab.tokens_[b].text.size();
                   });
  vocab.apply_model_specific_attrs(file);
  return vocab;
}

void Vocab::choose_pre_type() {
  if (pre_name_.empty()) {
    std::fprintf(stderr,
                 "warning: %s has no tokenizer.ggml.pre; using the 'default' pre-tokenizer "
                 "(tokenization may differ from the original model)\n",
                 source_.c_str());
    pre_type_ = PreType::Default;
    return;
  }
  for (const PreEntry& entry : kPreTypes) {
    if (pre_name_ != entry.name) continue;
    pre_type_ = entry.type;
    clean_spaces_ = entry.clean_spaces;
    ignore_merges_ = entry.ignore_merges;
    if (entry.add_bos) add_bos_ = true;
    return;
  }
  std::string known;
  for (const PreEntry& entry : kPreTypes)
    known += std::string(known.empty() ? "" : ", ") + entry.name;
  fail(source_, ": tokenizer.ggml.pre = '", pre_name_,
       "' is not a supported pre-tokenizer (supported: ", known, ")");
}

void Vocab::read_tokens(const gguf::File& file) {
  auto tokens_ref = file.find("tokenizer.ggml.tokens");
  if (!tokens_ref) fail(file.path(), ": missing key tokenizer.ggml.tokens (the vocabulary)");
  const std::vector<std::string_view> texts = tokens_ref->strings();
  if (texts.size() > (size_t{1} << 30))
    fail(file.path(), ": tokenizer.ggml.tokens has ", texts.size(), " entries (too many)");
  n_vocab_ = static_cast<int32_t>(texts.size());

  std::vector<float> scores;
  if (auto ref = file.find("tokenizer.ggml.scores")) {
    if (ref->type() != gguf::ValueType::ARRAY)
      fail(file.path(), ": tokenizer.ggml.scores should be an array, found ",
           gguf::value_type_name(ref->type()));
    if (ref->array_type() == gguf::ValueType::F32) {
      scores = ref->f32s();
    } else {
      for (int32_t v : ref->i32s()) scores.push_back(static_cast<float>(v));
    }
    if (scores.size() < texts.size())
      fail(file.path(), ": tokenizer.ggml.scores has ", scores.size(), " entries, expected ",
           texts.size(), " (one per token)");
  }
  std::vector<int32_t> types;
  if (auto ref = file.find("tokenizer.ggml.token_type")) {
    types = ref->i32s();
    if (types.size() < texts.size())
      fail(file.path(), ": tokenizer.ggml.token_type has ", types.size(), " entries, expected ",
           texts.size(), " (one per token)");
  }

  tokens_.resize(texts.size());
  text_to_id_.reserve(texts.size() * 2);
  for (size_t i = 0; i < texts.size(); ++i) {
    TokenData& token = tokens_[i];
    token.text = texts[i].empty() ? "[EMPTY_" + std::to_string(i) + "]" : std::string(texts[i]);
    token.score = scores.empty() ? 0.0f : scores[i];
    token.attr = kAttrNormal;
    if (!types.empty()) {
      // GGUF token types (llama_token_type) -> attributes.
      switch (types[i]) {
        case 1:
          token.attr = kAttrNormal;
          break;
        case 2:
          token.attr = kAttrUnknown;
          break;
        case 3:
          token.attr = kAttrControl;
          break;
        case 4:
          token.attr = kAttrUserDefined;
          break;
        case 5:
          token.attr = kAttrUnused;
          break;
        case 6:
          token.attr = kAttrByte;
          break;
        default:
          token.attr = kAttrUndefined;
          break;
      }
    }
    // Later duplicates win, as in llama.cpp's token_to_id[word] = i.
    text_to_id_[token.text] = static_cast<int32_t>(i);
  }
}

void Vocab::read_merges(const gguf::File& file) {
  auto ref = file.find("tokenizer.ggml.merges");
  if (!ref)
    fail(file.path(),
         ": missing key tokenizer.ggml.merges (a gpt2 tokenizer needs its BPE merges)");
  const std::vector<std::string_view> lines = ref->strings();
  merges_.reserve(lines.size());
  for (std::string_view line : lines) {
    // "left right", split at the first space after the first byte (a half may be a space).
    const size_t space = line.size() > 1 ? line.find(' ', 1) : std::string_view::npos;
    if (space == std::string_view::npos) {
      merges_.emplace_back();  // keeps ranks aligned; an empty pair never matches
      continue;
    }
    merges_.emplace_back(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
  }
}

void Vocab::read_special_ids(const gguf::File& file) {
  const std::pair<const char*, int32_t*> keys[] = {
      {"tokenizer.ggml.bos_token_id", &bos_},
      {"tokenizer.ggml.eos_token_id", &eos_},
      {"tokenizer.ggml.eot_token_id", &eot_},
      {"tokenizer.ggml.eom_token_id", &eom_},
      {"tokenizer.ggml.unknown_token_id", &unk_},
      {"tokenizer.ggml.seperator_token_id", &sep_},
      {"tokenizer.ggml.padding_token_id", &pad_},
      {"tokenizer.ggml.mask_token_id", &mask_},
      {"tokenizer.ggml.fim_pre_token_id", &fim_pre_},
      {"tokenizer.ggml.fim_suf_token_id", &fim_suf_},
      {"tokenizer.ggml.fim_mid_token_id", &fim_mid_},
      {"tokenizer.ggml.fim_pad_token_id", &fim_pad_},
      {"tokenizer.ggml.fim_rep_token_id", &fim_rep_},
      {"tokenizer.ggml.fim_sep_token_id", &fim_sep_},
      {"tokenizer.ggml.prefix_token_id", &fim_pre_},
      {"tokenizer.ggml.suffix_token_id", &fim_suf_},
      {"tokenizer.ggml.middle_token_id", &fim_mid_},
  };
  for (const auto& [key, id] : keys) {
    if (*id >= n_vocab_) *id = -1;  // a default that does not exist in this vocabulary
    const int64_t value = file.get_integer_or(key, -1);
    if (value < 0) continue;
    if (value >= n_vocab_) {
      std::fprintf(stderr,
                   "warning: %s: %s = %lld is outside the vocabulary (%d tokens); ignored\n",
                   source_.c_str(), key, static_cast<long long>(value), n_vocab_);
      continue;
    }
    *id = static_cast<int32_t>(value);
  }
  if (pre_name_ == "glm4" || pre_name_ == "chatglm-bpe") bos_ = -1;

  add_bos_ = file.get_bool_or("tokenizer.ggml.add_bos_token", add_bos_);
  add_eos_ = file.get_bool_or("tokenizer.ggml.add_eos_token", add_eos_);
  if (add_bos_ && bos_ < 0)
    fail(source_,
         ": tokenizer.ggml.add_bos_token is true but tokenizer.ggml.bos_token_id is not set");
  if (add_eos_ && eos_ < 0)
    fail(source_,
         ": tokenizer.ggml.add_eos_token is true but tokenizer.ggml.eos_token_id is not set");
}

void Vocab::mark_control_looking_tokens() {
  // Conversion scripts often leave end-of-turn and FIM tokens as normal or
  // user-defined; llama.cpp finds them by text and makes them CONTROL, which
  // decides whether their text is matched without parse_special.
  auto detect = [&](int32_t& id, const auto& texts) {
    if (id >= 0) return;
    for (int32_t i = 0; i < n_vocab_; ++i) {
      if (!text_in(tokens_[i].text, texts)) continue;
      id = i;
      tokens_[i].attr |= kAttrControl;
      return;
    }
  };
  detect(eot_, kEotTexts);
  detect(eom_, kEomTexts);
  detect(fim_pre_, kFimPreTexts);
  detect(fim_suf_, kFimSufTexts);
  detect(fim_mid_, kFimMidTexts);
  detect(fim_pad_, kFimPadTexts);
  detect(fim_rep_, kFimRepTexts);
  detect(fim_sep_, kFimSepTexts);

  for (TokenData& token : tokens_)
    if ((token.attr & kAttrControl) && token.text.find("unused") != std::string::npos)
      token.attr |= kAttrUnused;

  std::vector<int32_t> eog;
  for (int32_t id : {fim_pad_, fim_rep_, fim_sep_})
    if (id >= 0) eog.push_back(id);
  for (int32_t i = 0; i < n_vocab_; ++i) {
    if (text_in(tokens_[i].text, kEogKeepTypeTexts)) eog.push_back(i);
    if (!text_in(tokens_[i].text, kEogTexts)) continue;
    eog.push_back(i);
    tokens_[i].attr |= kAttrControl;
  }
  for (int32_t id : {eos_, eot_, eom_})
    if (id >= 0) eog.push_back(id);
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());

  // o200k_harmony / solar-open: "<|end|>" ends a message, not the generation.
  auto has = [&](const char* text) {
    for (int32_t id : eog)
      if (tokens_[id].text == text) return true;
    return false;
  };
  if ((has("<|return|>") && has("<|call|>") && has("<|end|>")) ||
      (has("<|calls|>") && has("<|flush|>") && has("<|end|>"))) {
    for (size_t i = 0; i < eog.size(); ++i) {
      if (tokens_[eog[i]].text != "<|end|>") continue;
      tokens_[eog[i]].attr = kAttrUserDefined;
      eog.erase(eog.begin() + i);
      break;
    }
  }
  if (has("<|tool_response>") && has("</s>")) {
    for (size_t i = 0; i < eog.size(); ++i) {
      if (tokens_[eog[i]].text != "</s>") continue;
      tokens_[eog[i]].attr = kAttrNormal;
      eog.erase(eog.begin() + i);
      break;
    }
  }
  eog_ = std::move(eog);
}

void Vocab::apply_model_specific_attrs(const gguf::File& file) {
  std::string name = file.get_string_or("general.name", "");
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const std::string arch = file.get_string_or("general.architecture", "");
  auto set_attr = [&](const char* text, uint32_t attr, bool on) {
    const int32_t id = find(text);
    if (id < 0) return;
    tokens_[id].attr = on ? (tokens_[id].attr | attr) : (tokens_[id].attr & ~attr);
  };
  auto contains = [](const std::string& s, const char* part) {
    return s.find(part) != std::string::npos;
  };
  if (contains(pre_name_, "jina-v2-de") || contains(pre_name_, "jina-v2-es") ||
      contains(pre_name_, "jina-v2-code") || contains(arch, "nomic-bert-moe") ||
      contains(arch, "jina-bert-v3")) {
    set_attr("<mask>", kAttrLstrip, true);
  } else if (contains(name, "phi-3") || contains(name, "phi3")) {
    // Phi-3's special tokens swallow the whitespace after them.
    for (int32_t id : special_by_length_) tokens_[id].attr |= kAttrRstrip;
    set_attr("</s>", kAttrRstrip, true);
    for (const char* text : {"<unk>", "<s>", "<|endoftext|>"}) set_attr(text, kAttrRstrip, false);
  } else if (contains(name, "modern-bert")) {
    set_attr("[MASK]", kAttrLstrip, true);
  }
}

int32_t Vocab::byte_token(uint8_t b) const {
  static const char* kHex = "0123456789ABCDEF";
  const char name[6] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
  int32_t id = find(std::string_view(name, 6));
  if (id >= 0) return id;
  const char single = static_cast<char>(b);
  return find(std::string_view(&single, 1));
}

bool Vocab::is_eog(int32_t id) const {
  return std::binary_search(eog_.begin(), eog_.end(), id);
}

}  // namespace toy::tokenizer
