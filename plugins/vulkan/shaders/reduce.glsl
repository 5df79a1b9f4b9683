// Sums and maxima over a workgroup of WG invocations (WG a power of two). With USE_SUBGROUPS the
// subgroups reduce first and one value per subgroup meets in shared memory; without, a shared
// memory tree does it all. Every invocation gets the result. Needs `const uint WG` declared first.
shared float red[WG];

float wg_sum(float v) {
#ifdef USE_SUBGROUPS
  v = subgroupAdd(v);
  barrier();
  if (subgroupElect()) red[gl_SubgroupID] = v;
  barrier();
  float s = 0.0;
  for (uint i = 0u; i < gl_NumSubgroups; ++i) s += red[i];
  return s;
#else
  const uint tid = gl_LocalInvocationID.x;
  barrier();
  red[tid] = v;
  barrier();
  for (uint s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s) red[tid] += red[tid + s];
    barrier();
  }
  return red[0];
#endif
}

float wg_max(float v) {
#ifdef USE_SUBGROUPS
  v = subgroupMax(v);
  barrier();
  if (subgroupElect()) red[gl_SubgroupID] = v;
  barrier();
  float m = red[0];
  for (uint i = 1u; i < gl_NumSubgroups; ++i) m = max(m, red[i]);
  return m;
#else
  const uint tid = gl_LocalInvocationID.x;
  barrier();
  red[tid] = v;
  barrier();
  for (uint s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s) red[tid] = max(red[tid], red[tid + s]);
    barrier();
  }
  return red[0];
#endif
}
