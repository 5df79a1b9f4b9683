#include "stations/harness.h"

#include <stdexcept>

#include <semline/codec.h>

namespace semline::stationtest {

Layer::Layer(const Setup& s, RopeType rope_type, Heads h)
    : setup(s), hp(testing::layer_hparams(rope_type, h, 8)), model(s.quantized_input), be(*s.be) {}

bool Layer::has(StageKind kind, const std::string& variant) const {
  return std::any_of(setup.entries->stages.begin(), setup.entries->stages.end(),
                     [&](const StageEntry& e) { return e.kind == kind && e.variant == variant; });
}

Rows::Rows(Backend& backend, std::vector<float> values, int64_t w) : be(&backend), host(std::move(values)), width(w) {
  buf = be->alloc(host.size() * sizeof(float));
  t = make_tensor(DType::F32, {width, rows()}, buf->host(), buf.get());
  be->copy_to_device(host.data(), t, host.size() * sizeof(float), be->stream());
}

std::vector<Vec> Rows::all_rows() const {
  std::vector<Vec> v;
  for (int64_t r = 0; r < rows(); ++r) v.push_back(row(r));
  return v;
}

std::vector<float> Rows::read() const { return read_back(*be, t); }

Vec Rows::added() const {
  const std::vector<float> now = read();
  Vec d(now.size());
  for (size_t i = 0; i < now.size(); ++i) d[i] = static_cast<double>(now[i]) - host[i];
  return d;
}

StepData rows_step(int64_t m, std::vector<int32_t> tokens) {
  StepData sd;
  sd.tokens = std::move(tokens);
  for (int32_t p = 0; p < m; ++p) sd.pos.push_back(p);
  sd.seq.assign(static_cast<size_t>(m), 0);
  return sd;
}

void forward_rows(Stage& stage, Backend& be, const Rows& x, const Rows& out, OutMode mode) {
  StepData sd = rows_step(x.rows());
  stage.forward(x.t, out.t, Step{sd.batch(), be.stream(), nullptr, mode});
}

std::vector<float> read_back(Backend& be, const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.elements()));
  if (t.dtype == DType::F32) {
    be.copy_to_host(t, v.data(), v.size() * sizeof(float), be.stream());
    be.stream().synchronize();
    return v;
  }
  if (t.dtype != DType::F16) throw std::invalid_argument("read_back: F32 or F16 tensors only");
  std::vector<uint16_t> h(v.size());
  be.copy_to_host(t, h.data(), h.size() * sizeof(uint16_t), be.stream());
  be.stream().synchronize();
  for (size_t i = 0; i < h.size(); ++i) v[i] = f16_to_f32(h[i]);
  return v;
}

Vec concat(const std::vector<Vec>& rows) {
  Vec v;
  for (const Vec& r : rows) v.insert(v.end(), r.begin(), r.end());
  return v;
}

std::unique_ptr<Stage> check_lookup(Layer& l, const Weight& table, const std::vector<int32_t>& tokens) {
  auto emb = l.build(StageKind::Embedding, "lookup", l.context("embedding", {{"tokens", "token_embd"}}));
  const int64_t m = static_cast<int64_t>(tokens.size()), n = table.n_in;
  StepData sd = rows_step(m, tokens);
  const Batch b = sd.batch();
  Rows unused(l.be, m, n), out(l.be, m, n);
  emb->forward(unused.t, out.t, Step{b, l.be.stream(), nullptr});
  const std::vector<float> got = out.read();
  for (int64_t t = 0; t < m; ++t)
    for (int64_t i = 0; i < n; ++i) REQUIRE(got[t * n + i] == static_cast<float>(table.value[tokens[t] * n + i]));
  return emb;
}

}  // namespace semline::stationtest
