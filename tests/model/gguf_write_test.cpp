// GGUF writer: every metadata type and tensor dtype written, read back and compared exactly.
#include <cstring>

#include "core/model/gguf.h"
#include "core/model/gguf_writer.h"
#include "model_test_util.h"

using namespace semline;
using namespace semline::gguf;
using semline::test::check_message;
using semline::test::error_of;

namespace {

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 8));
  return v;
}

template <class T>
std::vector<T> read_array(const MetaValue& v) {
  std::vector<T> out;
  for (uint64_t i = 0; i < v.count; ++i) out.push_back(v.at<T>(i));
  return out;
}

}  // namespace

TEST_CASE("gguf writer round-trips every metadata type") {
  test::TempDir dir;
  GgufWriter w;
  w.add_u8("u8", 250);
  w.add_i8("i8", -120);
  w.add_u16("u16", 65000);
  w.add_i16("i16", -32000);
  w.add_u32("u32", 4000000000u);
  w.add_i32("i32", -2000000000);
  w.add_u64("u64", ~uint64_t{0} - 1);
  w.add_i64("i64", INT64_MIN + 3);
  w.add_f32("f32", 1.5e-5f);
  w.add_f64("f64", -2.25e300);
  w.add_bool("yes", true);
  w.add_bool("no", false);
  w.add_string("str", std::string("h\xc3\xa9llo\0x", 8));
  w.add_string("empty", "");
  w.add_array<uint8_t>("a.u8", std::vector<uint8_t>{1, 2, 255});
  w.add_array<int8_t>("a.i8", std::vector<int8_t>{-1, 2});
  w.add_array<uint16_t>("a.u16", std::vector<uint16_t>{65535});
  w.add_array<int16_t>("a.i16", std::vector<int16_t>{-5, 5});
  w.add_array<uint32_t>("a.u32", std::vector<uint32_t>{7, 8, 9});
  w.add_array<int32_t>("a.i32", std::vector<int32_t>{-7});
  w.add_array<uint64_t>("a.u64", std::vector<uint64_t>{~uint64_t{0}});
  w.add_array<int64_t>("a.i64", std::vector<int64_t>{INT64_MIN});
  w.add_array<float>("a.f32", std::vector<float>{0.5f, -0.0f});
  w.add_array<double>("a.f64", std::vector<double>{1e-300});
  bool flags[] = {true, false, true};
  w.add_array<bool>("a.bool", std::span<const bool>(flags));
  w.add_array<uint32_t>("a.none", std::vector<uint32_t>{});
  std::vector<std::string> strs{"<s>", "", "\xe2\x96\x81the"};
  w.add_string_array("a.str", strs);
  // An array of arrays, built as a reader would return it.
  uint8_t inner0[] = {1, 2}, inner1[] = {3};
  MetaValue a0, a1, nested;
  a0.type = a1.type = MetaType::ARRAY;
  a0.elem = a1.elem = MetaType::U8;
  a0.count = 2;
  a0.raw = inner0;
  a1.count = 1;
  a1.raw = inner1;
  nested.type = MetaType::ARRAY;
  nested.elem = MetaType::ARRAY;
  nested.count = 2;
  nested.arrays = {a0, a1};
  w.add_meta("a.nested", nested);
  CHECK(w.has_meta("u8"));
  CHECK_FALSE(w.has_meta("u9"));
  w.write(dir / "meta.gguf");

  auto f = GgufFile::open(dir / "meta.gguf");
  CHECK(f->version() == 3);
  CHECK(f->tensors().empty());
  REQUIRE(f->metadata().size() == 28);
  CHECK(f->metadata()[0].first == "u8");
  CHECK(f->metadata()[27].first == "a.nested");
  CHECK(f->meta("u8")->type == MetaType::U8);
  CHECK(f->get_u64("u8") == 250);
  CHECK(f->meta("i8")->type == MetaType::I8);
  CHECK(f->get_i64("i8") == -120);
  CHECK(f->get_u64("u16") == 65000);
  CHECK(f->get_i64("i16") == -32000);
  CHECK(f->get_u64("u32") == 4000000000u);
  CHECK(f->get_i64("i32") == -2000000000);
  CHECK(f->get_u64("u64") == ~uint64_t{0} - 1);
  CHECK(f->get_i64("i64") == INT64_MIN + 3);
  CHECK(f->meta("f32")->type == MetaType::F32);
  CHECK(f->get_f64("f32") == static_cast<double>(1.5e-5f));
  CHECK(f->get_f64("f64") == -2.25e300);
  CHECK(f->get_bool("yes"));
  CHECK_FALSE(f->get_bool("no"));
  CHECK(f->get_string("str") == std::string_view("h\xc3\xa9llo\0x", 8));
  CHECK(f->get_string("empty").empty());
  CHECK(read_array<int>(*f->meta("a.u8")) == std::vector<int>{1, 2, 255});
  CHECK(read_array<int>(*f->meta("a.i8")) == std::vector<int>{-1, 2});
  CHECK(read_array<int>(*f->meta("a.u16")) == std::vector<int>{65535});
  CHECK(read_array<int>(*f->meta("a.i16")) == std::vector<int>{-5, 5});
  CHECK(read_array<uint32_t>(*f->meta("a.u32")) == std::vector<uint32_t>{7, 8, 9});
  CHECK(read_array<int32_t>(*f->meta("a.i32")) == std::vector<int32_t>{-7});
  CHECK(read_array<uint64_t>(*f->meta("a.u64")) == std::vector<uint64_t>{~uint64_t{0}});
  CHECK(read_array<int64_t>(*f->meta("a.i64")) == std::vector<int64_t>{INT64_MIN});
  CHECK(read_array<float>(*f->meta("a.f32")) == std::vector<float>{0.5f, -0.0f});
  CHECK(std::signbit(f->meta("a.f32")->at<float>(1)));
  CHECK(read_array<double>(*f->meta("a.f64")) == std::vector<double>{1e-300});
  CHECK(f->meta("a.bool")->elem == MetaType::BOOL);
  CHECK(read_array<int>(*f->meta("a.bool")) == std::vector<int>{1, 0, 1});
  CHECK(f->meta("a.none")->elem == MetaType::U32);
  CHECK(f->meta("a.none")->count == 0);
  const MetaValue* s = f->meta("a.str");
  REQUIRE(s->strings.size() == 3);
  CHECK(s->strings[0] == "<s>");
  CHECK(s->strings[1].empty());
  CHECK(s->strings[2] == "\xe2\x96\x81the");
  const MetaValue* n = f->meta("a.nested");
  REQUIRE(n->arrays.size() == 2);
  CHECK(read_array<int>(n->arrays[0]) == std::vector<int>{1, 2});
  CHECK(read_array<int>(n->arrays[1]) == std::vector<int>{3});
}

TEST_CASE("gguf writer round-trips tensors of every dtype, aligned, with progress") {
  test::TempDir dir;
  struct Case {
    const char* name;
    DType type;
    std::vector<int64_t> shape;
    size_t bytes;
  };
  std::vector<Case> cases = {
      {"f32", DType::F32, {3, 5}, 60},
      {"f16", DType::F16, {7}, 14},
      {"bf16", DType::BF16, {2, 3, 4}, 48},
      {"q8", DType::Q8_0, {64, 3}, 6 * 34},
      {"q4", DType::Q4_0, {32, 2, 1, 2}, 4 * 18},
  };
  for (uint32_t align : {32u, 64u, 1u}) {
    GgufWriter w;
    if (align != 32) w.add_u32("general.alignment", align);
    w.add_string("general.architecture", "test");
    std::vector<std::vector<uint8_t>> data;
    for (size_t i = 0; i < cases.size(); ++i) {
      data.push_back(pattern(cases[i].bytes, static_cast<uint8_t>(i * 40 + align)));
      if (i % 2) {
        w.add_tensor(cases[i].name, cases[i].type, cases[i].shape, std::span<const uint8_t>(data.back()));
      } else {
        std::vector<uint8_t> copy = data.back();
        w.add_tensor(cases[i].name, cases[i].type, cases[i].shape, [copy](std::span<uint8_t> dst) {
          REQUIRE(dst.size() == copy.size());
          std::memcpy(dst.data(), copy.data(), copy.size());
        });
      }
    }
    CHECK(w.alignment() == align);
    CHECK(w.tensor_bytes() == 60 + 14 + 48 + 204 + 72);
    std::vector<std::pair<uint64_t, uint64_t>> calls;
    w.write(dir / "t.gguf", [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); });
    REQUIRE(calls.size() == cases.size() + 1);
    CHECK(calls.front().first == 0);
    CHECK(calls.back().first == calls.back().second);
    CHECK(calls.back().second == w.tensor_bytes());
    for (size_t i = 1; i < calls.size(); ++i) CHECK(calls[i].first > calls[i - 1].first);

    auto f = GgufFile::open(dir / "t.gguf");
    INFO("alignment " << align);
    CHECK(f->alignment() == align);
    CHECK(f->data_offset() % align == 0);
    REQUIRE(f->tensors().size() == cases.size());
    for (size_t i = 0; i < cases.size(); ++i) {
      const TensorInfo& t = f->tensors()[i];
      CHECK(t.name == cases[i].name);
      CHECK(t.view.dtype == cases[i].type);
      CHECK(t.view.ndim == static_cast<int>(cases[i].shape.size()));
      for (size_t d = 0; d < cases[i].shape.size(); ++d) CHECK(t.view.ne[d] == cases[i].shape[d]);
      CHECK(t.offset % align == 0);
      CHECK(t.view.contiguous());
      REQUIRE(t.bytes == cases[i].bytes);
      CHECK(std::memcmp(t.view.host, data[i].data(), t.bytes) == 0);
    }
  }
}

TEST_CASE("gguf writer copies stories260K byte for byte") {
  test::TempDir dir;
  auto src = GgufFile::open(test::models_dir() / "gguf/stories260K.gguf");
  GgufWriter w;
  for (const auto& [key, value] : src->metadata()) w.add_meta(key, value);
  for (const TensorInfo& t : src->tensors()) {
    std::vector<int64_t> shape(t.view.ne, t.view.ne + t.view.ndim);
    w.add_tensor(t.name, t.view.dtype, shape, std::span<const uint8_t>(static_cast<const uint8_t*>(t.view.host), t.bytes));
  }
  w.write(dir / "copy.gguf");
  auto copy = test::read_file(dir / "copy.gguf");
  REQUIRE(copy.size() == src->file_size());
  CHECK(std::memcmp(copy.data(), src->bytes().data(), copy.size()) == 0);
  CHECK_FALSE(std::filesystem::exists(dir / "copy.gguf.tmp"));
}

TEST_CASE("gguf writer refuses bad input clearly") {
  test::TempDir dir;
  GgufWriter w;
  w.add_u32("a", 1);
  check_message(error_of([&] { w.add_string("a", "x"); }), {"GGUF writer: duplicate metadata key 'a'"});
  check_message(error_of([&] { w.add_u32("general.alignment", 48); }),
                {"general.alignment must be an unsigned power of two up to 2^30, got u32 48"});
  check_message(error_of([&] { w.add_i32("general.alignment", 32); }), {"got i32"});
  CHECK(w.alignment() == 32);
  std::vector<uint8_t> bytes(16);
  w.add_tensor("t", DType::F32, {4}, std::span<const uint8_t>(bytes));
  check_message(error_of([&] { w.add_tensor("t", DType::F32, {4}, std::span<const uint8_t>(bytes)); }),
                {"duplicate tensor name 't'"});
  check_message(error_of([&] { w.add_tensor("u", DType::F32, {8}, std::span<const uint8_t>(bytes)); }),
                {"tensor 'u' is given 16 bytes but F32 8 takes 32"});
  check_message(error_of([&] { w.add_tensor("u", DType::Q8_0, {16}, std::span<const uint8_t>(bytes)); }),
                {"tensor 'u' row length 16 is not a multiple of the Q8_0 block size 32"});
  check_message(error_of([&] { w.add_tensor("u", DType::F32, {}, std::span<const uint8_t>(bytes)); }),
                {"tensor 'u' has 0 dimensions, expected 1 to 4"});
  check_message(error_of([&] { w.add_tensor("u", DType::F32, {4, 0}, std::span<const uint8_t>(bytes)); }),
                {"tensor 'u' dimension 1 is 0"});
  check_message(error_of([&] { w.add_tensor("u", static_cast<DType>(12), {4}, std::span<const uint8_t>(bytes)); }),
                {"tensor 'u' has unknown dtype 12"});
  check_message(error_of([&] { w.write(dir / "no/such/dir/x.gguf"); }), {"x.gguf.tmp: cannot create"});
  // A failing fill leaves no file behind.
  w.add_tensor("boom", DType::F32, {4}, [](std::span<uint8_t>) { throw Error("fill failed"); });
  check_message(error_of([&] { w.write(dir / "x.gguf"); }), {"fill failed"});
  CHECK(std::filesystem::is_empty(dir.path()));
}
