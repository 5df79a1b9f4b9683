// How the tests compare a result with its float64 reference.
#pragma once

#include <cmath>
#include <cstddef>
#include <stdexcept>

namespace semline::testing {

// The largest |a - b| over the largest |b|: the error relative to the result's scale (the plain
// largest error when b is all zeros). A NaN in a gives infinity: std::max compares false with
// NaN and would drop it, and a broken result would pass.
template <class A, class B>
double rel_err(const A& a, const B& b) {
  if (a.size() != b.size()) throw std::invalid_argument("rel_err: the result and its reference differ in size");
  double err = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    const double x = static_cast<double>(a[i]), y = static_cast<double>(b[i]);
    if (std::isnan(x)) return INFINITY;
    err = std::max(err, std::fabs(x - y));
    scale = std::max(scale, std::fabs(y));
  }
  return scale > 0 ? err / scale : err;
}

// The largest |a - b| over the largest magnitude m (for a sum, the sum of its terms' |values|):
// float rounding of a sum scales with its terms, not with the result, and a result that
// cancels to near zero would fail a bound relative to itself. NaN gives infinity as above.
template <class A, class B, class M>
double rel_err(const A& a, const B& b, const M& m) {
  if (a.size() != b.size() || m.size() != b.size())
    throw std::invalid_argument("rel_err: the result, its reference and their magnitudes differ in size");
  double err = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    const double x = static_cast<double>(a[i]);
    if (std::isnan(x)) return INFINITY;
    err = std::max(err, std::fabs(x - static_cast<double>(b[i])));
    scale = std::max(scale, std::fabs(static_cast<double>(m[i])));
  }
  return scale > 0 ? err / scale : err;
}

}  // namespace semline::testing
