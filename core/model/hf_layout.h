// How a Hugging Face architecture maps onto GGUF terms: which llama.cpp arch it is, the metadata
// its config.json gives, and where each safetensors tensor goes (renamed, and transposed or with
// its rows reordered where the layouts differ). One per family: GPT-2 (hf_config.cpp), the
// llama-lineage decoders (hf_decoder.cpp) and the LayerNorm decoders (hf_layernorm.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model/owned_meta.h"

namespace semline::hf {

struct Placement {
  enum class Op {
    Keep,          // the stored rows, as they are
    Skip,          // not part of the model (buffers older checkpoints store)
    Transpose,     // a Conv1D weight, [in][out] -> [out][in]
    PermuteHeads,  // q/k rows from Hugging Face's rotate-half order to llama.cpp's interleaved pairs
    PlusOne,       // Gemma's norm weights w, applied as 1 + w: stored as 1 + w in F32, as llama.cpp's converter
    GroupQkv,      // GPT-NeoX's fused rows per head, (h, {q,k,v}, d), to llama.cpp's blocks q | k | v
  };
  std::string name;  // the GGUF name
  Op op = Op::Keep;
  int64_t heads = 0, head_dim = 0;  // PermuteHeads, GroupQkv: the heads the rows hold, and their size
};

struct Layout {
  std::string label;  // "GPT-2", "LlamaForCausalLM", ... for messages
  std::string arch;   // general.architecture
  int64_t vocab_size = 0;
  std::optional<int64_t> bos_token_id, eos_token_id;  // config.json's, where it names them
  // The {arch}.* keys, written after general.*.
  std::function<void(OwnedMeta&)> write_meta;
  // Where a tensor goes; throws naming the tensor when it is not part of the layout.
  std::function<Placement(const std::string& hf_name, const std::string& file)> place;
  // Tensors the GGUF has that the folder computes (Llama 3's rope_freqs.weight), F32, 1-D.
  std::vector<std::pair<std::string, std::vector<float>>> generated;
};

// config.json's text -> the layout of its architecture; `name` stands for the file in messages.
// Refuses architectures semline does not run, naming the ones it does.
Layout layout_of(std::string_view config_text, const std::string& name);

// The two families (layout_of chooses by model_type / architectures).
Layout gpt2_layout(std::string_view config_text, const std::string& name);
Layout decoder_layout(std::string_view config_text, const std::string& name);
Layout layernorm_layout(std::string_view config_text, const std::string& name);

// What the decoders' config.json give alike (hidden_size, intermediate_size, num_hidden_layers,
// num_attention_heads, num_key_value_heads, max_position_embeddings, vocab_size) and the
// {arch}.* keys they become.
struct DecoderShape {
  int64_t n_embd = 0, n_ff = 0, n_layer = 0, n_head = 0, n_head_kv = 0, n_ctx = 0, vocab_size = 0;
};
void write_shape(OwnedMeta& meta, const std::string& arch, const DecoderShape& s);

// A layout's label, arch, vocabulary and config.json's bos/eos ids; `config` is config.json.
Layout layout_of_class(const nlohmann::json& config, const char* label, const char* arch, int64_t vocab_size,
                       const std::string& name);

// "\"llama\" (LlamaForCausalLM), ..." of a family table (entries with model_type and
// architecture), for messages.
template <class Family, size_t N>
std::string class_list(const Family (&families)[N]) {
  std::string out;
  for (const Family& f : families)
    out += std::string(out.empty() ? "" : ", ") + "\"" + f.model_type + "\" (" + f.architecture + ")";
  return out;
}

// Whether decoder_layout / layernorm_layout reads this model_type; the ones they read, for messages.
bool decoder_serves(std::string_view model_type);
std::string decoder_architectures();
bool layernorm_serves(std::string_view model_type);
std::string layernorm_architectures();

// "PREFIX{L}.rest" -> {L, rest} for a block index L below n_layer (else an error naming the tensor
// and config.json's `layers_key`); {-1, ""} when `n` is not a block's tensor.
std::pair<int64_t, std::string_view> block_of(std::string_view n, std::string_view prefix, const std::string& hf_name,
                                              int64_t n_layer, std::string_view layers_key, const std::string& file);

}  // namespace semline::hf
