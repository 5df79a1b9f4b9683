#include "core/model/hf_model.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <deque>
#include <unordered_map>

#include "core/model/hf_config.h"
#include "core/model/mapped_file.h"
#include "semline/error.h"

namespace semline::hf {

namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMaxConfigBytes = uint64_t{16} << 20;
constexpr uint64_t kMaxVocabBytes = uint64_t{256} << 20;
constexpr int32_t kControlToken = 3;  // tokenizer.ggml.token_type of control tokens

std::string read_text(const fs::path& p, uint64_t max_bytes) {
  MappedFile f(p);
  if (f.bytes().size() > max_bytes)
    throw Error(fmt::format("{}: {} bytes, more than the {} such a file may have", p.string(), f.bytes().size(),
                            max_bytes));
  return std::string(reinterpret_cast<const char*>(f.bytes().data()), f.bytes().size());
}

// Metadata the model owns: each value views strings and arrays kept here (deques: adding never
// moves what earlier values point to).
class OwnedMeta {
 public:
  void add_string(std::string key, std::string value) {
    MetaValue v;
    v.type = MetaType::STRING;
    v.str = strings_.emplace_back(std::move(value));
    entries.emplace_back(std::move(key), std::move(v));
  }
  void add_u32(std::string key, uint64_t value) {
    MetaValue v;
    v.type = MetaType::U32;
    v.u = value;
    v.i = static_cast<int64_t>(value);
    v.f = static_cast<double>(value);
    entries.emplace_back(std::move(key), std::move(v));
  }
  void add_f32(std::string key, double value) {
    MetaValue v;
    v.type = MetaType::F32;
    v.f = static_cast<float>(value);
    entries.emplace_back(std::move(key), std::move(v));
  }
  void add_strings(std::string key, std::vector<std::string> values) {
    const std::vector<std::string>& kept = string_arrays_.emplace_back(std::move(values));
    MetaValue v;
    v.type = MetaType::ARRAY;
    v.elem = MetaType::STRING;
    v.count = kept.size();
    v.strings.assign(kept.begin(), kept.end());
    entries.emplace_back(std::move(key), std::move(v));
  }
  void add_i32s(std::string key, std::vector<int32_t> values) {
    const std::vector<int32_t>& kept = int_arrays_.emplace_back(std::move(values));
    MetaValue v;
    v.type = MetaType::ARRAY;
    v.elem = MetaType::I32;
    v.count = kept.size();
    v.raw = reinterpret_cast<const unsigned char*>(kept.data());
    entries.emplace_back(std::move(key), std::move(v));
  }

  std::vector<std::pair<std::string, MetaValue>> entries;

 private:
  std::deque<std::string> strings_;
  std::deque<std::vector<std::string>> string_arrays_;
  std::deque<std::vector<int32_t>> int_arrays_;
};

// Where a safetensors tensor goes: its GGUF name, and whether it is a Conv1D weight ([in][out]).
struct Placement {
  std::string name;
  bool transpose = false;
  bool skip = false;  // the causal-mask buffers older checkpoints store
};

Placement place(const std::string& hf_name, int64_t n_layer, const std::string& file) {
  static const std::pair<const char*, const char*> top[] = {
      {"wte.weight", "token_embd.weight"}, {"wpe.weight", "position_embd.weight"},
      {"ln_f.weight", "output_norm.weight"}, {"ln_f.bias", "output_norm.bias"}};
  struct Block {
    const char* hf;
    const char* gguf;
    bool transpose;
  };
  static const Block block[] = {
      {"ln_1.weight", "attn_norm.weight", false},      {"ln_1.bias", "attn_norm.bias", false},
      {"attn.c_attn.weight", "attn_qkv.weight", true}, {"attn.c_attn.bias", "attn_qkv.bias", false},
      {"attn.c_proj.weight", "attn_output.weight", true}, {"attn.c_proj.bias", "attn_output.bias", false},
      {"ln_2.weight", "ffn_norm.weight", false},       {"ln_2.bias", "ffn_norm.bias", false},
      {"mlp.c_fc.weight", "ffn_up.weight", true},      {"mlp.c_fc.bias", "ffn_up.bias", false},
      {"mlp.c_proj.weight", "ffn_down.weight", true},  {"mlp.c_proj.bias", "ffn_down.bias", false}};
  if (hf_name == "lm_head.weight") return {"output.weight"};
  std::string_view n = hf_name;
  if (n.rfind("transformer.", 0) == 0) n.remove_prefix(12);
  for (const auto& [h, g] : top)
    if (n == h) return {g};
  if (n.rfind("h.", 0) == 0) {
    n.remove_prefix(2);
    size_t digits = 0;
    while (digits < n.size() && digits < 7 && n[digits] >= '0' && n[digits] <= '9') ++digits;
    if (digits > 0 && digits < n.size() && n[digits] == '.' && (digits == 1 || n[0] != '0')) {
      const int64_t layer = std::stoll(std::string(n.substr(0, digits)));
      const std::string_view rest = n.substr(digits + 1);
      if (rest == "attn.bias" || rest == "attn.masked_bias") return {"", false, true};
      for (const Block& b : block)
        if (rest == b.hf) {
          if (layer >= n_layer)
            throw Error(fmt::format("{}: tensor '{}' belongs to block {}, but config.json has n_layer {}", file,
                                    hf_name, layer, n_layer));
          return {fmt::format("blk.{}.{}", layer, b.gguf), b.transpose};
        }
    }
  }
  throw Error(file + ": tensor '" + hf_name + "' is not part of the GPT-2 layout (transformer.wte, wpe, ln_f, " +
              "h.N.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj}.{weight, bias}, lm_head.weight)");
}

Tensor host_view(DType t, const std::vector<int64_t>& ne, const void* p) {
  Tensor x;
  x.dtype = t;
  x.ndim = static_cast<int32_t>(ne.size());
  for (size_t d = 0; d < ne.size(); ++d) x.ne[d] = ne[d];
  x.nb[0] = dtype_block_bytes(t);
  for (int d = 1; d < kMaxDims; ++d) x.nb[d] = x.nb[d - 1] * x.ne[d - 1];
  x.host = const_cast<void*>(p);
  return x;
}

class HfModel final : public ModelFile {
 public:
  HfModel(const fs::path& folder, const safetensors::Limits& limits) : folder_(folder.string()) {
    const fs::path config_path = folder / "config.json", weights_path = folder / "model.safetensors";
    if (!fs::exists(weights_path)) {
      const bool sharded = fs::exists(folder / "model.safetensors.index.json");
      throw Error(folder_ + ": no model.safetensors" +
                  (sharded ? std::string(" (a sharded checkpoint: semline reads one model.safetensors)")
                           : std::string(" (a Hugging Face folder holds config.json and model.safetensors)")));
    }
    const Gpt2Config c = parse_gpt2_config(read_text(config_path, kMaxConfigBytes), config_path.string());
    st_ = safetensors::File::open(weights_path, limits);
    read_tensors(c);
    write_hparams(folder, c);
    read_vocabulary(folder, c);
    for (size_t i = 0; i < meta_.entries.size(); ++i) meta_index_[meta_.entries[i].first] = i;
  }

  const std::vector<std::pair<std::string, MetaValue>>& metadata() const override { return meta_.entries; }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  const TensorInfo* tensor_info(std::string_view name) const override {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
  }
  const MetaValue* meta(std::string_view key) const override {
    auto it = meta_index_.find(key);
    return it == meta_index_.end() ? nullptr : &meta_.entries[it->second].second;
  }
  std::string path() const override { return folder_; }
  std::string format() const override {
    return fmt::format("Hugging Face GPT-2 folder: model.safetensors ({} bytes, {} tensors, {} Conv1D weights "
                       "transposed), config.json, {}",
                       st_->file_size(), tensors_.size(), transposed_, vocabulary_);
  }

 private:
  void read_tensors(const Gpt2Config& c) {
    const std::string& file = st_->path();
    std::unordered_map<std::string, std::string> source;  // GGUF name -> safetensors name
    for (const safetensors::Entry& e : st_->entries()) {
      const Placement p = place(e.name, c.n_layer, file);
      if (p.skip) continue;
      const std::string what = fmt::format("{}: tensor '{}' ({})", file, e.name, p.name);
      if (e.shape.empty() || e.elements() == 0)
        throw Error(what + " is empty; every GPT-2 tensor has at least one value in each dimension");
      if (p.transpose && e.shape.size() != 2)
        throw Error(fmt::format("{} has {} dimensions; a Conv1D weight has 2 ([in, out])", what, e.shape.size()));
      const size_t es = static_cast<size_t>(dtype_block_bytes(e.dtype));
      const uint64_t bytes = e.end - e.begin;
      // ne is innermost first: the stored shape reversed, or for a Conv1D weight [in][out] made
      // [out][in] by the transposition, {in, out}.
      std::vector<int64_t> ne(e.shape.rbegin(), e.shape.rend());
      const void* host = e.data;
      if (p.transpose) {
        ne = {e.shape[0], e.shape[1]};
        const int64_t n_in = e.shape[0], n_out = e.shape[1];
        std::vector<uint8_t>& dst = owned_.emplace_back(bytes);
        for (int64_t i = 0; i < n_in; ++i)
          for (int64_t o = 0; o < n_out; ++o)
            std::memcpy(dst.data() + (o * n_in + i) * es, e.data + (i * n_out + o) * es, es);
        host = dst.data();
        ++transposed_;
      } else if (reinterpret_cast<uintptr_t>(e.data) % es != 0) {
        // The format does not align tensors; the kernels read whole elements.
        host = owned_.emplace_back(e.data, e.data + bytes).data();
      }
      if (auto [it, fresh] = source.emplace(p.name, e.name); !fresh)
        throw Error(file + ": tensors '" + it->second + "' and '" + e.name + "' both map to " + p.name);
      tensors_.push_back({p.name, host_view(e.dtype, ne, host), e.begin, bytes});
    }
    // The index views the names in tensors_, which no longer moves.
    for (size_t i = 0; i < tensors_.size(); ++i) tensor_index_[tensors_[i].name] = i;
    const TensorInfo* wte = tensor_info("token_embd.weight");
    if (!wte) throw Error(file + ": no transformer.wte.weight (the token embedding)");
    if (wte->view.ne[1] != c.vocab_size)
      throw Error(fmt::format("{}: vocab_size {} in config.json, but transformer.wte.weight has {} rows", file,
                              c.vocab_size, wte->view.ne[1]));
  }

  void write_hparams(const fs::path& folder, const Gpt2Config& c) {
    std::string name = folder.lexically_normal().filename().string();
    if (name.empty()) name = folder.lexically_normal().parent_path().filename().string();
    meta_.add_string("general.architecture", "gpt2");
    meta_.add_string("general.name", name.empty() ? "gpt2" : name);
    meta_.add_u32("gpt2.context_length", static_cast<uint64_t>(c.n_positions));
    meta_.add_u32("gpt2.embedding_length", static_cast<uint64_t>(c.n_embd));
    meta_.add_u32("gpt2.feed_forward_length", static_cast<uint64_t>(c.n_inner));
    meta_.add_u32("gpt2.block_count", static_cast<uint64_t>(c.n_layer));
    meta_.add_u32("gpt2.attention.head_count", static_cast<uint64_t>(c.n_head));
    meta_.add_f32("gpt2.attention.layer_norm_epsilon", c.layer_norm_epsilon);
    meta_.add_string("gpt2.feed_forward_activation", c.gelu_exact ? "gelu" : "gelu_tanh");
  }

  void read_vocabulary(const fs::path& folder, const Gpt2Config& c) {
    const fs::path vocab_path = folder / "vocab.json", merges_path = folder / "merges.txt";
    if (!fs::exists(vocab_path)) {
      vocabulary_ = "no vocab.json (no tokenizer)";
      return;
    }
    std::vector<std::string> tokens = parse_vocab_json(read_text(vocab_path, kMaxVocabBytes), vocab_path.string());
    const int64_t rows = tensor_info("token_embd.weight")->view.ne[1];
    if (static_cast<int64_t>(tokens.size()) != rows)
      throw Error(fmt::format("{}: {} tokens, but transformer.wte.weight has {} rows", vocab_path.string(),
                              tokens.size(), rows));
    for (const auto& [key, id] : {std::pair{"bos_token_id", c.bos_token_id}, std::pair{"eos_token_id", c.eos_token_id}})
      if (id && *id >= rows)
        throw Error(fmt::format("{}/config.json: {} {} is outside the vocabulary of {} tokens", folder.string(), key,
                                *id, rows));
    const bool bpe = fs::exists(merges_path);
    if (bpe) {
      std::vector<int32_t> types(tokens.size(), 1);  // normal
      for (const auto& id : {c.bos_token_id, c.eos_token_id})
        if (id) types[static_cast<size_t>(*id)] = kControlToken;
      meta_.add_string("tokenizer.ggml.model", "gpt2");
      meta_.add_string("tokenizer.ggml.pre", "gpt-2");
      meta_.add_strings("tokenizer.ggml.tokens", std::move(tokens));
      meta_.add_i32s("tokenizer.ggml.token_type", std::move(types));
      meta_.add_strings("tokenizer.ggml.merges",
                        parse_merges(read_text(merges_path, kMaxVocabBytes), merges_path.string()));
      vocabulary_ = "vocab.json + merges.txt (byte-level BPE)";
    } else {
      for (size_t id = 0; id < tokens.size(); ++id)
        if (!is_one_utf8_char(tokens[id]))
          throw Error(fmt::format("{}: token {} (id {}) is not one UTF-8 character, and there is no merges.txt: a "
                                  "vocabulary without merges is read character by character",
                                  vocab_path.string(), as_json_string(tokens[id]), id));
      meta_.add_string("tokenizer.ggml.model", "char");
      meta_.add_strings("tokenizer.ggml.tokens", std::move(tokens));
      vocabulary_ = "vocab.json (characters)";
    }
    if (c.bos_token_id) meta_.add_u32("tokenizer.ggml.bos_token_id", static_cast<uint64_t>(*c.bos_token_id));
    if (c.eos_token_id) meta_.add_u32("tokenizer.ggml.eos_token_id", static_cast<uint64_t>(*c.eos_token_id));
  }

  std::string folder_;
  std::unique_ptr<safetensors::File> st_;
  OwnedMeta meta_;
  std::vector<TensorInfo> tensors_;
  std::deque<std::vector<uint8_t>> owned_;  // transposed or realigned tensor bytes
  std::unordered_map<std::string_view, size_t> meta_index_, tensor_index_;
  int transposed_ = 0;
  std::string vocabulary_;
};

}  // namespace

bool is_hf_path(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) || path.filename() == "config.json";
}

std::unique_ptr<ModelFile> open_folder(const fs::path& path, const safetensors::Limits& limits) {
  const fs::path folder = fs::is_directory(path) ? path : path.parent_path().empty() ? fs::path(".") : path.parent_path();
  auto m = std::make_unique<HfModel>(folder, limits);
  spdlog::debug("{}: {}", m->path(), m->format());
  return m;
}

}  // namespace semline::hf
