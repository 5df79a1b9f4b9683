// Sums and maxima over a workgroup of WG invocations (WG a power of two). With USE_SUBGROUPS the
// subgroups reduce first and one value per subgroup meets in shared memory; without, a shared
// memory tree does it all. Every invocation gets the result. Needs `const uint WG` declared first.
shared float red[WG];

// One reduction written once and declared for each operation: SG_OP is the subgroup's own
// reduction, OP combines two values.
#ifdef USE_SUBGROUPS
#define WG_REDUCE(NAME, SG_OP, OP)                                 \
  float NAME(float v) {                                            \
    v = SG_OP(v);                                                  \
    barrier();                                                     \
    if (subgroupElect()) red[gl_SubgroupID] = v;                   \
    barrier();                                                     \
    float r = red[0];                                              \
    for (uint i = 1u; i < gl_NumSubgroups; ++i) r = OP(r, red[i]); \
    return r;                                                      \
  }
#else
#define WG_REDUCE(NAME, SG_OP, OP)                                  \
  float NAME(float v) {                                             \
    const uint tid = gl_LocalInvocationID.x;                        \
    barrier();                                                      \
    red[tid] = v;                                                   \
    barrier();                                                      \
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {                      \
      if (tid < s) red[tid] = OP(red[tid], red[tid + s]);           \
      barrier();                                                    \
    }                                                               \
    return red[0];                                                  \
  }
#endif

float red_add(float a, float b) { return a + b; }

WG_REDUCE(wg_sum, subgroupAdd, red_add)
WG_REDUCE(wg_max, subgroupMax, max)
