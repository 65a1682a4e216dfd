// WordPiece tokenizer that gives the ids of Hugging Face's BertTokenizer (Rust `tokenizers`:
// BertNormalizer + BertPreTokenizer + WordPiece + BertProcessing). Text in brackets such as
// "[SEP]" inside raw text is tokenized as text, never as a special token.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace distill {

struct TokenizerOptions {
  bool lowercase = true;          // uncased vocabularies; false for cased ones
  int strip_accents = -1;         // NFD + drop nonspacing marks; -1 = follow `lowercase` (as HF)
  bool clean_text = true;         // drop control characters, map whitespace to ' '
  bool split_cjk = true;          // CJK ideographs become words of their own
  long max_chars_per_word = 100;  // longer words become [UNK]
};

struct Encoding {
  std::vector<std::int32_t> ids, type_ids, attention_mask;
};

class WordPieceTokenizer {
 public:
  // `vocab[i]` is the token with id i. Throws DataError naming `where` when [UNK], [CLS], [SEP]
  // or [PAD] is missing.
  WordPieceTokenizer(std::vector<std::string> vocab, TokenizerOptions o, const std::string& where);
  // Reads a vocab.txt (one token per line, id = line number).
  static WordPieceTokenizer from_file(const std::string& path, TokenizerOptions o = {});

  // Normalized, pre-tokenized words. Throws DataError on invalid UTF-8 (with the byte offset).
  std::vector<std::string> words(const std::string& text) const;
  // WordPiece ids of `text`, without special tokens.
  std::vector<std::int32_t> tokenize(const std::string& text) const;
  // [CLS] a [SEP] (b [SEP]); type ids 0 for a's part, 1 for b's. With max_length > 0 the pieces are
  // truncated longest-first and padded with [PAD] to exactly max_length.
  Encoding encode(const std::string& a, const std::string* b = nullptr, long max_length = 0) const;
  // The same from ids that tokenize() returned.
  Encoding encode_ids(std::vector<std::int32_t> a, const std::vector<std::int32_t>* b, long max_length) const;

  std::int32_t id(const std::string& token) const;  // -1 when absent
  const std::string& token(std::int32_t id) const { return vocab_.at(id); }
  std::int64_t size() const { return static_cast<std::int64_t>(vocab_.size()); }
  // Hash of the token list (id order); identifies the vocabulary in dataset files.
  const std::string& vocab_hash() const { return hash_; }
  const TokenizerOptions& options() const { return opt_; }
  std::int32_t unk_id() const { return unk_; }
  std::int32_t cls_id() const { return cls_; }
  std::int32_t sep_id() const { return sep_; }
  std::int32_t pad_id() const { return pad_; }
  std::int32_t mask_id() const { return mask_; }  // -1 when the vocab has no [MASK]

 private:
  void wordpiece(const std::string& word, std::vector<std::int32_t>& out) const;

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, std::int32_t> ids_;
  TokenizerOptions opt_;
  std::string hash_;
  std::int32_t unk_ = -1, cls_ = -1, sep_ = -1, pad_ = -1, mask_ = -1;
};

}  // namespace distill
