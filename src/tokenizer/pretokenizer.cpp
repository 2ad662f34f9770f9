#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenizer.h"

#include <pcre2.h>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace toy::tokenizer {

namespace {

// llama.cpp's whitespace set (unicode.cpp), used for every \s. PCRE2's own \s
// under UCP also matches U+180E, which llama.cpp does not treat as whitespace.
#define TOY_WS           \
  "\\t\\n\\x{0B}\\f\\r " \
  "\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
constexpr const char* kSpace = "[" TOY_WS "]";
constexpr const char* kNotSpace = "[^" TOY_WS "]";

// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
std::string gpt2_pattern() {
  return std::string("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" TOY_WS "\\p{L}\\p{N}]+|") +
         kSpace + "+(?!" + kNotSpace + ")";
}

// Llama 3 (digits in groups of up to `max_digits`, or single digits for Qwen2).
std::string llama3_pattern(const char* digits) {
  return std::string(
             "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?"
             "\\p{L}+|") +
         digits + "| ?[^" TOY_WS "\\p{L}\\p{N}]+[\\r\\n]*|" + kSpace + "*[\\r\\n]+|" + kSpace +
         "+(?!" + kNotSpace + ")|" + kSpace + "+";
}

const char* kCjk = "[一-龥ࠀ-一가-퟿]+";

}  // namespace

std::vector<std::string> pre_tokenizer_patterns(PreType type) {
  switch (type) {
    case PreType::Llama3:
      return {llama3_pattern("\\p{N}{1,3}")};
    case PreType::Qwen2:
      return {llama3_pattern("\\p{N}")};
    case PreType::DeepseekLlm:
      // clang-format off
      return {
          "[\\r\\n]",
          std::string(kSpace) +
              "?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-Ί"
              "ΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚ"
              "Ḁ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\\x{1F7D}ᾀ-ᾴᾶ-ᾼ"
              "\\x{1FBE}ῂ-ῄῆ-ῌῐ-\\x{1FD3}ῖ-\\x{1FDB}ῠ-Ῥ"
              "ῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\\x{2126}ℨ\\x{212A}-ℭℯ-ℴ"
              "ℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ"
              "-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
          std::string(kSpace) + "?[!-/:-~！-／：-～‘-‟　-。]+",
          std::string(kSpace) + "+$",
          kCjk,
          "\\p{N}+",
      };
      // clang-format on
    case PreType::DeepseekCoder:
      return {"[\\r\\n]", std::string(kSpace) + "?\\p{L}+", std::string(kSpace) + "?\\p{P}+", kCjk,
              "\\p{N}"};
    case PreType::Falcon:
      return {"[\\p{P}\\$\\+<=>\\^~\\|`]+", gpt2_pattern(), "[0-9][0-9][0-9]"};
    case PreType::Starcoder:
      return {"\\p{N}", gpt2_pattern()};
    case PreType::Gpt2:
      return {gpt2_pattern()};
    case PreType::Poro:
      return {" ?[^(" TOY_WS "|.,!?…。，、।۔،)]+"};
    case PreType::Viking:
      return {" ?[^(" TOY_WS "|.,!?…。，、।۔،)]+", "\\p{N}"};
    case PreType::Chameleon:
      return {"<sentinel:[0-9]+>",      "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
              "([\\t\\n]|    |  )",     "\\p{N}",
              "[\\p{P}!-/:-@\\[-`{-~]", gpt2_pattern()};
    case PreType::Default:
      return {"[\\p{P}\\$\\+<=>\\^~\\|]+", gpt2_pattern(), "\\p{N}+", "[0-9][0-9][0-9]"};
  }
  return {gpt2_pattern()};
}

struct PreTokenizer::Compiled {
  pcre2_code* code = nullptr;
  pcre2_match_data* match = nullptr;
  ~Compiled() {
    if (match) pcre2_match_data_free(match);
    if (code) pcre2_code_free(code);
  }
};

PreTokenizer::PreTokenizer(const std::vector<std::string>& patterns) {
  for (const std::string& pattern : patterns) {
    auto compiled = std::make_unique<Compiled>();
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    compiled->code =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                      PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &error, &error_offset, nullptr);
    if (!compiled->code) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      TOY_CHECK(false, "pre-tokenizer regex does not compile at offset ", error_offset, ": ",
                reinterpret_cast<const char*>(message));
    }
    pcre2_jit_compile(compiled->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter
    compiled->match = pcre2_match_data_create_from_pattern(compiled->code, nullptr);
    regexes_.push_back(std::move(compiled));
  }
}

PreTokenizer::~PreTokenizer() = default;

void PreTokenizer::split(std::string_view subject, std::vector<Span>& out) {
  out.clear();
  if (subject.empty()) return;
  out.push_back({0, static_cast<uint32_t>(subject.size())});
  for (const auto& regex : regexes_) {
    scratch_.clear();
    for (const Span piece : out) {
      const auto* base = reinterpret_cast<PCRE2_SPTR>(subject.data() + piece.offset);
      PCRE2_SIZE start = 0;
      PCRE2_SIZE emitted = 0;  // end of the last span pushed, relative to the piece
      while (start < piece.length) {
        const int rc = pcre2_match(regex->code, base, piece.length, start, PCRE2_NO_UTF_CHECK,
                                   regex->match, nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        TOY_CHECK(rc >= 0, "PCRE2 match failed with code ", rc);
        const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(regex->match);
        const PCRE2_SIZE match_begin = ovector[0];
        const PCRE2_SIZE match_end = ovector[1];
        if (match_end == match_begin) {
          // An empty match splits nothing; step over one character.
          start = match_begin + utf8_sequence_length(base[match_begin]);
          continue;
        }
        if (match_begin > emitted)
          scratch_.push_back({piece.offset + static_cast<uint32_t>(emitted),
                              static_cast<uint32_t>(match_begin - emitted)});
        scratch_.push_back({piece.offset + static_cast<uint32_t>(match_begin),
                            static_cast<uint32_t>(match_end - match_begin)});
        emitted = start = match_end;
      }
      if (emitted < piece.length)
        scratch_.push_back({piece.offset + static_cast<uint32_t>(emitted),
                            static_cast<uint32_t>(piece.length - emitted)});
    }
    out.swap(scratch_);
  }
}

}  // namespace toy::tokenizer
