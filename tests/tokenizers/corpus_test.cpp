// Every shipped vocabulary on every text of the corpus (tests/tokenizers/corpus): encoding gives
// the ids llama.cpp's llama-tokenize recorded, id for id, and byte-level BPE decodes them back.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tokenizer_test_util.h"
#include "tokenizers/utf8.h"
#include "tokenizers/wordpiece.h"

namespace semline::test {

namespace {

const std::filesystem::path kCorpus = std::filesystem::path(SEMLINE_SOURCE_DIR) / "tests/tokenizers/corpus";

// One line of texts.txt with its escapes (\\ \n \r \t \xHH) read.
std::string unescape(const std::string& line) {
  std::string out;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] != '\\') {
      out += line[i];
      continue;
    }
    REQUIRE(i + 1 < line.size());
    const char c = line[++i];
    if (c == 'n') out += '\n';
    else if (c == 'r') out += '\r';
    else if (c == 't') out += '\t';
    else if (c == '\\') out += '\\';
    else {
      REQUIRE(c == 'x');
      REQUIRE(i + 2 < line.size());
      out += static_cast<char>(std::stoi(line.substr(i + 1, 2), nullptr, 16));
      i += 2;
    }
  }
  return out;
}

std::vector<std::string> lines_of(const std::filesystem::path& p) {
  std::ifstream f(p);
  REQUIRE(f.good());
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);) out.push_back(line);
  return out;
}

std::vector<std::string> corpus_texts(const char* file) {
  std::vector<std::string> texts;
  for (const std::string& line : lines_of(kCorpus / file))
    if (!line.empty() && line[0] != '#') texts.push_back(unescape(line));
  return texts;
}

// A vocabulary file as if its tokenizer.ggml.pre were `pre`: how the pre-tokenizers no shipped
// vocabulary has are checked (on the GPT-2 vocabulary; the recording script writes the same file).
class Retagged final : public ModelView {
 public:
  Retagged(const ModelView& base, std::string pre) : base_(base), pre_(std::move(pre)) {
    value_.type = MetaType::STRING;
    value_.str = pre_;
  }
  const MetaValue* meta(std::string_view key) const override {
    return key == "tokenizer.ggml.pre" ? &value_ : base_.meta(key);
  }
  const Tensor* weight(std::string_view name) const override { return base_.weight(name); }
  std::string path() const override { return base_.path() + " (tokenizer.ggml.pre " + pre_ + ")"; }
  std::vector<std::string_view> meta_keys() const override { return base_.meta_keys(); }
  std::vector<std::string_view> weight_names() const override { return base_.weight_names(); }

 private:
  const ModelView& base_;
  std::string pre_;
  MetaValue value_;
};

// The tokenizer of a recording's vocabulary: NAME (models/vocab/ggml-vocab-NAME.gguf, or
// stories260K) or NAME+PRE (that vocabulary with tokenizer.ggml.pre = PRE).
std::unique_ptr<Tokenizer> tokenizer_of(const std::string& recording) {
  const size_t plus = recording.find('+');
  const std::string name = recording.substr(0, plus);
  const std::string file = name == "stories260K" ? "gguf/stories260K.gguf" : "vocab/ggml-vocab-" + name + ".gguf";
  const gguf::GgufFile& f = model_file(file);
  if (plus != std::string::npos) {
    static std::vector<std::unique_ptr<Retagged>> views;  // alive as long as the tokenizers
    views.push_back(std::make_unique<Retagged>(f, recording.substr(plus + 1)));
    return std::make_unique<tokenizers::BpeTokenizer>(*views.back(), LogFn{});
  }
  const std::string model(f.get_string("tokenizer.ggml.model"));
  if (model == "llama") return std::make_unique<tokenizers::SpmTokenizer>(f, LogFn{});
  if (model == "gpt2") return std::make_unique<tokenizers::BpeTokenizer>(f, LogFn{});
  if (model == "bert") return tokenizers::make_wordpiece_tokenizer(f, LogFn{});
  return nullptr;
}

bool valid_utf8(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    const tokenizers::Utf8Unit u = tokenizers::utf8_next(s, pos);
    if (u.cp == tokenizers::kInvalidCodePoint) return false;
    pos += u.len;
  }
  return true;
}

}  // namespace

TEST_CASE("every shipped vocabulary encodes every corpus text as llama.cpp does, special tokens parsed or not",
          "[tokenizers][corpus]") {
  const std::vector<std::string> plain = corpus_texts("texts.txt"), special = corpus_texts("special.txt");
  REQUIRE(plain.size() > 60);
  REQUIRE(special.size() > 10);
  int vocabularies = 0, parsed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kCorpus)) {
    if (entry.path().extension() != ".ids") continue;
    std::string name = entry.path().stem().string();
    // NAME.special.ids: the texts of special.txt, encoded with parse_special.
    const bool parse_special = name.size() > 8 && name.ends_with(".special");
    if (parse_special) name.resize(name.size() - 8);
    const std::vector<std::string>& texts = parse_special ? special : plain;
    INFO("vocabulary " << name << (parse_special ? ", special tokens parsed" : ""));
    const std::unique_ptr<Tokenizer> tok = tokenizer_of(name);
    REQUIRE(tok);
    const bool bpe = dynamic_cast<const tokenizers::BpeTokenizer*>(tok.get()) != nullptr;
    const std::vector<std::string> lines = lines_of(entry.path());
    REQUIRE(lines.size() == texts.size() + 1);  // the header, then one line per text
    for (size_t i = 0; i < texts.size(); ++i) {
      INFO("text " << i << ": \"" << shown(texts[i]) << "\"");
      std::vector<int32_t> want;
      std::istringstream ids(lines[i + 1]);
      for (int32_t id; ids >> id;) want.push_back(id);
      const std::vector<int32_t> got = tok->encode(texts[i], false, parse_special);
      CHECK(got == want);
      if (parse_special) continue;  // a special token's text is not its decoding
      // Byte-level BPE decodes to the text exactly, where the text is well-formed UTF-8 (what is
      // not reads as U+FFFD). SentencePiece cannot: its dummy prefix and U+2581 read as spaces.
      if (bpe && valid_utf8(texts[i])) CHECK(shown(tok->decode(got)) == shown(texts[i]));
    }
    ++(parse_special ? parsed : vocabularies);
  }
  CHECK(vocabularies == 15);  // 13 files, and GPT-2 under llama-bpe and qwen2
  CHECK(parsed == 15);
}

}  // namespace semline::test
