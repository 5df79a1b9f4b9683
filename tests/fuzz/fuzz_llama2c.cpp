// llama2.c files through what `semline convert CKPT --tokenizer TOK -o OUT` runs: the checkpoint
// reader, the tokenizer.bin reader and, when both accept, the conversion, whose GGUF must read
// back with every tensor.
//
// Input: a u32 (little-endian) byte count n, n bytes of checkpoint, the rest tokenizer.bin. The
// readers take paths, so the two parts are written to memory files (memfd) and opened by their
// /proc/self/fd path: the mapping code runs too.
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "core/model/gguf.h"
#include "core/model/llama2c.h"
#include "fuzz_util.h"
#include "semline/error.h"

using namespace semline;

namespace {

class MemFile {
 public:
  explicit MemFile(const char* name) : fd_(::memfd_create(name, MFD_CLOEXEC)) {
    if (fd_ < 0) fuzz::broken("memfd_create failed");
  }
  void assign(const uint8_t* p, size_t n) {
    if (::ftruncate(fd_, 0) != 0 || (n && ::pwrite(fd_, p, n, 0) != static_cast<ssize_t>(n)))
      fuzz::broken("cannot write the memory file");
  }
  std::filesystem::path path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

// Where converted models go: a private folder, removed at exit.
const std::filesystem::path& out_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("semline-fuzz-llama2c-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(out_dir(), ec);
    });
    return d;
  }();
  return dir;
}

void check_weights(const llama2c::Checkpoint& ck, size_t file_size) {
  const llama2c::Weights& w = ck.weights();
  for (std::span<const float> s : {w.token_embedding, w.rms_att, w.wq, w.wk, w.wv, w.wo, w.rms_ffn, w.w1, w.w2,
                                   w.w3, w.rms_final, w.freq_cis_real, w.freq_cis_imag, w.wcls}) {
    fuzz::expect(s.size_bytes() <= file_size, "a checkpoint field is larger than the file");
    fuzz::touch(s.data(), s.size_bytes());
  }
}

}  // namespace

SEMLINE_FUZZ_INITIALIZE((void)out_dir())

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static MemFile ckpt("checkpoint"), tok("tokenizer");
  if (size < 4) return 0;
  uint32_t n;
  std::memcpy(&n, data, 4);
  n = static_cast<uint32_t>(std::min<size_t>(n, size - 4));
  ckpt.assign(data + 4, n);
  tok.assign(data + 4 + n, size - 4 - n);

  // Without a checkpoint the tokenizer is still read, sized by the header's vocab_size field, so
  // that its reader is reached by inputs whose arrays do not fill the checkpoint exactly.
  int64_t vocab_size = 0;
  int64_t n_layers = 0;  // 0: no checkpoint
  try {
    auto ck = llama2c::Checkpoint::open(ckpt.path());
    check_weights(*ck, n);
    vocab_size = ck->config().vocab_size;
    n_layers = ck->config().n_layers;
  } catch (const Error&) {
    if (n >= 24) {
      int32_t v;
      std::memcpy(&v, data + 4 + 20, 4);
      vocab_size = v;
    }
  }
  try {
    llama2c::Vocab v = llama2c::read_tokenizer(tok.path(), vocab_size);
    fuzz::expect(static_cast<int64_t>(v.tokens.size()) == vocab_size && v.scores.size() == v.tokens.size(),
                 "tokenizer holds another number of tokens than vocab_size");
    for (size_t id = 0; id < v.tokens.size(); ++id) {
      (void)llama2c::gguf_token_text(v, id);
      (void)llama2c::gguf_token_type(v, id);
    }
  } catch (const Error&) {
    return 0;
  }
  if (n_layers == 0) return 0;
  try {
    const auto out = out_dir() / "converted.gguf";
    llama2c::convert_llama2c(ckpt.path(), tok.path(), out);
    auto g = gguf::GgufFile::open(out);
    fuzz::expect(static_cast<int64_t>(g->tensors().size()) == 3 + 9 * n_layers, "converted model lacks tensors");
  } catch (const Error&) {
  }
  return 0;
}
