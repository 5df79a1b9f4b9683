// norm/rms and norm/layer on every backend, with a learned scale (and shift), widths of one and
// of many reduction chunks, against float64 (1e-5: float arithmetic only).
#include <catch2/catch.hpp>

#include <cmath>

#include "stations/harness.h"

using namespace semline;
using namespace semline::stationtest;

TEMPLATE_TEST_CASE("norm: rms with a learned scale", "[stations][norm]", SEMLINE_STATION_TARGETS) {
  FOR_EACH_SETUP(setup)
  for (DType dt : {DType::F32, DType::F16})
    for (int64_t width : {64, 1000}) {
      INFO(setup.name << ", " << dtype_name(dt) << ", width " << width);
      Layer l(setup);
      l.hp.n_embd = width;
      const Weight& w = l.model.add("norm", dt, width, 1, 1.0f);
      auto norm = l.build(StageKind::Norm, "rms", l.context("attn_norm", {{"weight", "norm"}}));
      Rows x(l.be, 3, width, 3.0f), out(l.be, 3, width);
      forward_rows(*norm, l.be, x, out);
      const std::vector<float> got = out.read();
      Vec want;
      for (int64_t t = 0; t < 3; ++t) {
        const Vec y = testing::rmsnorm(x.row(t), w, l.hp.norm_eps);
        want.insert(want.end(), y.begin(), y.end());
      }
      CHECK(rel_err(got, want) <= 1e-5);
    }
}

TEMPLATE_TEST_CASE("norm: layer with a learned scale and optional shift, a mean far from the spread",
                   "[stations][norm][gpt2]", SEMLINE_STATION_TARGETS) {
  FOR_EACH_SETUP(setup)
  for (DType dt : {DType::F32, DType::F16})
    for (int64_t width : {64, 1000})
      for (bool shift : {true, false}) {
        INFO(setup.name << ", " << dtype_name(dt) << ", width " << width << (shift ? ", with bias" : ", no bias"));
        Layer l(setup);
        l.hp.n_embd = width;
        const Weight& w = l.model.add("norm", dt, width, 1, 1.0f);
        const Weight& bias = l.model.add("norm_b", dt, width, 1, 1.0f);
        std::vector<std::pair<std::string, std::string>> tensors = {{"weight", "norm"}};
        if (shift) tensors.emplace_back("bias", "norm_b");
        auto norm = l.build(StageKind::Norm, "layer", l.context("attn_norm", tensors));
        // A mean 50 times the spread: E[x^2] - mean^2 would lose three digits of the variance.
        std::vector<float> xv = random_floats(3 * width);
        for (float& v : xv) v += 50.0f;
        Rows x(l.be, xv, width), out(l.be, 3, width);
        forward_rows(*norm, l.be, x, out);
        Vec want;
        for (int64_t t = 0; t < 3; ++t) {
          const Vec r = x.row(t);
          double mean = 0, var = 0;
          for (double v : r) mean += v / static_cast<double>(width);
          for (double v : r) var += (v - mean) * (v - mean) / static_cast<double>(width);
          for (int64_t i = 0; i < width; ++i)
            want.push_back((r[i] - mean) / std::sqrt(var + l.hp.norm_eps) * w.value[i] + (shift ? bias.value[i] : 0.0));
        }
        CHECK(rel_err(out.read(), want) <= 1e-5);
      }
}

TEMPLATE_TEST_CASE("norm/rms refuses a shift: it is a LayerNorm", "[stations][norm][errors]", SEMLINE_STATION_TARGETS) {
  FOR_EACH_SETUP(setup) {
    INFO(setup.name);
    Layer l(setup);
    l.model.add("norm", DType::F32, 64, 1, 1.0f);
    l.model.add("norm_b", DType::F32, 64, 1, 1.0f);
    const StageContext ctx = l.context("attn_norm", {{"weight", "norm"}, {"bias", "norm_b"}});
    const auto why = l.entry(StageKind::Norm, "rms").supports(ctx);
    REQUIRE(why.size() == 1);
    CHECK_THAT(why[0], Catch::Contains("it is a LayerNorm") && Catch::Contains("use norm/layer"));
    CHECK(l.entry(StageKind::Norm, "layer").supports(ctx).empty());
  }
}

TEMPLATE_TEST_CASE("norm: as a post norm it adds its rows into the residual stream (Gemma 2's sandwich)",
                   "[stations][norm][gemma2]", SEMLINE_STATION_TARGETS) {
  FOR_EACH_SETUP(setup)
  for (const char* variant : {"rms", "layer"}) {
    INFO(setup.name << ", " << variant);
    Layer l(setup);
    const Weight& w = l.model.add("norm", DType::F32, 64, 1, 1.0f);
    auto norm = l.build(StageKind::Norm, variant, l.context("post_attention_norm", {{"weight", "norm"}}));
    Rows x(l.be, 3, 64, 3.0f), h(l.be, 3, 64);
    forward_rows(*norm, l.be, x, h, OutMode::Add);
    Vec want;
    for (int64_t t = 0; t < 3; ++t) {
      const Vec r = x.row(t);
      Vec y;
      if (std::string(variant) == "rms") {
        y = testing::rmsnorm(r, w, l.hp.norm_eps);
      } else {
        double mean = 0, var = 0;
        for (double v : r) mean += v / 64.0;
        for (double v : r) var += (v - mean) * (v - mean) / 64.0;
        for (int64_t i = 0; i < 64; ++i) y.push_back((r[i] - mean) / std::sqrt(var + l.hp.norm_eps) * w.value[i]);
      }
      want.insert(want.end(), y.begin(), y.end());
    }
    CHECK(rel_err(h.added(), want) <= 1e-5);
    // Written (the natural mode) the rows replace what was there.
    Rows out(l.be, 3, 64);
    forward_rows(*norm, l.be, x, out);
    CHECK(rel_err(out.read(), want) <= 1e-5);
  }
}
