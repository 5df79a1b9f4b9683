#include "ops/attention_cores.h"

namespace semline::cpu {

KvPool kv_pool(const Tensor& t) {
  KvPool p;
  p.base = static_cast<const char*>(t.host);
  p.head = static_cast<size_t>(t.nb[1]);
  p.slot = static_cast<size_t>(t.nb[2]);
  p.block = static_cast<size_t>(t.nb[3]);
  p.dtype = t.dtype;
  return p;
}

CoreStep core_step(CpuBackend& be, const Step& step, const Tensor& q, const Tensor& attn) {
  return CoreStep{step.batch,
                  static_cast<const float*>(q.host),
                  q.nb[1] / 4,
                  static_cast<float*>(attn.host),
                  attn.nb[1] / 4,
                  kv_pool(step.kv->k),
                  kv_pool(step.kv->v),
                  step.kv->block_tokens,
                  be.workspace().data()};
}

}  // namespace semline::cpu
