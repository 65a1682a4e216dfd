// WordPiece tokenizer against golden ids from Hugging Face's Rust tokenizers (npm `tokenizers`,
// made by tests/fixtures/make_tokenizer_golden.js) on the real bert-base-uncased vocabulary.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "distill/data/tokenizer.h"
#include "distill/util/hash.h"
#include "test_util.h"

namespace distill {
namespace {

std::string vocab_path() {
  const char* v = std::getenv("DISTILL_VOCAB");
  return v ? v : "datasets/vocab/bert-base-uncased/vocab.txt";
}

const WordPieceTokenizer& tokenizer(bool cased) {
  static const auto uncased = WordPieceTokenizer::from_file(vocab_path());
  static const auto with_case = WordPieceTokenizer::from_file(vocab_path(), TokenizerOptions{false});
  return cased ? with_case : uncased;
}

TEST(Tokenizer, RealVocabularyIsBertBaseUncased) {
  ASSERT_TRUE(std::ifstream(vocab_path()).good()) << vocab_path() << " is missing: run launch/fetch-vocab.sh";
  const auto& t = tokenizer(false);
  EXPECT_EQ(t.size(), 30522);
  EXPECT_EQ(t.pad_id(), 0);
  EXPECT_EQ(t.unk_id(), 100);
  EXPECT_EQ(t.cls_id(), 101);
  EXPECT_EQ(t.sep_id(), 102);
  EXPECT_EQ(t.mask_id(), 103);
  EXPECT_EQ(t.id("the"), 1996);
  EXPECT_EQ(t.id("##s"), 2015);
}

TEST(Tokenizer, MatchesHuggingFaceGolden) {
  std::ifstream in(test::fixture("tokenizer_golden.json"));
  ASSERT_TRUE(in.good());
  const auto golden = nlohmann::json::parse(in);
  int checked = 0, pairs = 0, padded = 0, cased = 0;
  for (const auto& c : golden.at("cases")) {
    const auto text = c.at("text").get<std::string>();
    const bool has_pair = !c.at("pair").is_null();
    const std::string pair = has_pair ? c.at("pair").get<std::string>() : "";
    const long max_length = c.at("max_length").get<long>();
    const auto& t = tokenizer(c.at("cased").get<bool>());
    const auto e = t.encode(text, has_pair ? &pair : nullptr, max_length);
    ASSERT_EQ(e.ids, c.at("ids").get<std::vector<std::int32_t>>())
        << "case " << checked << " text '" << text << "' pair '" << pair << "' cased " << c.at("cased")
        << " max_length " << max_length << "\nexpected tokens " << c.at("tokens").dump();
    ASSERT_EQ(e.type_ids, c.at("type_ids").get<std::vector<std::int32_t>>()) << "case " << checked;
    ASSERT_EQ(e.attention_mask, c.at("mask").get<std::vector<std::int32_t>>()) << "case " << checked;
    ++checked;
    pairs += has_pair;
    padded += max_length > 0;
    cased += c.at("cased").get<bool>();
  }
  EXPECT_GE(checked, 500);
  EXPECT_GT(pairs, 50);
  EXPECT_GT(padded, 50);
  EXPECT_GT(cased, 100);
}

TEST(Tokenizer, HandPickedPieces) {
  const auto& t = tokenizer(false);
  auto toks = [&](const std::string& s) {
    std::vector<std::string> out;
    for (auto i : t.tokenize(s)) out.push_back(t.token(i));
    return out;
  };
  EXPECT_EQ(toks("unaffable"), (std::vector<std::string>{"una", "##ffa", "##ble"}));
  EXPECT_EQ(toks("Héllo, WORLD!"), (std::vector<std::string>{"hello", ",", "world", "!"}));
  EXPECT_EQ(toks(std::string(101, 'a')), (std::vector<std::string>{"[UNK]"}));
  EXPECT_EQ(toks("中文"), (std::vector<std::string>{"中", "文"}));
}

TEST(Tokenizer, InvalidUtf8IsAnErrorWithTheOffset) {
  const auto msg = test::error_of([] {
    tokenizer(false).tokenize(
        std::string("ab\xff"
                    "cd"));
  });
  EXPECT_NE(msg.find("invalid UTF-8 at byte 2"), std::string::npos) << msg;
}

TEST(Tokenizer, VocabularyWithoutSpecialTokensIsRefused) {
  const auto msg = test::error_of([] { WordPieceTokenizer({"[PAD]", "a", "b"}, {}, "tiny.txt"); });
  EXPECT_NE(msg.find("tiny.txt has no [UNK]"), std::string::npos) << msg;
}

TEST(Tokenizer, TruncationLeavesRoomForSpecialTokens) {
  const auto msg = test::error_of([] {
    std::string b = "x";
    tokenizer(false).encode("a", &b, 3);
  });
  EXPECT_NE(msg.find("max_length 3"), std::string::npos) << msg;
}

}  // namespace
}  // namespace distill
