// Quantising stories260K: which tensors change, metadata, and the codec's error bound per block.
#include <cmath>
#include <cstring>

#include "core/model/gguf.h"
#include "core/model/quantize.h"
#include "core/model/synth.h"
#include "model_test_util.h"
#include "semline/codec.h"

using namespace semline;
using namespace semline::gguf;
using semline::test::check_message;
using semline::test::error_of;

namespace {

std::filesystem::path stories() { return test::models_dir() / "gguf/stories260K.gguf"; }

bool quantised_in_stories(const std::string& name) {
  // 2-D with rows of 64 floats: every matrix except ffn_down (rows of 172).
  return name.find("norm") == std::string::npos && name.find("ffn_down") == std::string::npos;
}

// Largest error of any element over that element's block bound.
double worst_error_ratio(const Tensor& src, const Tensor& q) {
  double worst = 0;
  std::vector<float> x(static_cast<size_t>(src.ne[0])), y(x.size());
  for (int64_t r = 0; r < src.rows(); ++r) {
    dequantize_row(src.dtype, static_cast<const uint8_t*>(src.host) + r * src.nb[1], x.data(), src.ne[0]);
    dequantize_row(q.dtype, static_cast<const uint8_t*>(q.host) + r * q.nb[1], y.data(), q.ne[0]);
    for (int64_t b = 0; b < src.ne[0]; b += 32) {
      float amax = 0;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b + i]));
      // Q8_0: half a step of amax/127, plus the f16 rounding of the scale times up to 127 steps.
      // Q4_0: one step of amax/8 (the clamp at +8 costs a whole step), plus the scale's rounding.
      double bound = q.dtype == DType::Q8_0 ? amax / 127 * (0.5 + 127.0 / 2048) : amax / 8 * (1 + 8.0 / 2048);
      for (int i = 0; i < 32; ++i) {
        double err = std::fabs(x[b + i] - y[b + i]);
        if (err > 0) worst = std::max(worst, bound > 0 ? err / bound : 1e9);
      }
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("quantize stories260K to Q8_0 and Q4_0 within the codec's error bound") {
  test::TempDir dir;
  auto src = GgufFile::open(stories());
  for (DType target : {DType::Q8_0, DType::Q4_0}) {
    INFO(dtype_name(target));
    std::vector<uint64_t> done;
    quantize_gguf(stories(), dir / "q.gguf", target, [&](uint64_t d, uint64_t) { done.push_back(d); });
    CHECK(done.size() == src->tensors().size() + 1);
    auto q = GgufFile::open(dir / "q.gguf");
    CHECK(q->file_size() < src->file_size() / 2);  // ffn_down stays F32
    REQUIRE(q->metadata().size() == src->metadata().size() + 2);
    for (size_t i = 0; i < src->metadata().size(); ++i) CHECK(q->metadata()[i].first == src->metadata()[i].first);
    CHECK(q->get_u64("general.file_type") == (target == DType::Q8_0 ? 7u : 2u));
    CHECK(q->get_u64("general.quantization_version") == 2);
    CHECK(q->meta("tokenizer.ggml.tokens")->strings == src->meta("tokenizer.ggml.tokens")->strings);

    REQUIRE(q->tensors().size() == src->tensors().size());
    int converted = 0;
    for (size_t i = 0; i < src->tensors().size(); ++i) {
      const TensorInfo& a = src->tensors()[i];
      const TensorInfo& b = q->tensors()[i];
      INFO(a.name);
      REQUIRE(a.name == b.name);
      for (int d = 0; d < 4; ++d) CHECK(a.view.ne[d] == b.view.ne[d]);
      if (quantised_in_stories(a.name)) {
        ++converted;
        CHECK(b.view.dtype == target);
        CHECK(quantize_choice(a.name, a.view, target) == target);
        double ratio = worst_error_ratio(a.view, b.view);
        CHECK(ratio <= 1.0);
        CHECK(ratio > 0.05);  // the values really went through the codec
      } else {
        CHECK(b.view.dtype == DType::F32);
        REQUIRE(b.bytes == a.bytes);
        CHECK(std::memcmp(a.view.host, b.view.host, a.bytes) == 0);
      }
    }
    CHECK(converted == 2 + 5 * 6);
  }
}

TEST_CASE("quantize to F16 rounds each weight to the nearest half") {
  test::TempDir dir;
  quantize_gguf(stories(), dir / "h.gguf", DType::F16);
  auto src = GgufFile::open(stories());
  auto h = GgufFile::open(dir / "h.gguf");
  CHECK(h->get_u64("general.file_type") == 1);
  CHECK(h->meta("general.quantization_version") == nullptr);
  const Tensor* a = src->weight("blk.0.ffn_down.weight");
  const Tensor* b = h->weight("blk.0.ffn_down.weight");
  REQUIRE(b->dtype == DType::F16);  // F16 has no blocks, so rows of 172 convert too
  for (int64_t i = 0; i < a->elements(); ++i) {
    uint16_t v;
    std::memcpy(&v, static_cast<const uint8_t*>(b->host) + 2 * i, 2);
    REQUIRE(v == f32_to_f16(a->data<float>()[i]));
  }
  CHECK(h->weight("output_norm.weight")->dtype == DType::F32);
}

TEST_CASE("quantize keeps general.file_type in place and leaves quantised tensors alone") {
  test::TempDir dir;
  SynthSpec spec = synth_preset("tiny");
  synth_write(spec, dir / "f32.gguf");
  quantize_gguf(dir / "f32.gguf", dir / "q8.gguf", DType::Q8_0);
  auto src = GgufFile::open(dir / "f32.gguf");
  auto q8 = GgufFile::open(dir / "q8.gguf");
  REQUIRE(q8->metadata().size() == src->metadata().size() + 1);  // + quantization_version
  CHECK(q8->metadata()[2].first == "general.file_type");
  CHECK(q8->get_u64("general.file_type") == 7);
  CHECK(q8->weight("blk.0.ffn_down.weight")->dtype == DType::Q8_0);  // rows of 192

  quantize_gguf(dir / "q8.gguf", dir / "q4.gguf", DType::Q4_0);
  auto q4 = GgufFile::open(dir / "q4.gguf");
  CHECK(q4->metadata().size() == q8->metadata().size());
  CHECK(q4->get_u64("general.file_type") == 2);
  test::check_same_tensors(*q4, *q8);
}

TEST_CASE("quantize refuses unsupported targets and unreadable input") {
  test::TempDir dir;
  const struct {
    std::filesystem::path source;
    DType target;
    const char* message;
  } refusals[] = {{stories(), DType::F32, "quantize: target F32 is not supported; choose Q8_0, Q4_0, F16 or BF16"},
                  {dir / "absent.gguf", DType::Q8_0, "absent.gguf: cannot open"}};
  for (const auto& r : refusals)
    check_message(error_of([&] { quantize_gguf(r.source, dir / "x.gguf", r.target); }), {r.message});
  CHECK_FALSE(std::filesystem::exists(dir / "x.gguf"));
}

TEST_CASE("quantize re-encodes Mixtral's expert stacks row by row and keeps the router in float") {
  test::TempDir dir;
  SynthSpec spec = synth_preset("mixtral-tiny");
  spec.layers = 1;
  synth_write(spec, dir / "mix.gguf");
  quantize_gguf(dir / "mix.gguf", dir / "mix-q8.gguf", DType::Q8_0);
  auto src = GgufFile::open(dir / "mix.gguf");
  auto q = GgufFile::open(dir / "mix-q8.gguf");
  for (const char* name : {"blk.0.ffn_gate_exps.weight", "blk.0.ffn_up_exps.weight", "blk.0.ffn_down_exps.weight"}) {
    INFO(name);
    const Tensor& a = *src->weight(name);
    const Tensor& b = *q->weight(name);
    CHECK(b.dtype == DType::Q8_0);
    CHECK(b.ndim == 3);
    for (int d = 0; d < 4; ++d) CHECK(a.ne[d] == b.ne[d]);
    const double ratio = worst_error_ratio(a, b);  // every row of every expert, against its block bound
    CHECK(ratio <= 1.0);
    CHECK(ratio > 0.05);
  }
  const Tensor& router = *q->weight("blk.0.ffn_gate_inp.weight");
  CHECK(router.dtype == DType::F32);
  CHECK(std::memcmp(router.host, src->weight("blk.0.ffn_gate_inp.weight")->host, 256 * 8 * 4) == 0);
  CHECK(quantize_choice("blk.0.ffn_gate_inp.weight", router, DType::Q8_0) == DType::F32);
}
