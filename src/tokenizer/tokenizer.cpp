#include "tokenizer/tokenizer.h"

#include <cstdio>

#include "core/error.h"
#include "gguf/reader.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/spm.h"
#include "tokenizer/unicode.h"

namespace toy::tokenizer {

namespace {

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// A byte token's text is "<0xNN>".
int parse_byte_token(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  int value = 0;
  for (char c : text.substr(3, 2)) {
    value <<= 4;
    if (c >= '0' && c <= '9')
      value |= c - '0';
    else if (c >= 'A' && c <= 'F')
      value |= c - 'A' + 10;
    else if (c >= 'a' && c <= 'f')
      value |= c - 'a' + 10;
    else
      return -1;
  }
  return value;
}

// Byte-level BPE token text -> bytes (llama.cpp llama_decode_text, including its
// marker for a code point outside the byte mapping).
std::string decode_byte_level(std::string_view text) {
  const ByteUnicodeMap& bytes = ByteUnicodeMap::get();
  std::string decoded;
  size_t pos = 0;
  while (pos < text.size()) {
    uint32_t cpt = 0xFFFD;
    if (!decode_utf8_lenient(text, pos, cpt)) cpt = 0xFFFD;
    const int b = bytes.decode(cpt);
    if (b >= 0) {
      decoded.push_back(static_cast<char>(b));
      continue;
    }
    std::string utf8;
    append_utf8(utf8, cpt);
    decoded += "[UNK_BYTE_0x";
    for (unsigned char c : utf8) {
      char hex[3];
      std::snprintf(hex, sizeof(hex), "%02x", c);
      decoded += hex;
    }
    decoded += std::string(text) + "]";
  }
  return decoded;
}

// The text a token renders to with special rendering on (llama.cpp token_to_piece).
std::string render_token(const Vocab& vocab, int32_t id) {
  const TokenData& token = vocab.token(id);
  if (token.attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) return token.text;
  if (token.attr & kAttrNormal) {
    if (vocab.type() == VocabType::Bpe) return decode_byte_level(token.text);
    std::string text;
    for (size_t i = 0; i < token.text.size(); ++i) {
      if (token.text.compare(i, 3, "\xE2\x96\x81") == 0) {
        text.push_back(' ');
        i += 2;
      } else {
        text.push_back(token.text[i]);
      }
    }
    return text;
  }
  if (token.attr & kAttrByte) {
    const int b = parse_byte_token(token.text);
    return b >= 0 ? std::string(1, static_cast<char>(b)) : std::string();
  }
  return {};
}

}  // namespace

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {
  if (!vocab_.has_text()) return;
  pieces_.resize(vocab_.size());
  for (int32_t id = 0; id < vocab_.size(); ++id) pieces_[id] = render_token(vocab_, id);
  if (vocab_.type() == VocabType::Spm) {
    spm_ = std::make_unique<SpmEncoder>(vocab_);
  } else {
    bpe_ = std::make_unique<BpeEncoder>(vocab_);
    pre_ = std::make_unique<PreTokenizer>(pre_tokenizer_patterns(vocab_.pre_type()));
  }
}

Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
  return std::make_unique<Tokenizer>(Vocab::from_gguf(file));
}

void Tokenizer::require_text(const char* what) const {
  if (!vocab_.has_text())
    fail(vocab_.source(), ": cannot ", what,
         ": the model has no vocabulary (tokenizer.ggml.model = ", vocab_.model_name(),
         "); drive it with token ids instead");
}

void Tokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_.size())
    fail("token id ", id, " is outside the vocabulary of ", vocab_.source(), " (", vocab_.size(),
         " tokens)");
}

void Tokenizer::partition(std::string_view text, bool parse_special,
                          std::vector<Fragment>& out) const {
  out.clear();
  if (text.empty()) return;
  out.push_back({-1, 0, static_cast<uint32_t>(text.size())});
  std::vector<Fragment> next;
  // Which byte pairs occur in the text: a special token whose first two bytes do
  // not occur is skipped without a search (vocabularies with thousands of
  // special tokens would otherwise scan the text thousands of times).
  const bool filter = vocab_.special_tokens().size() > 16;
  std::vector<bool> pairs(filter ? 65536 : 0, false);
  if (filter)
    for (size_t i = 0; i + 1 < text.size(); ++i)
      pairs[static_cast<uint8_t>(text[i]) << 8 | static_cast<uint8_t>(text[i + 1])] = true;
  // Longest special text first, each splitting every raw fragment at all of its
  // occurrences (llama.cpp tokenizer_st_partition).
  for (const int32_t id : vocab_.special_tokens()) {
    const TokenData& token = vocab_.token(id);
    if (!parse_special && (token.attr & (kAttrControl | kAttrUnknown))) continue;
    const std::string_view needle = token.text;
    if (filter && needle.size() >= 2 &&
        !pairs[static_cast<uint8_t>(needle[0]) << 8 | static_cast<uint8_t>(needle[1])])
      continue;
    bool found = false;
    next.clear();
    for (const Fragment& fragment : out) {
      if (fragment.token >= 0) {
        next.push_back(fragment);
        continue;
      }
      size_t base = fragment.offset;
      size_t length = fragment.length;
      while (length > 0) {
        const size_t match = text.substr(0, base + length).find(needle, base);
        if (match == std::string_view::npos) break;
        found = true;
        if (match > base) {
          size_t left = match - base;
          if (token.attr & kAttrLstrip)
            while (left > 0 && is_ascii_space(text[base + left - 1])) --left;
          if (left > 0)
            next.push_back({-1, static_cast<uint32_t>(base), static_cast<uint32_t>(left)});
        }
        next.push_back({id, 0, 0});
        size_t right = match + needle.size();
        size_t right_length = base + length - right;
        if (token.attr & kAttrRstrip)
          while (right_length > 0 && is_ascii_space(text[right])) ++right, --right_length;
        base = right;
        length = right_length;
      }
      if (length > 0)
        next.push_back({-1, static_cast<uint32_t>(base), static_cast<uint32_t>(length)});
    }
    if (found) out.swap(next);
  }
}

std::vector<int32_t> Tokenizer::tokenize(std::string_view text, TokenizeOptions options) const {
  require_text("tokenize text");
  if (text.size() >= (size_t{1} << 31))
    fail("text of ", text.size(), " bytes is too long to tokenize in one call (limit 2 GiB)");
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Fragment> fragments;
  partition(text, options.parse_special, fragments);

  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  const bool add_bos = options.add_special && vocab_.add_bos();
  const bool add_eos = options.add_special && vocab_.add_eos();
  if (add_bos) ids.push_back(vocab_.bos());

  if (vocab_.type() == VocabType::Spm) {
    bool previous_was_special = true;  // the first fragment gets the space prefix
    std::string buffer;
    for (const Fragment& fragment : fragments) {
      if (fragment.token >= 0) {
        ids.push_back(fragment.token);
        previous_was_special = true;
        continue;
      }
      const std::string_view raw = text.substr(fragment.offset, fragment.length);
      if (vocab_.add_space_prefix() && previous_was_special) {
        buffer.assign(1, ' ');
        buffer.append(raw);
        spm_->encode(buffer, ids);
      } else {
        spm_->encode(raw, ids);
      }
      previous_was_special = false;
    }
  } else {
    std::string sanitized;
    std::string subject;
    std::vector<Span> words;
    for (const Fragment& fragment : fragments) {
      if (fragment.token >= 0) {
        ids.push_back(fragment.token);
        continue;
      }
      std::string_view raw = text.substr(fragment.offset, fragment.length);
      std::string_view match_on = raw;
      if (!is_valid_utf8(raw)) {
        // llama.cpp decodes leniently and turns undecodable bytes into U+FFFD.
        sanitize_utf8(raw, sanitized, subject);
        raw = sanitized;
        match_on = subject;
      }
      pre_->split(match_on, words);
      for (const Span& word : words) bpe_->encode_word(raw.substr(word.offset, word.length), ids);
    }
  }
  if (add_eos) ids.push_back(vocab_.eos());
  return ids;
}

std::string_view Tokenizer::piece(int32_t id, bool render_special) const {
  require_text("render token text");
  check_id(id);
  if (!render_special && (vocab_.token(id).attr & (kAttrUnknown | kAttrControl))) return {};
  return pieces_[id];
}

std::string Tokenizer::detokenize(std::span<const int32_t> ids, DetokenizeOptions options) const {
  require_text("detokenize");
  // SPM's space prefix is removed from the first piece (llama.cpp llama_detokenize;
  // when a leading BOS is removed, the space stays, as there).
  bool remove_space = vocab_.add_space_prefix();
  if (options.remove_special && vocab_.add_bos() && !ids.empty() && ids.front() == vocab_.bos()) {
    remove_space = false;
    ids = ids.subspan(1);
  }
  if (options.remove_special && vocab_.add_eos() && !ids.empty() && ids.back() == vocab_.eos())
    ids = ids.first(ids.size() - 1);
  std::string text;
  for (const int32_t id : ids) {
    std::string_view p = piece(id, options.render_special);
    if (remove_space && !p.empty() && p.front() == ' ') p.remove_prefix(1);
    remove_space = false;
    text.append(p);
  }
  if (options.clean_spaces && vocab_.clean_spaces()) clean_up_spaces(text);
  return text;
}

void clean_up_spaces(std::string& text) {
  if (text.empty()) return;
  // Pass 1: " ?", " !", " .", " ," lose the space.
  std::string source = text;
  std::string out(1, source[0]);
  for (size_t i = 1; i < source.size(); ++i) {
    const char x = source[i];
    if (source[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) out.pop_back();
    out.push_back(x);
  }
  // Pass 2: " ' " -> "'" (the following space is consumed and not seen again).
  source.swap(out);
  out.assign(1, source[0]);
  for (size_t i = 1; i < source.size(); ++i) {
    const char x = source[i];
    if (x == '\'' && i + 1 < source.size() && source[i - 1] == ' ' && source[i + 1] == ' ') {
      out.pop_back();
      source[++i] = '\0';
    }
    out.push_back(x);
  }
  // Pass 3: " 's", " 'm", " 're", " 've" lose the space (" 't", " 'd", " 'll" keep it).
  source.swap(out);
  out.assign(1, source[0]);
  for (size_t i = 1; i < source.size(); ++i) {
    const char x = source[i];
    if (source[i - 1] == ' ' && x == '\'' && i + 1 < source.size()) {
      const char x1 = source[i + 1];
      if (x1 == 's' || x1 == 'm') {
        out.pop_back();
      } else if (x1 != 't' && x1 != 'd' && i + 2 < source.size()) {
        const char x2 = source[i + 2];
        if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) out.pop_back();
      }
    }
    out.push_back(x);
  }
  text.swap(out);
}

}  // namespace toy::tokenizer
