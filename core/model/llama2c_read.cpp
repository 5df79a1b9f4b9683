// Bounds-checked readers of llama2.c checkpoints and tokenizer.bin files.
#include <spdlog/fmt/fmt.h>

#include <cstring>

#include "core/model/llama2c.h"
#include "core/model/mapped_file.h"
#include "semline/error.h"

namespace semline::llama2c {

namespace {

constexpr uint64_t kHeaderBytes = 7 * 4;
constexpr uint32_t kExportMagic = 0x616b3432;  // "ak42": llama2.c's newer export versions

int32_t load_i32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

Config read_config(const std::string& path, std::span<const uint8_t> bytes) {
  if (bytes.size() >= 8 && static_cast<uint32_t>(load_i32(bytes.data())) == kExportMagic)
    throw Error(fmt::format("{}: llama2.c export version {} (magic 'ak42') is not supported; only the legacy "
                            "version 0 checkpoint is",
                            path, load_i32(bytes.data() + 4)));
  if (bytes.size() < kHeaderBytes)
    throw Error(fmt::format("{}: file is {} bytes, shorter than the {}-byte llama2.c checkpoint header", path,
                            bytes.size(), kHeaderBytes));
  static const char* const names[] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  int32_t h[7];
  for (int i = 0; i < 7; ++i) h[i] = load_i32(bytes.data() + 4 * i);
  for (int i = 0; i < 7; ++i) {
    bool ok = i == 5 ? h[i] != 0 && h[i] != INT32_MIN : h[i] > 0;
    if (!ok)
      throw Error(fmt::format("{}: checkpoint header field '{}' is {}, expected {}", path, names[i], h[i],
                              i == 5 ? "a non-zero count (negative: unshared classifier)" : "a positive number"));
  }
  Config c{h[0], h[1], h[2], h[3], h[4], h[5] < 0 ? -h[5] : h[5], h[6], h[5] > 0};
  if (c.dim % c.n_heads)
    throw Error(fmt::format("{}: checkpoint dim {} is not a multiple of n_heads {}", path, c.dim, c.n_heads));
  if (c.n_kv_heads > c.n_heads || c.n_heads % c.n_kv_heads)
    throw Error(fmt::format("{}: checkpoint n_heads {} is not a multiple of n_kv_heads {}", path, c.n_heads,
                            c.n_kv_heads));
  if (c.head_size() % 2)
    throw Error(fmt::format("{}: checkpoint head size {} (dim {} / n_heads {}) is odd; rotary embeddings need it even",
                            path, c.head_size(), c.dim, c.n_heads));
  return c;
}

// Hands out consecutive float arrays of the file, refusing any that runs past its end.
class Sections {
 public:
  Sections(const std::string& path, std::span<const uint8_t> bytes) : path_(path), bytes_(bytes) {}

  std::span<const float> take(const char* field, std::initializer_list<int64_t> dims) {
    uint64_t n = 1;
    std::string shape;
    for (int64_t d : dims) {
      if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n) || n > (uint64_t{1} << 61))
        throw Error(fmt::format("{}: checkpoint field '{}' size overflows", path_, field));
      shape += (shape.empty() ? "" : " x ") + std::to_string(d);
    }
    uint64_t size = n * 4;
    if (size > bytes_.size() - pos_)
      throw Error(fmt::format("{}: checkpoint field '{}' ({} floats = {} bytes at offset {}) runs past the end of "
                              "the {}-byte file: the file is truncated or its header does not match",
                              path_, field, shape, size, pos_, bytes_.size()));
    // The map is page-aligned and every field a whole number of floats after the 28-byte header.
    std::span<const float> s(reinterpret_cast<const float*>(bytes_.data() + pos_), n);
    pos_ += size;
    last_ = field;
    return s;
  }

  void finish() const {
    if (pos_ != bytes_.size())
      throw Error(fmt::format("{}: {} bytes follow the last checkpoint field '{}' (at byte {}): the header does "
                              "not describe this file",
                              path_, bytes_.size() - pos_, last_, pos_));
  }

 private:
  const std::string& path_;
  std::span<const uint8_t> bytes_;
  uint64_t pos_ = kHeaderBytes;
  const char* last_ = "header";
};

}  // namespace

Checkpoint::~Checkpoint() = default;

std::unique_ptr<Checkpoint> Checkpoint::open(const std::filesystem::path& path) {
  std::unique_ptr<Checkpoint> ck(new Checkpoint());
  ck->path_ = path.string();
  ck->map_ = std::make_unique<MappedFile>(path);
  std::span<const uint8_t> bytes = ck->map_->bytes();
  const Config c = ck->config_ = read_config(ck->path_, bytes);
  const int64_t L = c.n_layers, D = c.dim, H = c.hidden_dim, KV = c.kv_dim(), V = c.vocab_size;
  Sections s(ck->path_, bytes);
  Weights& w = ck->weights_;
  w.token_embedding = s.take("token_embedding", {V, D});
  w.rms_att = s.take("rms_att", {L, D});
  w.wq = s.take("wq", {L, D, D});
  w.wk = s.take("wk", {L, KV, D});
  w.wv = s.take("wv", {L, KV, D});
  w.wo = s.take("wo", {L, D, D});
  w.rms_ffn = s.take("rms_ffn", {L, D});
  w.w1 = s.take("w1", {L, H, D});
  w.w2 = s.take("w2", {L, D, H});
  w.w3 = s.take("w3", {L, H, D});
  w.rms_final = s.take("rms_final", {D});
  w.freq_cis_real = s.take("freq_cis_real", {c.seq_len, c.head_size() / 2});
  w.freq_cis_imag = s.take("freq_cis_imag", {c.seq_len, c.head_size() / 2});
  w.wcls = c.shared_classifier ? w.token_embedding : s.take("wcls", {V, D});
  s.finish();
  return ck;
}

Vocab read_tokenizer(const std::filesystem::path& path, int64_t vocab_size) {
  const std::string name = path.string();
  if (vocab_size < 1)
    throw Error(fmt::format("{}: cannot read a tokenizer of {} tokens; the checkpoint's vocab_size must be positive",
                            name, vocab_size));
  MappedFile map(path);
  std::span<const uint8_t> b = map.bytes();
  uint64_t pos = 0;
  auto need = [&](uint64_t n, int64_t id, const char* field) {
    if (n > b.size() - pos) {
      if (id < 0)
        throw Error(fmt::format("{}: tokenizer is {} bytes, too short for its max_token_length header", name, b.size()));
      throw Error(fmt::format("{}: tokenizer ends inside token {} ({}) at byte {}; the checkpoint's vocab_size is {}",
                              name, id, field, pos, vocab_size));
    }
  };
  Vocab v;
  need(4, -1, "");
  v.max_token_length = load_i32(b.data());
  pos = 4;
  if (v.max_token_length < 1)
    throw Error(fmt::format("{}: tokenizer max_token_length is {}, expected a positive number", name, v.max_token_length));
  v.tokens.reserve(static_cast<size_t>(std::min<int64_t>(vocab_size, static_cast<int64_t>(b.size() / 8))));
  v.scores.reserve(v.tokens.capacity());
  for (int64_t id = 0; id < vocab_size; ++id) {
    need(8, id, "score and length");
    float score;
    std::memcpy(&score, b.data() + pos, 4);
    int32_t len = load_i32(b.data() + pos + 4);
    pos += 8;
    if (len < 0 || len > v.max_token_length)
      throw Error(fmt::format("{}: tokenizer token {} has length {}, expected 0 to max_token_length {}", name, id, len,
                              v.max_token_length));
    need(static_cast<uint64_t>(len), id, "text");
    v.tokens.emplace_back(reinterpret_cast<const char*>(b.data() + pos), static_cast<size_t>(len));
    v.scores.push_back(score);
    pos += static_cast<uint64_t>(len);
  }
  if (pos != b.size())
    throw Error(fmt::format("{}: tokenizer has {} bytes left after the checkpoint's vocab_size of {} tokens: it "
                            "belongs to a model with a larger vocabulary",
                            name, b.size() - pos, vocab_size));
  return v;
}

}  // namespace semline::llama2c
