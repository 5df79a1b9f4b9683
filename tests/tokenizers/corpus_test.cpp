// Every shipped vocabulary on every text of the corpus (tests/tokenizers/corpus): encoding gives
// the ids llama.cpp's llama-tokenize recorded, id for id, and byte-level BPE decodes them back.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/hf_writer.h"
#include "core/model/hf_tokenizer.h"
#include "model/model_test_util.h"
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

// The vocabulary of a recording: NAME (models/vocab/ggml-vocab-NAME.gguf, or stories260K) or
// NAME+PRE (that vocabulary with tokenizer.ggml.pre = PRE).
const ModelView& vocabulary_of(const std::string& recording) {
  const size_t plus = recording.find('+');
  const std::string name = recording.substr(0, plus);
  const std::string file = name == "stories260K" ? "gguf/stories260K.gguf" : "vocab/ggml-vocab-" + name + ".gguf";
  const gguf::GgufFile& f = model_file(file);
  if (plus == std::string::npos) return f;
  static std::map<std::string, std::unique_ptr<Retagged>> views;  // alive as long as the tokenizers
  auto& v = views[recording];
  if (!v) v = std::make_unique<Retagged>(f, recording.substr(plus + 1));
  return *v;
}

// The tokenizer tokenizer.ggml.model names.
std::unique_ptr<Tokenizer> tokenizer_for(const ModelView& vocab) {
  const MetaValue* model = vocab.meta("tokenizer.ggml.model");
  REQUIRE(model);
  if (model->str == "llama") return std::make_unique<tokenizers::SpmTokenizer>(vocab, LogFn{});
  if (model->str == "gpt2") return std::make_unique<tokenizers::BpeTokenizer>(vocab, LogFn{});
  if (model->str == "bert") return tokenizers::make_wordpiece_tokenizer(vocab, LogFn{});
  return nullptr;
}

bool valid_utf8(std::string_view s);

// Metadata read from a Hugging Face tokenizer.json, as a model.
class JsonVocabulary final : public ModelView {
 public:
  explicit JsonVocabulary(std::string path) : path_(std::move(path)) {}
  const MetaValue* meta(std::string_view key) const override {
    for (const auto& [k, v] : meta_.entries)
      if (k == key) return &v;
    return nullptr;
  }
  const Tensor* weight(std::string_view) const override { return nullptr; }
  std::string path() const override { return path_; }
  std::vector<std::string_view> meta_keys() const override {
    std::vector<std::string_view> keys;
    for (const auto& kv : meta_.entries) keys.push_back(kv.first);
    return keys;
  }
  std::vector<std::string_view> weight_names() const override { return {}; }
  OwnedMeta& owned() { return meta_; }

 private:
  std::string path_;
  OwnedMeta meta_;
};

// Checks a tokenizer against a recording (NAME.ids or NAME.special.ids); returns false when the
// recording's file is not there.
void check_recording(const Tokenizer& tok, const std::filesystem::path& ids_file, const std::vector<std::string>& texts,
                     bool parse_special) {
  const bool bpe = dynamic_cast<const tokenizers::BpeTokenizer*>(&tok) != nullptr;
  const std::vector<std::string> lines = lines_of(ids_file);
  REQUIRE(lines.size() == texts.size() + 1);  // the header, then one line per text
  for (size_t i = 0; i < texts.size(); ++i) {
    INFO("text " << i << ": \"" << shown(texts[i]) << "\"");
    std::vector<int32_t> want;
    std::istringstream ids(lines[i + 1]);
    for (int32_t id; ids >> id;) want.push_back(id);
    const std::vector<int32_t> got = tok.encode(texts[i], false, parse_special);
    CHECK(got == want);
    if (parse_special) continue;  // a special token's text is not its decoding
    // Byte-level BPE decodes to the text exactly, where the text is well-formed UTF-8 (what is
    // not reads as U+FFFD). SentencePiece cannot: its dummy prefix and U+2581 read as spaces.
    if (bpe && valid_utf8(texts[i])) CHECK(shown(tok.decode(got)) == shown(texts[i]));
  }
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
    const std::unique_ptr<Tokenizer> tok = tokenizer_for(vocabulary_of(name));
    REQUIRE(tok);
    check_recording(*tok, entry.path(), texts, parse_special);
    ++(parse_special ? parsed : vocabularies);
  }
  CHECK(vocabularies == 15);  // 13 files, and GPT-2 under llama-bpe and qwen2
  CHECK(parsed == 15);
}

// Hugging Face's tokenizer.json of each kind, written from a vocabulary as transformers' converters
// write it (tests/common/hf_writer.h) and read back as a Hugging Face folder's tokenizer: the
// SentencePiece vocabularies' scores are recomputed from the merges, the byte-level ones' pre-tokenizer
// recognised from its pattern, and every corpus text must still encode to llama-tokenize's ids.
TEST_CASE("tokenizer.json of each kind encodes every corpus text as llama.cpp does", "[tokenizers][corpus][hf]") {
  const std::vector<std::string> plain = corpus_texts("texts.txt"), special = corpus_texts("special.txt");
  for (const char* name : {"llama-spm", "phi-3", "gpt-2", "gpt-2+llama-bpe", "gpt-2+qwen2", "starcoder"}) {
    INFO("vocabulary " << name);
    const ModelView& original = vocabulary_of(name);
    TempDir dir;
    {
      std::ofstream(dir / "tokenizer.json") << testing::tokenizer_json_of(original).dump();
      std::ofstream(dir / "tokenizer_config.json") << testing::tokenizer_config_of(original).dump();
    }
    JsonVocabulary read((dir / "tokenizer.json").string());
    // A folder's general.name is its own name (e.g. Phi-3-mini-4k-instruct): the special tokens'
    // strip rules go by it, as llama.cpp's.
    if (const MetaValue* n = original.meta("general.name")) read.owned().add_string("general.name", std::string(n->str));
    const uint64_t n_vocab = original.meta("tokenizer.ggml.tokens")->count;
    hf::read_tokenizer_json({dir.path(), static_cast<int64_t>(n_vocab), std::nullopt, std::nullopt}, read.owned());
    for (const char* key : {"tokenizer.ggml.model", "tokenizer.ggml.pre"})
      if (const MetaValue* v = original.meta(key)) {
        REQUIRE(read.meta(key));
        CHECK(read.meta(key)->str == v->str);
      }
    CHECK(read.meta("tokenizer.ggml.tokens")->strings == original.meta("tokenizer.ggml.tokens")->strings);
    const MetaValue* types = original.meta("tokenizer.ggml.token_type");
    for (uint64_t i = 0; i < n_vocab; ++i) {
      INFO("token " << i);
      // Padding up to the model's rows reads as unused, whatever the vocabulary file marked it.
      const bool pad = original.meta("tokenizer.ggml.tokens")->strings[i] == "[PAD" + std::to_string(i) + "]";
      REQUIRE(read.meta("tokenizer.ggml.token_type")->at<int32_t>(i) == (pad ? 5 : types->at<int32_t>(i)));
    }
    const std::unique_ptr<Tokenizer> tok = tokenizer_for(read);
    REQUIRE(tok);
    check_recording(*tok, kCorpus / (std::string(name) + ".ids"), plain, false);
    check_recording(*tok, kCorpus / (std::string(name) + ".special.ids"), special, true);
  }
}

}  // namespace semline::test
