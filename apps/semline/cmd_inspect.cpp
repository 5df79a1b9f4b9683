// semline inspect: what a model holds — hyper-parameters, tokenizer, metadata, tensors.
#include <cstdio>

#include <spdlog/spdlog.h>

#include "app.h"
#include "core/util/text.h"

namespace semline::app {

namespace {

// Control characters escaped, so a vocabulary of characters ("\n" is a token) keeps one line
// per key.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", static_cast<unsigned char>(c));
      out += b;
    } else {
      out += c;
    }
  }
  return out;
}

std::string scalar_string(const MetaValue& v) {
  switch (v.type) {
    case MetaType::STRING: {
      std::string s = printable(v.str.substr(0, 80));
      return "\"" + s + (v.str.size() > 80 ? "…" : "") + "\"";
    }
    case MetaType::BOOL: return v.u ? "true" : "false";
    case MetaType::F32:
    case MetaType::F64: return param_value_string(v.f);
    case MetaType::I8:
    case MetaType::I16:
    case MetaType::I32:
    case MetaType::I64: return std::to_string(v.i);
    default: return std::to_string(v.u);
  }
}

std::string value_string(const MetaValue& v) {
  if (v.type != MetaType::ARRAY) return scalar_string(v);
  std::string s = "[" + std::string(meta_type_name(v.elem)) + " x " + std::to_string(v.count) + "]";
  std::vector<std::string> first;
  for (uint64_t i = 0; i < std::min<uint64_t>(v.count, 4); ++i) {
    if (v.elem == MetaType::STRING) first.push_back("\"" + printable(v.strings[i].substr(0, 24)) + "\"");
    else if (v.elem == MetaType::ARRAY) first.push_back("[...]");
    else if (v.elem == MetaType::F32 || v.elem == MetaType::F64) first.push_back(param_value_string(v.at<double>(i)));
    else first.push_back(std::to_string(v.at<int64_t>(i)));
  }
  return s + " " + join(first) + (v.count > 4 ? ", …" : "");
}

std::string mib(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f MiB", bytes / 1048576.0);
  return b;
}

void print_hparams(const ModelFile& m, const Plugins& plugins) {
  auto arch = m.find_string("general.architecture");
  if (!arch) {
    std::printf("arch       (none: general.architecture is absent%s)\n",
                m.tensors().empty() ? "; a vocabulary-only file" : "");
    return;
  }
  const RegisteredArch* a = plugins.registry.find_arch(*arch);
  if (!a) {
    std::printf("arch       %s (no template registered)\n", std::string(*arch).c_str());
    return;
  }
  std::printf("arch       %s — %s\n", a->entry.name.c_str(), a->entry.description.c_str());
  if (m.tensors().empty()) return;
  try {
    HParams hp = a->entry.read_hparams(m);
    const char* rope = hp.rope_type == RopeType::None ? "none" : hp.rope_type == RopeType::NeoX ? "neox" : "normal";
    const char* act = hp.ffn_act == Activation::Gelu ? "gelu" : hp.ffn_act == Activation::GeluTanh ? "gelu_tanh" : "silu";
    std::printf("hparams    n_vocab %lld, n_ctx_train %lld, n_embd %lld, n_ff %lld, n_layer %lld,\n"
                "           n_head %lld, n_head_kv %lld, head_dim %lld, rope %s, rope_dim %lld, rope_base %g,\n"
                "           norm_eps %g, ffn_act %s\n",
                (long long)hp.n_vocab, (long long)hp.n_ctx_train, (long long)hp.n_embd, (long long)hp.n_ff,
                (long long)hp.n_layer, (long long)hp.n_head, (long long)hp.n_head_kv, (long long)hp.head_dim, rope,
                (long long)hp.rope_dim, hp.rope_base, hp.norm_eps, act);
    if (hp.n_expert > 0)
      std::printf("           n_expert %lld, n_expert_used %lld\n", (long long)hp.n_expert, (long long)hp.n_expert_used);
    if (hp.sliding_window > 0) std::printf("           sliding_window %lld\n", (long long)hp.sliding_window);
    if (hp.rope_freq_scale != 1.0) std::printf("           rope_freq_scale %g (linear scaling)\n", hp.rope_freq_scale);
    if (hp.parallel_residual) std::printf("           parallel residual: h += attention(norm1(h)) + ffn(norm2(h))\n");
  } catch (const std::exception& e) {
    std::printf("hparams    unreadable: %s\n", e.what());
  }
}

void print_tokenizer(const ModelFile& m) {
  auto model = m.find_string("tokenizer.ggml.model");
  if (!model) {
    std::printf("tokenizer  none\n");
    return;
  }
  const MetaValue* tokens = m.meta("tokenizer.ggml.tokens");
  const MetaValue* merges = m.meta("tokenizer.ggml.merges");
  std::string s = std::string(*model);
  if (auto pre = m.find_string("tokenizer.ggml.pre")) s += " / pre " + std::string(*pre);
  s += ", " + std::to_string(tokens && tokens->type == MetaType::ARRAY ? tokens->count : 0) + " tokens";
  if (merges && merges->type == MetaType::ARRAY) s += ", " + std::to_string(merges->count) + " merges";
  for (const char* k : {"bos", "eos", "unknown", "padding"})
    if (const MetaValue* v = m.meta(std::string("tokenizer.ggml.") + k + "_token_id"))
      s += ", " + std::string(k) + " " + scalar_string(*v);
  std::printf("tokenizer  %s\n", s.c_str());
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Show a model's hyper-parameters, tokenizer, metadata and tensors (GGUF or Hugging Face folder)");
  auto path = std::make_shared<std::string>();
  auto no_tensors = std::make_shared<bool>(false);
  cmd->add_option("model", *path, "GGUF file, or Hugging Face folder (or its config.json)")->required();
  cmd->add_flag("--no-tensors", *no_tensors, "Leave out the tensor table");
  cmd->callback([path, no_tensors] {
    auto m = open_model(*path);
    auto plugins = load_plugins({});
    uint64_t tensor_bytes = 0;
    for (const auto& t : m->tensors()) tensor_bytes += t.bytes;
    std::printf("file       %s (%s)\n", path->c_str(), m->format().c_str());
    print_hparams(*m, *plugins);
    print_tokenizer(*m);
    std::printf("\nmetadata   %zu keys\n", m->metadata().size());
    for (const auto& [key, v] : m->metadata()) {
      std::string type = v.type == MetaType::ARRAY ? "array" : meta_type_name(v.type);
      std::printf("  %-44s %-7s %s\n", key.c_str(), type.c_str(), value_string(v).c_str());
    }
    std::printf("\ntensors    %zu, %s\n", m->tensors().size(), mib(static_cast<double>(tensor_bytes)).c_str());
    if (*no_tensors) return;
    std::printf("  %-36s %-5s %-22s %12s %12s\n", "name", "type", "shape", "bytes", "offset");
    for (const auto& t : m->tensors()) {
      std::vector<std::string> dims;
      for (int d = 0; d < t.view.ndim; ++d) dims.push_back(std::to_string(t.view.ne[d]));
      std::printf("  %-36s %-5s %-22s %12llu %12llu\n", t.name.c_str(), dtype_name(t.view.dtype),
                  ("[" + join(dims) + "]").c_str(), (unsigned long long)t.bytes, (unsigned long long)t.offset);
    }
  });
}

}  // namespace semline::app
