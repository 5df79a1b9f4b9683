// The safetensors reader: a valid image is read entry by entry, and every hostile header gives
// one clear semline::Error naming the file and what is wrong.
#include <optional>

#include "core/model/safetensors.h"
#include "model_test_util.h"

using namespace semline;
using namespace semline::safetensors;
using semline::test::check_message;
using semline::test::error_of;

namespace {

// An image: the header length, the JSON header as given, then `data` bytes counting up.
std::vector<uint8_t> image(const std::string& header, size_t data, std::optional<uint64_t> length = {}) {
  test::Bytes b;
  b.u64(length.value_or(header.size())).raw(header.data(), header.size());
  for (size_t i = 0; i < data; ++i) b.u8(static_cast<uint8_t>(i));
  return b.vec();
}

std::string refusal(const std::vector<uint8_t>& b, const Limits& limits = {}) {
  return error_of([&] { File::from_memory(b, "bad.safetensors", limits); });
}

const std::string kValid =
    R"({"__metadata__": {"format": "pt"},
        "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [8, 32]},
        "b": {"dtype": "F16", "shape": [4], "data_offsets": [0, 8]},
        "e": {"dtype": "BF16", "shape": [0, 5], "data_offsets": [32, 32]}})";

}  // namespace

TEST_CASE("safetensors: entries, dtypes, shapes and metadata of a valid image, in data order") {
  const auto b = image(kValid, 32);
  auto f = File::from_memory(b, "ok.safetensors");
  REQUIRE(f->entries().size() == 3);
  CHECK(f->entries()[0].name == "b");
  CHECK(f->entries()[0].dtype == DType::F16);
  CHECK(f->entries()[1].name == "w");
  CHECK(f->entries()[1].shape == std::vector<int64_t>{2, 3});
  CHECK(f->entries()[1].elements() == 6);
  CHECK(f->entries()[1].data == b.data() + f->data_offset() + 8);
  CHECK(f->entries()[2].elements() == 0);
  CHECK(f->data_offset() == 8 + kValid.size());
  CHECK(f->metadata().at("format") == "pt");
}

TEST_CASE("safetensors: truncated files and header lengths past the end or the limit are refused") {
  check_message(refusal({1, 2, 3}), {"bad.safetensors", "3 bytes, shorter than the 8-byte"});
  check_message(refusal(image(kValid, 32, kValid.size() + 33)), {"header length", "runs past the end"});
  check_message(refusal(image(kValid, 32, uint64_t{1} << 62)), {"above the 100000000-byte limit"});
  Limits small;
  small.max_header_bytes = 16;
  check_message(refusal(image(kValid, 32), small), {"above the 16-byte limit"});
  // The data section cut short: the last tensor's range runs past it.
  check_message(refusal(image(kValid, 31)), {"run past the 31-byte data section"});
}

TEST_CASE("safetensors: bad JSON, malformed entries, overflowing shapes and bad offsets are refused with the entry named") {
  check_message(refusal(image("{\"w\": {", 0)), {"header is not valid JSON"});
  check_message(refusal(image("[1, 2]", 0)), {"header is JSON array, expected an object"});
  check_message(refusal(image(R"({"w": 3})", 0)), {"tensor 'w' must be an object"});
  // One tensor 'w' with these fields, over this many data bytes, and a piece of the refusal.
  const struct {
    const char* fields;
    size_t data;
    const char* message;
  } entries[] = {
      {R"("dtype": "F32", "shape": [1])", 4, "tensor 'w' has no 'data_offsets'"},
      {R"("dtype": "I64", "shape": [1], "data_offsets": [0, 8])", 8, "tensor 'w' has dtype I64; semline reads F32, F16 and BF16"},
      {R"("dtype": "F32", "shape": [-1], "data_offsets": [0, 4])", 4, "shape [-1] must hold non-negative integers"},
      {R"("dtype": "F32", "shape": [1, 1, 1, 1, 1], "data_offsets": [0, 4])", 4, "5 dimensions; semline tensors have at most 4"},
      {R"("dtype": "F32", "shape": [1], "data_offsets": [0])", 4, "data_offsets must be [begin, end]"},
      {R"("dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4])", 4, "tensor 'w': shape [4294967296,4294967296] has more elements"},
      {R"("dtype": "F32", "shape": [2147483648, 2147483648], "data_offsets": [0, 4])", 4, "more elements than any file can hold"},
      {R"("dtype": "F32", "shape": [1], "data_offsets": [8, 4])", 8, "data_offsets [8, 4] are inverted"},
      {R"("dtype": "F32", "shape": [1], "data_offsets": [18446744073709551612, 18446744073709551615])", 8, "run past the 8-byte data section"},
      {R"("dtype": "F32", "shape": [3], "data_offsets": [0, 8])", 8, "hold 8 bytes, but F32 [3] takes 12"},
  };
  for (const auto& e : entries)
    check_message(refusal(image(std::string(R"({"w": {)") + e.fields + "}}", e.data)), {e.message});
  check_message(refusal(image(R"({"__metadata__": {"a": 1}})", 0)), {"__metadata__ value 'a' must be a string"});
}

TEST_CASE("safetensors: overlapping offsets and too many tensors are refused") {
  check_message(refusal(image(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                              12)),
                {"tensors 'a' [0, 8] and 'b' [4, 12] overlap"});
  Limits few;
  few.max_tensors = 1;
  check_message(refusal(image(kValid, 32), few), {"header lists 4 entries, more than the limit of 1 tensors"});
}

TEST_CASE("safetensors: a file on disk is mapped, a missing one is named") {
  test::TempDir dir;
  test::write_file(dir / "m.safetensors", image(kValid, 32));
  CHECK(File::open(dir / "m.safetensors")->entries().size() == 3);
  check_message(error_of([&] { File::open(dir / "absent.safetensors"); }), {"absent.safetensors: cannot open"});
}
