#version 450
// s = gelu(s) in place over n contiguous values: GPT-2's activation, exact (TANH = 0) or its tanh
// approximation (TANH = 1), written as the cpu kernels write them.
//
// Exact: gelu(x) = x Phi(x) = max(x, 0) - |x| erfc(|x| / sqrt2) / 2, which keeps its relative
// accuracy in the negative tail (no 1 + erf(x) cancellation). GLSL has no erf; erfc(a), a >= 0,
// is Numerical Recipes' erfcc, t exp(-a^2 + P(t)) with t = 1 / (1 + a/2) and P its 9th-degree
// Chebyshev fit: evaluated in float64 its error is below 8.4e-8 absolute and 1.1e-7 relative
// for every a >= 0 (the largest absolute one near a = 0.04). a = |x| / sqrt2 is folded into the
// constants and -a^2 + P is one fma, so the exponent is rounded once.
// Tanh: 0.5 x (1 + tanh(z)), z = sqrt(2/pi) (x + 0.044715 x^3), as x / (1 + exp(-2z)): the same
// function without the cancellation of 1 + tanh(z) for negative z.
#include "extensions.glsl"
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint TANH = 0;

layout(std430, binding = 0) buffer S { float s[]; };

layout(push_constant) uniform Push { uint off, n; } p;

float gelu_erf(float x) {
  const float u = abs(x);  // a = u / sqrt2, never rounded on its own
  const float t = 1.0 / fma(u, 0.5 * 0.70710678118654752, 1.0);
  float q = 0.17087277;
  q = fma(q, t, -0.82215223);
  q = fma(q, t, 1.48851587);
  q = fma(q, t, -1.13520398);
  q = fma(q, t, 0.27886807);
  q = fma(q, t, -0.18628806);
  q = fma(q, t, 0.09678418);
  q = fma(q, t, 0.37409196);
  q = fma(q, t, 1.00002368);
  q = fma(q, t, -1.26551223);
  const float erfc_a = t * exp(fma(u * -0.5, u, q));  // -a^2 = -u^2 / 2, u * -0.5 exact
  return max(x, 0.0) - 0.5 * u * erfc_a;
}

float gelu_tanh(float x) {
  const float minus_2z = x * fma(x * x, -2.0 * 0.79788456080286536 * 0.044715, -2.0 * 0.79788456080286536);
  return x / (1.0 + exp(minus_2z));
}

void main() {
  const uint i = group_index() * WG + gl_LocalInvocationID.x;
  if (i >= p.n) return;
  const float v = s[p.off + i];
  s[p.off + i] = TANH != 0u ? gelu_tanh(v) : gelu_erf(v);
}
