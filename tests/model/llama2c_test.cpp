// llama2.c import: stories260K converts to exactly the reference GGUF; hostile inputs are refused.
#include <spdlog/fmt/fmt.h>

#include <cstring>

#include "core/model/gguf.h"
#include "core/model/llama2c.h"
#include "model_test_util.h"

using namespace semline;
using namespace semline::gguf;
using semline::test::Bytes, semline::test::check_message, semline::test::error_of;

namespace {

std::filesystem::path checkpoint_path() { return test::models_dir() / "llama2c/stories260K.bin"; }
std::filesystem::path tokenizer_path() { return test::models_dir() / "llama2c/tok512.bin"; }
std::filesystem::path reference_path() { return test::models_dir() / "gguf/stories260K.gguf"; }

bool same_value(const MetaValue& a, const MetaValue& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case MetaType::STRING: return a.str == b.str;
    case MetaType::F32: case MetaType::F64: return a.f == b.f;
    case MetaType::ARRAY:
      if (a.elem != b.elem || a.count != b.count) return false;
      if (a.elem == MetaType::STRING) return a.strings == b.strings;
      return std::memcmp(a.raw, b.raw, a.count * meta_type_size(a.elem)) == 0;
    default: return a.u == b.u && a.i == b.i;
  }
}

// stories260K.bin with its header fields replaced (index -> value).
std::vector<uint8_t> patched_checkpoint(std::initializer_list<std::pair<int, int32_t>> fields) {
  std::vector<uint8_t> b = test::read_file(checkpoint_path());
  for (auto [i, v] : fields) std::memcpy(b.data() + 4 * i, &v, 4);
  return b;
}

std::string checkpoint_refusal(const test::TempDir& dir, const std::vector<uint8_t>& bytes) {
  auto p = dir / "hostile.bin";
  test::write_file(p, bytes);
  std::string msg = error_of([&] { llama2c::Checkpoint::open(p); });
  CHECK(msg.rfind(p.string() + ": ", 0) == 0);
  return msg;
}

std::string tokenizer_refusal(const test::TempDir& dir, const Bytes& bytes, int64_t vocab) {
  auto p = dir / "hostile-tok.bin";
  test::write_file(p, bytes.vec());
  std::string msg = error_of([&] { llama2c::read_tokenizer(p, vocab); });
  CHECK(msg.rfind(p.string() + ": ", 0) == 0);
  return msg;
}

}  // namespace

TEST_CASE("llama2c reads the stories260K checkpoint and tokenizer") {
  auto ck = llama2c::Checkpoint::open(checkpoint_path());
  const llama2c::Config& c = ck->config();
  CHECK(fmt::format("dim {} hidden {} layers {} heads {}/{} vocab {} seq {} shared {}", c.dim, c.hidden_dim, c.n_layers,
                    c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len, c.shared_classifier) ==
        "dim 64 hidden 172 layers 5 heads 8/4 vocab 512 seq 512 shared true");
  CHECK(c.kv_dim() == 32);
  CHECK(ck->weights().wk.size() == 5 * 32 * 64);
  CHECK(ck->weights().wcls.data() == ck->weights().token_embedding.data());
  CHECK(ck->weights().freq_cis_imag.size() == 512 * 4);

  auto v = llama2c::read_tokenizer(tokenizer_path(), 512);
  CHECK(v.max_token_length == 7);
  REQUIRE(v.tokens.size() == 512);
  CHECK(v.tokens[1] == "\n<s>\n");
  CHECK(v.tokens[259] == " t");
  CHECK(v.scores[261] == -2.0f);
  CHECK(llama2c::gguf_token_text(v, 1) == "<s>");
  CHECK(llama2c::gguf_token_text(v, 259) == "\xe2\x96\x81t");
  CHECK(llama2c::gguf_token_type(v, 0) == llama2c::TokenType::Unknown);
  CHECK(llama2c::gguf_token_type(v, 2) == llama2c::TokenType::Control);
  CHECK(llama2c::gguf_token_type(v, 3) == llama2c::TokenType::Byte);
  CHECK(llama2c::gguf_token_type(v, 300) == llama2c::TokenType::Normal);
}

TEST_CASE("llama2c convert reproduces stories260K.gguf exactly") {
  test::TempDir dir;
  llama2c::ConvertOptions opt;
  opt.context_length = 2048;  // what the reference file was converted with
  uint64_t last = 0, total = 0;
  llama2c::convert_llama2c(checkpoint_path(), tokenizer_path(), dir / "out.gguf",
                           [&](uint64_t done, uint64_t all) { last = done, total = all; }, opt);
  CHECK(last == total);
  CHECK(total == 1171200);

  auto got = GgufFile::open(dir / "out.gguf");
  auto ref = GgufFile::open(reference_path());
  REQUIRE(got->metadata().size() == ref->metadata().size());
  for (size_t i = 0; i < ref->metadata().size(); ++i) {
    INFO("metadata #" << i << " '" << ref->metadata()[i].first << "'");
    CHECK(got->metadata()[i].first == ref->metadata()[i].first);
    CHECK(same_value(got->metadata()[i].second, ref->metadata()[i].second));
  }
  REQUIRE(got->tensors().size() == ref->tensors().size());
  for (size_t i = 0; i < ref->tensors().size(); ++i) {
    const TensorInfo& a = got->tensors()[i];
    const TensorInfo& b = ref->tensors()[i];
    INFO("tensor #" << i << " '" << b.name << "'");
    CHECK(a.name == b.name);
    CHECK(tensor_shape_string(a.view) == tensor_shape_string(b.view));
    CHECK(a.offset == b.offset);
    REQUIRE(a.bytes == b.bytes);
    CHECK(std::memcmp(a.view.host, b.view.host, a.bytes) == 0);
  }
  REQUIRE(got->file_size() == ref->file_size());
  CHECK(std::memcmp(got->bytes().data(), ref->bytes().data(), ref->file_size()) == 0);
}

TEST_CASE("llama2c convert takes the context length from the checkpoint by default") {
  test::TempDir dir;
  llama2c::convert_llama2c(checkpoint_path(), tokenizer_path(), dir / "out.gguf");
  auto f = GgufFile::open(dir / "out.gguf");
  CHECK(f->get_u64("llama.context_length") == 512);
}

TEST_CASE("llama2c convert writes an unshared classifier as output.weight") {
  test::TempDir dir;
  auto b = patched_checkpoint({{5, -512}});
  std::vector<float> wcls(512 * 64);
  for (size_t i = 0; i < wcls.size(); ++i) wcls[i] = static_cast<float>(i % 97) * 0.01f;
  size_t at = b.size();
  b.resize(at + wcls.size() * 4);
  std::memcpy(b.data() + at, wcls.data(), wcls.size() * 4);
  test::write_file(dir / "unshared.bin", b);
  auto ck = llama2c::Checkpoint::open(dir / "unshared.bin");
  CHECK_FALSE(ck->config().shared_classifier);
  CHECK(ck->config().vocab_size == 512);
  llama2c::convert_llama2c(dir / "unshared.bin", tokenizer_path(), dir / "out.gguf");
  auto f = GgufFile::open(dir / "out.gguf");
  const Tensor* out = f->weight("output.weight");
  REQUIRE(out);
  CHECK(std::memcmp(out->host, wcls.data(), wcls.size() * 4) == 0);
  CHECK(std::memcmp(f->weight("token_embd.weight")->host, ck->weights().token_embedding.data(), wcls.size() * 4) == 0);
}

TEST_CASE("llama2c refuses hostile checkpoint headers, naming the field") {
  test::TempDir dir;
  check_message(checkpoint_refusal(dir, std::vector<uint8_t>(10, 1)),
                {"file is 10 bytes, shorter than the 28-byte llama2.c checkpoint header"});
  Bytes ak42;
  ak42.u32(0x616b3432).i32(1).zeros(300);
  check_message(checkpoint_refusal(dir, ak42.vec()), {"llama2.c export version 1 (magic 'ak42') is not supported"});
  const char* names[] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  for (int i = 0; i < 7; ++i) {
    check_message(checkpoint_refusal(dir, patched_checkpoint({{i, 0}})),
                  {fmt::format("checkpoint header field '{}' is 0, expected", names[i])});
    if (i != 5)
      check_message(checkpoint_refusal(dir, patched_checkpoint({{i, -4}})), {fmt::format("'{}' is -4", names[i])});
  }
  check_message(checkpoint_refusal(dir, patched_checkpoint({{3, 7}})), {"checkpoint dim 64 is not a multiple of n_heads 7"});
  check_message(checkpoint_refusal(dir, patched_checkpoint({{4, 3}})),
                {"checkpoint n_heads 8 is not a multiple of n_kv_heads 3"});
  check_message(checkpoint_refusal(dir, patched_checkpoint({{4, 16}})), {"n_heads 8 is not a multiple of n_kv_heads 16"});
  check_message(checkpoint_refusal(dir, patched_checkpoint({{3, 64}, {4, 64}})), {"head size 1 (dim 64 / n_heads 64) is odd"});
  check_message(checkpoint_refusal(dir, patched_checkpoint({{0, 1 << 30}, {1, 1 << 30}, {2, 1 << 30}, {3, 2}, {4, 2}})),
                {"checkpoint field 'token_embedding' (512 x 1073741824 floats", "runs past the end of the 1056540-byte file"});
}

TEST_CASE("llama2c refuses truncated checkpoints and trailing bytes") {
  test::TempDir dir;
  std::vector<uint8_t> full = test::read_file(checkpoint_path());
  // Cut inside each field in turn: the message names that field.
  struct Cut {
    size_t at;
    const char* field;
  };
  const size_t emb = 28 + 512 * 64 * 4;
  for (Cut cut : {Cut{30, "token_embedding"}, Cut{emb + 10, "rms_att"}, Cut{emb + 5 * 64 * 4 + 100, "wq"},
                  Cut{full.size() - 100, "freq_cis_imag"}}) {
    std::vector<uint8_t> b(full.begin(), full.begin() + static_cast<ptrdiff_t>(cut.at));
    check_message(checkpoint_refusal(dir, b), {fmt::format("checkpoint field '{}'", cut.field), "runs past the end"});
  }
  std::vector<uint8_t> longer = full;
  longer.resize(full.size() + 8, 0);
  check_message(checkpoint_refusal(dir, longer),
                {"8 bytes follow the last checkpoint field 'freq_cis_imag'", "the header does not describe this file"});
  check_message(error_of([&] { llama2c::Checkpoint::open(dir / "absent.bin"); }), {"absent.bin: cannot open"});
}

TEST_CASE("llama2c refuses hostile or mismatched tokenizers") {
  test::TempDir dir;
  Bytes tok;
  std::vector<uint8_t> real = test::read_file(tokenizer_path());
  tok.raw(real.data(), real.size());
  check_message(tokenizer_refusal(dir, tok, 600),
                {"tokenizer ends inside token 512 (score and length)", "the checkpoint's vocab_size is 600"});
  check_message(tokenizer_refusal(dir, tok, 100),
                {"tokenizer has", "bytes left after the checkpoint's vocab_size of 100 tokens"});
  check_message(tokenizer_refusal(dir, Bytes().u8(1), 3), {"too short for its max_token_length header"});
  check_message(tokenizer_refusal(dir, Bytes().i32(0), 3), {"tokenizer max_token_length is 0"});
  check_message(tokenizer_refusal(dir, Bytes().i32(4).f32(0).i32(-1), 3),
                {"tokenizer token 0 has length -1, expected 0 to max_token_length 4"});
  check_message(tokenizer_refusal(dir, Bytes().i32(4).f32(0).i32(2).raw("ab", 2).f32(0).i32(9), 3),
                {"token 1 has length 9, expected 0 to max_token_length 4"});
  check_message(tokenizer_refusal(dir, Bytes().i32(4).f32(0).i32(3).raw("ab", 2), 3),
                {"tokenizer ends inside token 0 (text)"});
  // A convert with a mismatched tokenizer fails before writing anything.
  auto small = dir / "small-tok.bin";
  test::write_file(small, Bytes().i32(4).f32(0).i32(1).raw("a", 1).vec());
  check_message(error_of([&] { llama2c::convert_llama2c(checkpoint_path(), small, dir / "x.gguf"); }),
                {"tokenizer ends inside token 1"});
  CHECK_FALSE(std::filesystem::exists(dir / "x.gguf"));
  // stories260K cut down to a consistent two-token vocabulary.
  std::vector<uint8_t> full = patched_checkpoint({{5, 2}});
  std::vector<uint8_t> cut(full.begin(), full.begin() + 28 + 2 * 64 * 4);
  cut.insert(cut.end(), full.begin() + 28 + 512 * 64 * 4, full.end());
  auto two = dir / "two.bin";
  test::write_file(two, cut);
  CHECK(llama2c::Checkpoint::open(two)->config().vocab_size == 2);
  check_message(error_of([&] { llama2c::convert_llama2c(two, small, dir / "x.gguf"); }),
                {"vocab_size 2 is too small: ids 0, 1 and 2 are <unk>, <s> and </s>"});
}

TEST_CASE("llama2c refuses to read a tokenizer for a non-positive vocab_size") {
  // Found by fuzz_llama2c: a tokenizer read for a negative count reserved a vector that size.
  // The tokenizer part of the reproducer; its checkpoint header's vocab_size was -1982218772.
  const char* hex =
      "c54eec3d4fec443e9ed8893e143bb13e8a9dd83e000000bf8a9dd8be143bb1be9ed889be4fec44bec54eecbdd9891dbdd9891d3d"
      "c54eec3d4fec443e9ed8893e143bb13e8a9dd83e000000bf8a9dd8be143bb1be0600000000000080050000003c756e6b3e000080"
      "bf050000000a3c733e0a000000c0060000000a3c2f733e0a";
  Bytes tok;
  for (size_t i = 0; hex[i]; i += 2) tok.u8(static_cast<uint8_t>(std::stoi(std::string(hex + i, 2), nullptr, 16)));
  test::TempDir dir;
  check_message(tokenizer_refusal(dir, tok, -1982218772),
                {"cannot read a tokenizer of -1982218772 tokens; the checkpoint's vocab_size must be positive"});
  check_message(tokenizer_refusal(dir, tok, 0), {"tokenizer of 0 tokens"});
}
