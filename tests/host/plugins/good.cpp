// A well-formed plugin: a weightless RMS norm and a sampler selecting the lowest token id.
#include <semline/plugin.h>

#include <cmath>

#include "select.h"

namespace {

// y = x / sqrt(mean(x^2) + eps), row by row, on host-visible F32 rows of n_embd values.
class UnitRms final : public semline::Stage {
 public:
  UnitRms(int64_t n_embd, double eps) : n_(n_embd), eps_(eps) {}

  void forward(const semline::Tensor& in, const semline::Tensor& out, const semline::Step& step) override {
    if (!in.host || !out.host || in.ne[0] != n_ || out.ne[0] != n_)
      throw semline::Error("unit_rms needs host F32 rows of " + std::to_string(n_) + " values");
    for (int32_t r = 0; r < step.batch.n_tokens; ++r) {
      const float* x = in.data<float>() + r * n_;
      float* y = out.data<float>() + r * n_;
      double ss = 0;
      for (int64_t i = 0; i < n_; ++i) ss += double(x[i]) * x[i];
      const double scale = 1.0 / std::sqrt(ss / double(n_) + eps_);
      for (int64_t i = 0; i < n_; ++i) y[i] = float(x[i] * scale);
    }
  }
  semline::StageCost cost(const semline::Batch& b) const override {
    return {3.0 * double(n_) * b.n_tokens, 8.0 * double(n_) * b.n_tokens};
  }

 private:
  int64_t n_;
  double eps_;
};

void register_all(semline::Registry& r) {
  r.add_stage({
      .kind = semline::StageKind::Norm, .variant = "unit_rms", .backend = "cpu",
      .description = "RMS norm without a weight (test fixture)",
      .params = {{"eps", semline::ParamType::Float, 1e-5, "added to the mean square", 0.0, 1.0, {}}},
      .rank = 3,
      .make_stage = [](const semline::StageContext& ctx) -> std::unique_ptr<semline::Stage> {
        if (!ctx.hp) throw semline::Error("unit_rms needs the model's hyper-parameters");
        return std::make_unique<UnitRms>(ctx.hp->n_embd, ctx.params.get_float("eps"));
      },
  });
  r.add_stage(test_plugins::select_entry<test_plugins::LowerId>("lowest_id", "selects the lowest token id"));
  r.log(semline::LogLevel::Info, "registered 2 entries");
}

}  // namespace

SEMLINE_PLUGIN("test-good", "1.2.3", "Well-formed test plugin", register_all)
