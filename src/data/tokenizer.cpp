#include "distill/data/tokenizer.h"

#include <utf8proc.h>

#include <fstream>
#include <unordered_map>

#include "distill/util/error.h"
#include "distill/util/hash.h"

namespace distill {

namespace {

using Codepoints = std::vector<std::int32_t>;

Codepoints decode_utf8(const std::string& s) {
  Codepoints out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  std::size_t i = 0;
  while (i < s.size()) {
    utf8proc_int32_t c = 0;
    const auto n = utf8proc_iterate(p + i, static_cast<utf8proc_ssize_t>(s.size() - i), &c);
    DISTILL_CHECK(n > 0, DataError, "invalid UTF-8 at byte ", i);
    out.push_back(c);
    i += static_cast<std::size_t>(n);
  }
  return out;
}

void append_utf8(std::string& s, std::int32_t c) {
  utf8proc_uint8_t buf[4];
  const auto n = utf8proc_encode_char(c, buf);
  s.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
}

std::string encode_utf8(const Codepoints& cps) {
  std::string s;
  for (auto c : cps) append_utf8(s, c);
  return s;
}

utf8proc_category_t category(std::int32_t c) { return utf8proc_category(c); }

// Unicode White_Space (what Rust's char::is_whitespace tests).
bool is_whitespace(std::int32_t c) {
  if ((c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85) return true;
  const auto k = category(c);
  return k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP;
}

// Control, format, surrogate and private-use characters (Cc, Cf, Cs, Co), except \t \n \r.
// Unassigned code points (Cn) are kept, as HF's Rust tokenizers keeps them (they become [UNK]).
bool is_control(std::int32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  const auto k = category(c);
  return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CS ||
         k == UTF8PROC_CATEGORY_CO;
}

bool is_punctuation(std::int32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  const auto k = category(c);
  return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

// The CJK Unified Ideograph blocks BERT splits out (not Hiragana, Katakana or Hangul).
bool is_cjk(std::int32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// Canonical decomposition (NFD) with canonical ordering, then nonspacing marks (Mn) removed.
Codepoints strip_accents(const Codepoints& in) {
  const std::string s = encode_utf8(in);
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  const auto len = static_cast<utf8proc_ssize_t>(s.size());
  Codepoints nfd(in.size() * 2 + 4);
  auto n = utf8proc_decompose(p, len, nfd.data(), static_cast<utf8proc_ssize_t>(nfd.size()), UTF8PROC_DECOMPOSE);
  if (n > static_cast<utf8proc_ssize_t>(nfd.size())) {
    nfd.resize(static_cast<std::size_t>(n));
    n = utf8proc_decompose(p, len, nfd.data(), n, UTF8PROC_DECOMPOSE);
  }
  DISTILL_CHECK(n >= 0, DataError, "Unicode decomposition failed: ", utf8proc_errmsg(n));
  nfd.resize(static_cast<std::size_t>(n));
  Codepoints out;
  out.reserve(nfd.size());
  for (auto c : nfd)
    if (category(c) != UTF8PROC_CATEGORY_MN) out.push_back(c);
  return out;
}

// BertNormalizer: clean, CJK spacing, accent stripping, then lowercasing (full mapping of U+0130).
Codepoints normalize(const Codepoints& text, const TokenizerOptions& o) {
  Codepoints t;
  t.reserve(text.size());
  for (auto c : text) {
    if (o.clean_text) {
      if (c == 0 || c == 0xFFFD || is_control(c)) continue;
      if (is_whitespace(c)) c = ' ';
    }
    if (o.split_cjk && is_cjk(c)) {
      t.insert(t.end(), {' ', c, ' '});
    } else {
      t.push_back(c);
    }
  }
  const bool strip = o.strip_accents < 0 ? o.lowercase : o.strip_accents != 0;
  if (strip) t = strip_accents(t);
  if (o.lowercase) {
    Codepoints low;
    low.reserve(t.size());
    for (auto c : t) {
      if (c == 0x130) {
        low.insert(low.end(), {'i', 0x307});
      } else {
        low.push_back(utf8proc_tolower(c));
      }
    }
    t = std::move(low);
  }
  return t;
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> vocab, TokenizerOptions o, const std::string& where)
    : vocab_(std::move(vocab)), opt_(o) {
  DISTILL_CHECK(!vocab_.empty(), DataError, "vocabulary ", where, " is empty");
  DISTILL_CHECK(vocab_.size() < (1u << 31), DataError, "vocabulary ", where, " has too many tokens");
  Hasher h;
  for (std::size_t i = 0; i < vocab_.size(); ++i) {
    ids_[vocab_[i]] = static_cast<std::int32_t>(i);  // a repeated token keeps its last id (as HF)
    h.update(vocab_[i]).update("\n", 1);
  }
  hash_ = h.hex();
  auto need = [&](const char* tok) {
    const auto i = id(tok);
    DISTILL_CHECK(i >= 0, DataError, "vocabulary ", where, " has no ", tok, " token");
    return i;
  };
  unk_ = need("[UNK]");
  cls_ = need("[CLS]");
  sep_ = need("[SEP]");
  pad_ = need("[PAD]");
  mask_ = id("[MASK]");
  DISTILL_CHECK(o.max_chars_per_word > 0, ConfigError, "max_chars_per_word must be positive");
}

WordPieceTokenizer WordPieceTokenizer::from_file(const std::string& path, TokenizerOptions o) {
  std::ifstream in(path, std::ios::binary);
  DISTILL_CHECK(in, DataError, "cannot open vocabulary ", path);
  std::vector<std::string> vocab;
  std::unordered_map<std::string, long> first_line;
  std::string line;
  long lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    try {
      decode_utf8(line);
    } catch (const DataError& e) {
      throw DataError(distill::str(path, ":", lineno, ": ", e.what()));
    }
    const auto [it, fresh] = first_line.emplace(line, lineno);
    DISTILL_CHECK(fresh, DataError, path, ":", lineno, ": token '", line, "' repeats line ", it->second,
                  " (each token needs one id)");
    vocab.push_back(line);
  }
  return WordPieceTokenizer(std::move(vocab), o, path);
}

std::int32_t WordPieceTokenizer::id(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

std::vector<std::string> WordPieceTokenizer::words(const std::string& text) const {
  const auto norm = normalize(decode_utf8(text), opt_);
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) out.push_back(std::move(cur));
    cur.clear();
  };
  for (auto c : norm) {
    if (is_whitespace(c)) {
      flush();
    } else if (is_punctuation(c)) {
      flush();
      append_utf8(cur, c);
      flush();
    } else {
      append_utf8(cur, c);
    }
  }
  flush();
  return out;
}

// Greedy longest match from the left; a word with an unmatched rest is one [UNK].
void WordPieceTokenizer::wordpiece(const std::string& word, std::vector<std::int32_t>& out) const {
  std::vector<std::size_t> bounds;  // byte offset of each character, then the end
  for (std::size_t i = 0; i < word.size(); ++i)
    if ((static_cast<unsigned char>(word[i]) & 0xC0) != 0x80) bounds.push_back(i);
  const std::size_t chars = bounds.size();
  bounds.push_back(word.size());
  if (static_cast<long>(chars) > opt_.max_chars_per_word) {
    out.push_back(unk_);
    return;
  }
  std::vector<std::int32_t> pieces;
  std::size_t start = 0;
  std::string cand;
  while (start < chars) {
    std::int32_t found = -1;
    std::size_t end = chars;
    for (; end > start; --end) {
      cand.assign(start > 0 ? "##" : "");
      cand.append(word, bounds[start], bounds[end] - bounds[start]);
      found = id(cand);
      if (found >= 0) break;
    }
    if (found < 0) {
      out.push_back(unk_);
      return;
    }
    pieces.push_back(found);
    start = end;
  }
  out.insert(out.end(), pieces.begin(), pieces.end());
}

std::vector<std::int32_t> WordPieceTokenizer::tokenize(const std::string& text) const {
  std::vector<std::int32_t> ids;
  for (const auto& w : words(text)) wordpiece(w, ids);
  return ids;
}

Encoding WordPieceTokenizer::encode(const std::string& a, const std::string* b, long max_length) const {
  std::vector<std::int32_t> y;
  if (b) y = tokenize(*b);
  return encode_ids(tokenize(a), b ? &y : nullptr, max_length);
}

Encoding WordPieceTokenizer::encode_ids(std::vector<std::int32_t> x, const std::vector<std::int32_t>* pair,
                                        long max_length) const {
  std::vector<std::int32_t> y;
  if (pair) y = *pair;
  const bool b = pair != nullptr;
  const long added = b ? 3 : 2;
  if (max_length > 0) {
    DISTILL_CHECK(max_length > added, ConfigError, "max_length ", max_length, " leaves no room for text besides the ",
                  added, " special tokens");
    // Longest first, as HF's truncate_encodings: the shorter keeps its length when it fits in
    // half the budget, otherwise both get half (the longer one the odd token).
    const std::size_t budget = static_cast<std::size_t>(max_length - added);
    if (x.size() + y.size() > budget) {
      if (!b) {
        x.resize(budget);
      } else {
        std::size_t n1 = x.size(), n2 = y.size();
        const bool swap = n1 > n2;
        if (swap) std::swap(n1, n2);
        n2 = n1 > budget ? n1 : std::max(n1, budget - n1);
        if (n1 + n2 > budget) {
          n1 = budget / 2;
          n2 = n1 + budget % 2;
        }
        if (swap) std::swap(n1, n2);
        x.resize(std::min(x.size(), n1));
        y.resize(std::min(y.size(), n2));
      }
    }
  }
  Encoding e;
  auto put = [&e](std::int32_t id, std::int32_t type) {
    e.ids.push_back(id);
    e.type_ids.push_back(type);
    e.attention_mask.push_back(1);
  };
  put(cls_, 0);
  for (auto i : x) put(i, 0);
  put(sep_, 0);
  if (b) {
    for (auto i : y) put(i, 1);
    put(sep_, 1);
  }
  if (max_length > 0) {
    e.ids.resize(static_cast<std::size_t>(max_length), pad_);
    e.type_ids.resize(static_cast<std::size_t>(max_length), 0);
    e.attention_mask.resize(static_cast<std::size_t>(max_length), 0);
  }
  return e;
}

}  // namespace distill
