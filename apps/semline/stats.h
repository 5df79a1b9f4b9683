// The statistics the benches report over their repeats.
#pragma once

#include <cmath>
#include <numeric>
#include <vector>

namespace semline::app {

inline double mean(const std::vector<double>& v) {
  return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

// The sample standard deviation (n - 1); 0 below two samples.
inline double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

}  // namespace semline::app
