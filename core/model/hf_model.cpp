#include "core/model/hf_model.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>

#include "core/model/file_type.h"
#include "core/model/hf_config.h"
#include "core/model/hf_json.h"
#include "core/model/hf_layout.h"
#include "core/model/hf_tokenizer.h"
#include "semline/codec.h"
#include "semline/error.h"

namespace semline::hf {

namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMaxConfigBytes = uint64_t{16} << 20;
constexpr uint64_t kMaxVocabBytes = uint64_t{256} << 20;
constexpr int32_t kControlToken = 3;  // tokenizer.ggml.token_type of control tokens

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

// The safetensors files of a folder: model.safetensors, or the shards model.safetensors.index.json
// names, each tensor in the shard the index says.
std::vector<std::unique_ptr<safetensors::File>> open_weights(const fs::path& folder, const safetensors::Limits& limits) {
  std::vector<std::unique_ptr<safetensors::File>> files;
  const fs::path single = folder / "model.safetensors", index_path = folder / "model.safetensors.index.json";
  if (fs::exists(single)) {
    files.push_back(safetensors::File::open(single, limits));
    return files;
  }
  if (!fs::exists(index_path)) {
    const bool pickle = fs::exists(folder / "pytorch_model.bin");
    throw Error(folder.string() + ": no model.safetensors" +
                (pickle ? std::string(" (pytorch_model.bin is a pickle, which semline does not read: save the model "
                                      "as safetensors)")
                        : std::string(" (a Hugging Face folder holds config.json and model.safetensors, or shards "
                                      "with model.safetensors.index.json)")));
  }
  const std::string index_name = index_path.string();
  const json index = parse_object(read_text(index_path, kMaxConfigBytes), index_name);
  const json* map = find(index, "weight_map");
  if (!map || !map->is_object() || map->empty())
    throw Error(index_name + ": weight_map must be an object of tensor name: file name");
  std::map<std::string, size_t> file_of_shard;
  for (auto it = map->begin(); it != map->end(); ++it) {
    if (!it->is_string()) throw Error(index_name + ": the file of '" + it.key() + "' is " + it->dump());
    const std::string shard = it->get<std::string>();
    if (shard.empty() || shard.find('/') != std::string::npos || shard.find('\\') != std::string::npos || shard == "..")
      throw Error(index_name + ": '" + it.key() + "' is in " + as_json_string(shard) +
                  ", which is not a file name of this folder");
    if (file_of_shard.emplace(shard, files.size()).second) files.push_back(safetensors::File::open(folder / shard, limits));
  }
  for (const auto& [shard, i] : file_of_shard) {
    std::set<std::string_view> held;
    for (const safetensors::Entry& e : files[i]->entries()) {
      held.insert(e.name);
      auto where = map->find(e.name);
      if (where == map->end() || *where != shard)
        throw Error(fmt::format("{}: tensor '{}' is in {}, but the index {}", index_name, e.name, shard,
                                where == map->end() ? std::string("does not list it")
                                                    : "places it in " + where->get<std::string>()));
    }
    for (auto it = map->begin(); it != map->end(); ++it)
      if (*it == shard && !held.count(it.key()))
        throw Error(index_name + ": lists '" + it.key() + "' in " + shard + ", which does not hold it");
  }
  return files;
}

class HfModel final : public ModelFile {
 public:
  HfModel(const fs::path& folder, const safetensors::Limits& limits) : folder_(folder.string()) {
    const fs::path config_path = folder / "config.json";
    files_ = open_weights(folder, limits);
    layout_ = layout_of(read_text(config_path, kMaxConfigBytes), config_path.string());
    read_tensors();
    std::string name = folder.lexically_normal().filename().string();
    if (name.empty()) name = folder.lexically_normal().parent_path().filename().string();
    meta_.add_string("general.architecture", layout_.arch);
    meta_.add_string("general.name", name.empty() ? layout_.arch : name);
    meta_.add_u32("general.file_type", llama_file_type(matrix_dtype()));
    layout_.write_meta(meta_);
    read_vocabulary(folder);
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
    uint64_t bytes = 0;
    for (const auto& f : files_) bytes += f->file_size();
    std::string changed;
    if (transposed_) changed += fmt::format(", {} Conv1D weights transposed", transposed_);
    if (permuted_) changed += fmt::format(", {} q/k maps permuted to llama.cpp's RoPE pairs", permuted_);
    if (shifted_) changed += fmt::format(", {} norm weights stored as 1 + w", shifted_);
    if (grouped_) changed += fmt::format(", {} fused qkv maps regrouped from per head to q | k | v", grouped_);
    return fmt::format("Hugging Face {} folder: {} ({} bytes, {} tensors{}), config.json, {}", layout_.label,
                       files_.size() == 1 ? files_[0]->path() : fmt::format("{} safetensors shards", files_.size()),
                       bytes, tensors_.size(), changed, vocabulary_);
  }

 private:
  void read_tensors() {
    std::unordered_map<std::string, std::string> source;  // GGUF name -> safetensors name
    for (const auto& st : files_)
      for (const safetensors::Entry& e : st->entries()) read_tensor(*st, e, source);
    for (const auto& [name, values] : layout_.generated) {
      if (source.count(name)) throw Error(folder_ + ": " + name + " is both stored and computed from config.json");
      const auto& kept = generated_.emplace_back(values);
      tensors_.push_back({name, host_view(DType::F32, {static_cast<int64_t>(kept.size())}, kept.data()), 0,
                          kept.size() * sizeof(float)});
    }
    // The index views the names in tensors_, which no longer moves.
    for (size_t i = 0; i < tensors_.size(); ++i) tensor_index_[tensors_[i].name] = i;
    const TensorInfo* embd = tensor_info("token_embd.weight");
    if (!embd) throw Error(folder_ + ": no token embedding among the tensors (" + layout_.label + " names it " +
                           (layout_.arch == "gpt2" ? "transformer.wte.weight)" : "model.embed_tokens.weight)"));
    if (embd->view.ne[1] != layout_.vocab_size)
      throw Error(fmt::format("{}: vocab_size {} in config.json, but the token embedding ({}) has {} rows",
                              files_[0]->path(), layout_.vocab_size, source["token_embd.weight"], embd->view.ne[1]));
  }

  // The dtype most weight matrices have.
  DType matrix_dtype() const {
    std::map<DType, int> count;
    for (const TensorInfo& t : tensors_)
      if (t.view.ndim >= 2) ++count[t.view.dtype];
    auto most = std::max_element(count.begin(), count.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    return most == count.end() ? DType::F32 : most->first;
  }

  void read_tensor(const safetensors::File& st, const safetensors::Entry& e,
                   std::unordered_map<std::string, std::string>& source) {
    using Op = Placement::Op;
    const std::string& file = st.path();
    const Placement p = layout_.place(e.name, file);
    if (p.op == Op::Skip) return;
    const std::string what = fmt::format("{}: tensor '{}' ({})", file, e.name, p.name);
    if (e.shape.empty() || e.elements() == 0)
      throw Error(what + " is empty; every tensor of a model has at least one value in each dimension");
    if (p.op == Op::Transpose && e.shape.size() != 2)
      throw Error(fmt::format("{} has {} dimensions; a Conv1D weight has 2 ([in, out])", what, e.shape.size()));
    const size_t es = static_cast<size_t>(dtype_block_bytes(e.dtype));
    uint64_t bytes = e.end - e.begin;
    DType dtype = e.dtype;
    // ne is innermost first: the stored shape reversed, or for a Conv1D weight [in][out] made
    // [out][in] by the transposition, {in, out}.
    std::vector<int64_t> ne(e.shape.rbegin(), e.shape.rend());
    const void* host = e.data;
    if (p.op == Op::Transpose) {
      ne = {e.shape[0], e.shape[1]};
      const int64_t n_in = e.shape[0], n_out = e.shape[1];
      std::vector<uint8_t>& dst = owned_.emplace_back(bytes);
      for (int64_t i = 0; i < n_in; ++i)
        for (int64_t o = 0; o < n_out; ++o)
          std::memcpy(dst.data() + (o * n_in + i) * es, e.data + (i * n_out + o) * es, es);
      host = dst.data();
      ++transposed_;
    } else if (p.op == Op::PermuteHeads) {
      host = permute_heads(e, p, what);
      ++permuted_;
    } else if (p.op == Op::GroupQkv) {
      host = group_qkv(e, p, what);
      ++grouped_;
    } else if (p.op == Op::PlusOne) {  // 1 + w in F32, whatever the file stores
      const size_t n = static_cast<size_t>(e.elements());
      std::vector<float> v(n);
      dequantize_row(e.dtype, e.data, v.data(), static_cast<int64_t>(n));
      for (float& x : v) x += 1.0f;
      std::vector<uint8_t>& dst = owned_.emplace_back(n * sizeof(float));
      std::memcpy(dst.data(), v.data(), dst.size());
      host = dst.data();
      dtype = DType::F32;
      bytes = dst.size();
      ++shifted_;
    } else if (reinterpret_cast<uintptr_t>(e.data) % es != 0) {
      // The format does not align tensors; the kernels read whole elements.
      host = owned_.emplace_back(e.data, e.data + bytes).data();
    }
    if (auto [it, fresh] = source.emplace(p.name, e.name); !fresh)
      throw Error(file + ": tensors '" + it->second + "' and '" + e.name + "' both map to " + p.name);
    tensors_.push_back({p.name, host_view(dtype, ne, host), e.begin, bytes});
  }

  // The stored rows (a bias's elements) renumbered: row r of the result is row from(r) of the file.
  template <class From>
  const void* reorder_rows(const safetensors::Entry& e, From from) {
    const int64_t rows = e.shape[0];
    const uint64_t row_bytes = (e.end - e.begin) / static_cast<uint64_t>(rows);
    std::vector<uint8_t>& dst = owned_.emplace_back(e.end - e.begin);
    for (int64_t r = 0; r < rows; ++r) std::memcpy(dst.data() + r * row_bytes, e.data + from(r) * row_bytes, row_bytes);
    return dst.data();
  }

  // Each head's rows (half, i) -> (i, half): Hugging Face rotates a head's two halves against each
  // other, llama.cpp's llama arch adjacent pairs; the same rotation, rows renumbered.
  const void* permute_heads(const safetensors::Entry& e, const Placement& p, const std::string& what) {
    const int64_t heads = p.heads, head = p.head_dim, half = head / 2;
    if (e.shape[0] != heads * head || head % 2)
      throw Error(fmt::format("{} has {} rows; config.json gives {} heads of {} (an even size)", what, e.shape[0], heads,
                              head));
    return reorder_rows(e, [&](int64_t r) {
      const int64_t h = r / head, i = r % head / 2, s = r % 2;
      return h * head + s * half + i;
    });
  }

  // GPT-NeoX's rows (h, {q,k,v}, d) -> ({q,k,v}, h, d).
  const void* group_qkv(const safetensors::Entry& e, const Placement& p, const std::string& what) {
    const int64_t heads = p.heads, head = p.head_dim;
    if (e.shape[0] != 3 * heads * head)
      throw Error(fmt::format("{} has {} rows; config.json gives {} heads of {}, so q, k and v hold {}", what,
                              e.shape[0], heads, head, 3 * heads * head));
    return reorder_rows(e, [&](int64_t r) {
      const int64_t part = r / (heads * head), h = r % (heads * head) / head, d = r % head;
      return (h * 3 + part) * head + d;
    });
  }

  void read_vocabulary(const fs::path& folder) {
    const int64_t rows = tensor_info("token_embd.weight")->view.ne[1];
    for (const auto& [key, id] : {std::pair{"bos_token_id", layout_.bos_token_id},
                                  std::pair{"eos_token_id", layout_.eos_token_id}})
      if (id && *id >= rows)
        throw Error(fmt::format("{}/config.json: {} {} is outside the vocabulary of {} tokens", folder.string(), key,
                                *id, rows));
    if (fs::exists(folder / "tokenizer.json")) {
      vocabulary_ = read_tokenizer_json({folder, rows, layout_.bos_token_id, layout_.eos_token_id}, meta_);
      return;
    }
    if (layout_.arch == "gpt2") return read_gpt2_vocabulary(folder, rows);
    vocabulary_ = "no tokenizer.json (no tokenizer)";
  }

  void read_gpt2_vocabulary(const fs::path& folder, int64_t rows) {
    const fs::path vocab_path = folder / "vocab.json", merges_path = folder / "merges.txt";
    if (!fs::exists(vocab_path)) {
      vocabulary_ = "no vocab.json (no tokenizer)";
      return;
    }
    std::vector<std::string> tokens = parse_vocab_json(read_text(vocab_path, kMaxVocabBytes), vocab_path.string());
    if (static_cast<int64_t>(tokens.size()) != rows)
      throw Error(fmt::format("{}: {} tokens, but transformer.wte.weight has {} rows", vocab_path.string(),
                              tokens.size(), rows));
    const auto& bos = layout_.bos_token_id;
    const auto& eos = layout_.eos_token_id;
    if (fs::exists(merges_path)) {
      std::vector<int32_t> types(tokens.size(), 1);  // normal
      for (const auto& id : {bos, eos})
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
    if (bos) meta_.add_u32("tokenizer.ggml.bos_token_id", static_cast<uint64_t>(*bos));
    if (eos) meta_.add_u32("tokenizer.ggml.eos_token_id", static_cast<uint64_t>(*eos));
  }

  std::string folder_;
  Layout layout_;
  std::vector<std::unique_ptr<safetensors::File>> files_;
  OwnedMeta meta_;
  std::vector<TensorInfo> tensors_;
  std::deque<std::vector<uint8_t>> owned_;       // transposed, permuted or realigned tensor bytes
  std::deque<std::vector<float>> generated_;     // tensors computed from config.json
  std::unordered_map<std::string_view, size_t> meta_index_, tensor_index_;
  int transposed_ = 0, permuted_ = 0, shifted_ = 0, grouped_ = 0;
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
