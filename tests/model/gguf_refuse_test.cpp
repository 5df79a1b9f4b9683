// Hostile and broken GGUF files: each one gives one clear semline::Error naming the file.
#include <random>

#include "common/seed.h"
#include "core/model/gguf.h"
#include "model_test_util.h"

using namespace semline;
using namespace semline::gguf;
using semline::test::Bytes, semline::test::check_message, semline::test::error_of;

namespace {

// A small valid file: one metadata entry, tensors a (F32 [8]) and b (F32 [4, 2]).
Bytes valid_file() {
  Bytes b;
  b.header(2, 1).kv_str("general.architecture", "llama");
  b.tensor("a", {8}, 0, 0).tensor("b", {4, 2}, 0, 32).pad_to(32).zeros(64);
  return b;
}

std::string refusal(const Bytes& b, const Limits& limits = {}) {
  return error_of([&] { GgufFile::from_memory(b, "bad.gguf", limits); });
}

// A file whose metadata is the given entries and whose tensor table is empty.
Bytes meta_only(uint64_t count, const Bytes& entries) {
  Bytes b;
  b.header(0, count).raw(entries.vec().data(), entries.size());
  return b;
}

// A file with one metadata-free tensor entry built by `entry`, followed by `data` bytes.
template <class F>
Bytes one_tensor(F entry, size_t data) {
  Bytes b;
  b.header(1, 0);
  entry(b);
  return b.pad_to(32).zeros(data);
}

}  // namespace

TEST_CASE("gguf: the valid base file of these tests is read") {
  auto f = GgufFile::from_memory(valid_file(), "good.gguf");
  CHECK(f->tensors().size() == 2);
  CHECK(f->weight("b")->ne[1] == 2);
}

TEST_CASE("gguf refuses files that are too short or not GGUF") {
  check_message(refusal(Bytes().raw("GGUF", 4).u32(3)), {"bad.gguf: ", "file is 8 bytes, shorter than the 24-byte GGUF header"});
  check_message(refusal(Bytes()), {"bad.gguf: file is 0 bytes"});
  Bytes ggjt;
  ggjt.raw("ggjt", 4).zeros(40);
  check_message(refusal(ggjt), {"bad.gguf: not a GGUF file: it starts with 'ggjt'", "expected 'GGUF'"});
  Bytes binary;
  binary.u32(0x00000102).zeros(40);
  check_message(refusal(binary), {"starts with 0x02 0x01 0x00 0x00, expected 'GGUF'"});
}

TEST_CASE("gguf refuses unsupported versions") {
  Bytes v1;
  v1.header(0, 0, 1);
  check_message(refusal(v1), {"bad.gguf: unsupported GGUF version 1 (supported: 2 and 3)"});
  Bytes v4;
  v4.header(0, 0, 4);
  check_message(refusal(v4), {"unsupported GGUF version 4"});
  Bytes be;
  be.header(0, 0, 0x03000000u);
  check_message(refusal(be), {"big-endian GGUF (version 3 byte-swapped) is not supported"});
}

TEST_CASE("gguf refuses every truncation of a valid file") {
  const std::vector<uint8_t> full = valid_file().vec();
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<ptrdiff_t>(n));
    INFO("truncated to " << n << " of " << full.size() << " bytes");
    std::string msg = error_of([&] { GgufFile::from_memory(cut, "cut.gguf"); });
    CHECK(msg.rfind("cut.gguf: ", 0) == 0);
  }
  Bytes b;
  b.header(0, 1).str("k").u32(4).u8(1);
  check_message(refusal(b), {"metadata 'k' is truncated: it needs 4 bytes at offset 37 but the file ends 1 bytes later"});
}

TEST_CASE("gguf refuses sizes and counts past the end of the file") {
  Bytes key;
  key.u64(1000).raw("abcdefgh", 8);
  check_message(refusal(meta_only(1, key)), {"metadata entry #0 key string length 1000 exceeds the 8 bytes left in the file"});
  Bytes val;
  val.str("s").u32(8).u64(~uint64_t{0} - 5).raw("x", 1);
  check_message(refusal(meta_only(1, val)), {"metadata 's' string length 18446744073709551610 exceeds the 1 bytes left"});
  Bytes arr;
  arr.str("tokenizer.ggml.tokens").u32(9).u32(4).u64(uint64_t{1} << 62).zeros(16);
  check_message(refusal(meta_only(1, arr)),
                {"metadata 'tokenizer.ggml.tokens' array count 4611686018427387904 exceeds the 16 bytes left in the file"});
  Bytes strs;
  strs.str("t").u32(9).u32(8).u64(3).str("a").str("b").u64(50);
  check_message(refusal(meta_only(1, strs)), {"metadata 't' element 2 string length 50 exceeds the 0 bytes left"});
  Bytes many;
  many.header(0, uint64_t{1} << 63);
  check_message(refusal(many), {"metadata count 9223372036854775808 exceeds the 0 bytes left in the file"});
  Bytes tensors;
  tensors.header(1000, 0).zeros(100);
  check_message(refusal(tensors), {"tensor count 1000 exceeds the 100 bytes left in the file (32 bytes each at least)"});
  Bytes huge;
  huge.header(uint64_t{1} << 40, 0);
  check_message(refusal(huge), {"tensor count 1099511627776 exceeds the limit of 1048576 (Limits::max_tensors)"});
}

TEST_CASE("gguf refuses unknown value types and bad bools") {
  Bytes t;
  t.str("k").u32(13).u32(0);
  check_message(refusal(meta_only(1, t)), {"metadata 'k' has unknown value type 13", "0=u8", "12=f64"});
  Bytes at;
  at.str("k").u32(9).u32(77).u64(0);
  check_message(refusal(meta_only(1, at)), {"metadata 'k' is an array of unknown value type 77"});
  Bytes b;
  b.str("flag").u32(7).u8(2);
  check_message(refusal(meta_only(1, b)), {"metadata 'flag' is a bool of value 2, expected 0 or 1"});
  Bytes ab;
  ab.str("flags").u32(9).u32(7).u64(3).u8(0).u8(1).u8(9);
  check_message(refusal(meta_only(1, ab)), {"metadata 'flags' element 2 is a bool of value 9"});
}

TEST_CASE("gguf refuses arrays nested deeper than the limit") {
  auto nested = [](int depth) {
    Bytes b;
    b.str("deep").u32(9);
    for (int d = 1; d < depth; ++d) b.u32(9).u64(1);  // an array holding one array
    b.u32(0).u64(1).u8(7);                           // the innermost: one u8
    return b;
  };
  Bytes four = meta_only(1, nested(4));  // the reader views these bytes: keep them alive
  auto f = GgufFile::from_memory(four, "ok.gguf");
  CHECK(f->meta("deep")->arrays[0].arrays[0].arrays[0].at<int>(0) == 7);
  check_message(refusal(meta_only(1, nested(5))),
                {"metadata 'deep' element 0 element 0 element 0 element 0 nests arrays 5 deep, more than the limit of 4"});
  Limits one;
  one.max_array_depth = 1;
  check_message(refusal(meta_only(1, nested(2)), one), {"nests arrays 2 deep, more than the limit of 1"});
}

TEST_CASE("gguf refuses headers that would take more memory than the cap") {
  Bytes strs;
  strs.str("many").u32(9).u32(8).u64(2000);
  for (int i = 0; i < 2000; ++i) strs.str("");
  Limits small;
  small.max_metadata_bytes = 16 * 1024;
  check_message(refusal(meta_only(1, strs), small),
                {"metadata 'many' array count would take the header index past the memory cap of 16384 bytes"});
  CHECK(GgufFile::from_memory(meta_only(1, strs), "ok.gguf")->meta("many")->strings.size() == 2000);
  Limits names;
  names.max_name_bytes = 8;
  Bytes longkey;
  longkey.kv_u32("general.architecture", 1);
  check_message(refusal(meta_only(1, longkey), names),
                {"metadata entry #0 key is 20 bytes long, more than the limit of 8 (Limits::max_name_bytes)"});
}

TEST_CASE("gguf refuses duplicate keys and tensor names") {
  Bytes dup;
  dup.kv_u32("a", 1).kv_u32("b", 2).kv_u32("a", 3);
  check_message(refusal(meta_only(3, dup)), {"bad.gguf: duplicate metadata key 'a' (entries #0 and #2)"});
  Bytes t;
  t.header(2, 0).tensor("w", {8}, 0, 0).tensor("w", {8}, 0, 32).pad_to(32).zeros(64);
  check_message(refusal(t), {"duplicate tensor name 'w' (tensors #0 and #1)"});
}

TEST_CASE("gguf error messages escape control and non-ASCII bytes of names from the file") {
  Bytes dup;
  dup.kv_u32("a\x1b[2J\xff", 1).kv_u32("a\x1b[2J\xff", 2);
  const std::string msg = refusal(meta_only(2, dup));
  check_message(msg, {"duplicate metadata key 'a\\x1b[2J\\xff'"});
  CHECK(msg.find('\x1b') == std::string::npos);
  Bytes t;
  t.header(1, 0).tensor("w\n", {8}, 0, 64).pad_to(32).zeros(32);
  check_message(refusal(t), {"tensor 'w\\x0a' data (32 bytes at offset 64) runs past the end of the file"});
}

TEST_CASE("gguf refuses bad tensor shapes") {
  check_message(refusal(one_tensor([](Bytes& b) { b.tensor("w", {}, 0, 0); }, 64)),
                {"tensor 'w' has 0 dimensions, expected 1 to 4"});
  check_message(refusal(one_tensor([](Bytes& b) { b.tensor("w", {1, 1, 1, 1, 1}, 0, 0); }, 64)),
                {"tensor 'w' has 5 dimensions, expected 1 to 4"});
  check_message(refusal(one_tensor([](Bytes& b) { b.tensor("w", {4, 0}, 0, 0); }, 64)),
                {"tensor 'w' dimension 1 is 0, expected at least 1"});
  check_message(refusal(one_tensor([](Bytes& b) { b.tensor("w", {~uint64_t{0}}, 0, 0); }, 64)),
                {"tensor 'w' dimension 0 is -1 (negative as a signed size)"});
  check_message(refusal(one_tensor([](Bytes& b) { b.tensor("w", {uint64_t{1} << 32, uint64_t{1} << 32}, 0, 0); }, 64)),
                {"tensor 'w' element count overflows 64 bits (dimension 1 is 4294967296)"});
  check_message(refusal(one_tensor([](Bytes& b) { b.tensor("w", {uint64_t{1} << 61, 2}, 0, 0); }, 64)),
                {"tensor 'w' F32 [2305843009213693952, 2] has a byte size that overflows 64 bits"});
  check_message(refusal(one_tensor([](Bytes& b) { b.tensor("w", {33, 2}, 8, 0); }, 128)),
                {"tensor 'w' row length 33 is not a multiple of the Q8_0 block size 32"});
  check_message(refusal(one_tensor([](Bytes& b) { b.tensor("w", {48}, 2, 0); }, 128)),
                {"row length 48 is not a multiple of the Q4_0 block size 32"});
}

TEST_CASE("gguf refuses unknown tensor types, naming them and the supported ones") {
  check_message(refusal(one_tensor([](Bytes& b) { b.tensor("w", {256}, 12, 0); }, 1024)),
                {"tensor 'w' has type 12 (Q4_K), which is not supported; supported: F32, F16, BF16, Q8_0, Q4_0"});
  check_message(refusal(one_tensor([](Bytes& b) { b.tensor("w", {256}, 999, 0); }, 1024)),
                {"tensor 'w' has type 999 (unknown)"});
}

TEST_CASE("gguf refuses tensor data out of place") {
  check_message(refusal(one_tensor([](Bytes& b) { b.tensor("w", {16}, 0, 0); }, 60)),
                {"tensor 'w' data (64 bytes at offset 0) runs past the end of the file: the data section has 60 bytes"});
  check_message(refusal(one_tensor([](Bytes& b) { b.tensor("w", {16}, 0, ~uint64_t{0} - 31); }, 64)),
                {"tensor 'w' data (64 bytes at offset 18446744073709551584) runs past the end"});
  check_message(refusal(one_tensor([](Bytes& b) { b.tensor("w", {4}, 0, 8); }, 64)),
                {"tensor 'w' offset 8 is not a multiple of the alignment 32"});
  Bytes overlap;
  overlap.header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {8}, 0, 32).pad_to(32).zeros(96);
  check_message(refusal(overlap), {"tensors 'a' (bytes 0 to 64) and 'b' (from byte 32) overlap in the data section"});
  Bytes nodata;
  nodata.header(1, 0).tensor("w", {4}, 0, 0);
  check_message(refusal(nodata), {"tensor data section starts at byte", "past the end of the"});
}

TEST_CASE("gguf refuses a bad general.alignment") {
  for (uint32_t a : {0u, 3u, 48u}) {
    Bytes b;
    b.kv_u32("general.alignment", a);
    check_message(refusal(meta_only(1, b)),
                  {"metadata 'general.alignment' is " + std::to_string(a) + ", expected a power of two from 1 to 2^30"});
  }
  Bytes s;
  s.kv_str("general.alignment", "32");
  check_message(refusal(meta_only(1, s)), {"metadata 'general.alignment' is string, expected an unsigned integer"});
  Bytes neg;
  neg.str("general.alignment").u32(5).i32(-32);
  check_message(refusal(meta_only(1, neg)), {"'general.alignment' is -32"});
}

TEST_CASE("gguf open names the file path in its errors") {
  test::TempDir dir;
  auto p = dir / "broken.gguf";
  Bytes b;
  b.raw("GGUF", 4).u32(7).zeros(16);
  test::write_file(p, b.vec());
  std::string msg = error_of([&] { GgufFile::open(p); });
  CHECK(msg.rfind(p.string() + ": ", 0) == 0);
  check_message(msg, {"unsupported GGUF version 7"});
  check_message(error_of([&] { GgufFile::open(dir / "absent.gguf"); }), {"absent.gguf: cannot open: No such file"});
  check_message(error_of([&] { GgufFile::open(dir.path()); }), {"not a regular file"});
  test::write_file(dir / "empty.gguf", {});
  check_message(error_of([&] { GgufFile::open(dir / "empty.gguf"); }), {"empty.gguf: file is 0 bytes"});
}

TEST_CASE("gguf survives random corruption: parses or refuses, never crashes") {
  // Corrupt the header of stories260K (its first 14 KiB: vocabulary and tensor table) and the small base file.
  auto real = GgufFile::open(test::models_dir() / "gguf/stories260K.gguf");
  std::vector<uint8_t> big(real->bytes().begin(), real->bytes().end());
  std::vector<uint8_t> small = valid_file().vec();
  std::mt19937_64 rng(testing::seed());
  INFO("SEMLINE_TEST_SEED=" << testing::seed());
  int refused = 0, parsed = 0;
  for (int round = 0; round < 600; ++round) {
    std::vector<uint8_t>& base = round % 2 ? big : small;
    std::vector<uint8_t> img = base;
    size_t span = std::min<size_t>(img.size(), 14152);
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t at = rng() % span;
      switch (rng() % 3) {
        case 0: img[at] = static_cast<uint8_t>(rng()); break;
        case 1: img[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
        default: img[at] = 0xff;
      }
    }
    try {
      GgufFile::from_memory(img, "fuzz.gguf");
      ++parsed;
    } catch (const Error& e) {
      ++refused;
      REQUIRE(std::string(e.what()).rfind("fuzz.gguf: ", 0) == 0);
    }
  }
  CHECK(refused > 0);
  CHECK(refused + parsed == 600);
}
