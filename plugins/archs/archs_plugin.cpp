// Registers the architecture templates: model families are plugins too, so adding one needs no
// change to the core.
#include <semline/plugin.h>

#include "archs.h"

namespace semline::archs {

void check_hparams(const ModelView& model, const HParams& hp) {
  auto bad = [&](const std::string& what) {
    throw Error(model.path() + ": " + hp.arch + " hyper-parameters: " + what);
  };
  if (hp.n_embd <= 0 || hp.n_ff <= 0 || hp.n_layer <= 0 || hp.n_head <= 0 || hp.n_vocab <= 0)
    bad("embedding_length, feed_forward_length, block_count, head_count and the vocabulary size must be > 0");
  if (hp.n_embd % hp.n_head)
    bad("embedding_length " + std::to_string(hp.n_embd) + " is not a multiple of head_count " + std::to_string(hp.n_head));
  if (hp.n_head_kv <= 0 || hp.n_head % hp.n_head_kv)
    bad("head_count " + std::to_string(hp.n_head) + " is not a multiple of head_count_kv " + std::to_string(hp.n_head_kv));
  if (!(hp.norm_eps > 0) || !(hp.rope_base > 0)) bad("the norm epsilon and the RoPE base must be > 0");
}

StationSpec tied_head() {
  return {"output",
          StageKind::Head,
          "dense",
          {{"output", "output.weight", {"n_embd", "n_vocab"}, true},
           {"tokens", "token_embd.weight", {"n_embd", "n_vocab"}}}};
}

static void register_all(Registry& r) {
  r.add_arch(llama_template());
  r.add_arch(gpt2_template());
  r.add_arch(qwen2_template());
  r.add_arch(qwen3_template());
  r.add_arch(phi3_template());
  r.add_arch(gptneox_template());
  r.add_arch(stablelm_template());
  r.add_arch(starcoder2_template());
  r.add_arch(gemma2_template());
  r.add_arch(mamba_template());
  r.add_arch(mamba2_template());
  r.add_arch(jamba_template());
}

}  // namespace semline::archs

SEMLINE_PLUGIN("archs", "0.1.0", "Model families: llama, gpt2, qwen2, qwen3, phi3, starcoder2, gptneox, stablelm, gemma2, mamba, mamba2, jamba", semline::archs::register_all)
