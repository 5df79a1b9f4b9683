// llama2.c model files: the legacy (version 0) checkpoint, tokenizer.bin, and their conversion
// to a llama GGUF.
//
// Checkpoint: seven int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
// a negative vocab_size means the classifier is stored separately), then float32 arrays in this
// order: token_embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq_cis_real,
// freq_cis_imag and, when unshared, wcls. Matrices are row-major [out][in].
//
// tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length and the
// bytes; '▁' is stored as ' ', and tokens 1 and 2 as "\n<s>\n" and "\n</s>\n".
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/model/gguf_writer.h"

namespace semline {
class MappedFile;
}

namespace semline::llama2c {

struct Config {
  int32_t dim = 0;
  int32_t hidden_dim = 0;
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;
  int32_t vocab_size = 0;  // positive even when the file stores it negated
  int32_t seq_len = 0;
  bool shared_classifier = true;

  int64_t head_size() const { return dim / n_heads; }
  int64_t kv_dim() const { return head_size() * n_kv_heads; }
};

// Views into the mapped checkpoint.
struct Weights {
  std::span<const float> token_embedding;  // [vocab][dim]
  std::span<const float> rms_att;          // [layers][dim]
  std::span<const float> wq;               // [layers][dim][dim]
  std::span<const float> wk;               // [layers][kv_dim][dim]
  std::span<const float> wv;               // [layers][kv_dim][dim]
  std::span<const float> wo;               // [layers][dim][dim]
  std::span<const float> rms_ffn;          // [layers][dim]
  std::span<const float> w1;               // [layers][hidden][dim]  gate
  std::span<const float> w2;               // [layers][dim][hidden]  down
  std::span<const float> w3;               // [layers][hidden][dim]  up
  std::span<const float> rms_final;        // [dim]
  std::span<const float> freq_cis_real;    // [seq_len][head_size / 2]
  std::span<const float> freq_cis_imag;    // [seq_len][head_size / 2]
  std::span<const float> wcls;             // [vocab][dim]; token_embedding when shared
};

class Checkpoint {
 public:
  // Validates the header and that the arrays exactly fill the file; errors name the field.
  static std::unique_ptr<Checkpoint> open(const std::filesystem::path& path);
  ~Checkpoint();

  const Config& config() const { return config_; }
  const Weights& weights() const { return weights_; }
  const std::string& path() const { return path_; }

 private:
  Checkpoint() = default;
  std::string path_;
  std::unique_ptr<MappedFile> map_;
  Config config_;
  Weights weights_;
};

struct Vocab {
  int32_t max_token_length = 0;
  std::vector<std::string> tokens;  // as stored: ' ' for '▁', "\n<s>\n" for token 1
  std::vector<float> scores;
};

// Reads exactly vocab_size tokens (the file has no count of its own); a file holding fewer or
// more is refused, which catches a tokenizer paired with the wrong model.
Vocab read_tokenizer(const std::filesystem::path& path, int64_t vocab_size);

// GGUF token types, as llama.cpp numbers them.
enum class TokenType : int32_t { Normal = 1, Unknown = 2, Control = 3, Byte = 6 };

// A token as GGUF stores it for the llama tokenizer, and its type.
std::string gguf_token_text(const Vocab& vocab, size_t id);
TokenType gguf_token_type(const Vocab& vocab, size_t id);

struct ConvertOptions {
  int64_t context_length = 0;  // llama.context_length; 0 takes the checkpoint's seq_len
  std::string name = "llama";  // general.name
};

// Writes a llama GGUF: F32 tensors with llama.cpp's names (output.weight always present, a copy
// of the embedding when the classifier is shared) and the llama tokenizer metadata.
void convert_llama2c(const std::filesystem::path& checkpoint, const std::filesystem::path& tokenizer,
                     const std::filesystem::path& out, const gguf::Progress& progress = {},
                     const ConvertOptions& options = {});

}  // namespace semline::llama2c
