#include "core/model/hf_tokenizer.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <unordered_map>

#include "core/model/hf_config.h"
#include "core/model/hf_json.h"
#include "semline/error.h"

namespace semline::hf {

namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMaxTokenizerBytes = uint64_t{256} << 20;
constexpr uint64_t kMaxConfigBytes = uint64_t{16} << 20;

// tokenizer.ggml.token_type values.
enum TokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// The pre-tokenizer patterns of tokenizer.json that semline's pre-tokenizers implement.
constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string shown(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 200 ? s.substr(0, 200) + "..." : s;
}

// j[key] when j is an object and it is a string, else "": for matching the shapes of known steps,
// where anything else means "not this shape".
std::string text_at(const json& j, std::string_view key) {
  const json* v = j.is_object() ? find(j, key) : nullptr;
  return v && v->is_string() ? v->get<std::string>() : "";
}

std::string type_of(const json* j) { return j ? text_at(*j, "type") : ""; }

// A ByteLevel pre-tokenizer with the options llama.cpp's byte-level BPE runs; its use_regex.
bool byte_level_regex(const json& j, const std::string& name) {
  if (flag(j, "add_prefix_space", false, name))
    throw Error(name + ": pre_tokenizer ByteLevel with add_prefix_space = true is not supported");
  return flag(j, "use_regex", true, name);
}

// The llama.cpp pre-tokenizer name of a byte-level BPE's pre_tokenizer.
std::string byte_level_pre(const json& tok, bool ignore_merges, const std::string& name) {
  const json* pre = find(tok, "pre_tokenizer");
  const std::string known =
      " is not one semline recognises (GPT-2's ByteLevel; Split with Llama 3's or Qwen2's pattern, then ByteLevel; "
      "StarCoder's Digits then ByteLevel)";
  if (!pre) throw Error(name + ": a byte-level BPE without a pre_tokenizer is not supported");
  const std::string type = type_of(pre);
  if (type == "ByteLevel" && byte_level_regex(*pre, name)) return ignore_merges ? "" : "gpt-2";
  const json* seq = type == "Sequence" ? find(*pre, "pretokenizers") : nullptr;
  if (seq && seq->is_array() && seq->size() == 2 && type_of(&(*seq)[1]) == "ByteLevel") {
    const json& first = (*seq)[0];
    const bool regex = byte_level_regex((*seq)[1], name);
    if (type_of(&first) == "Digits" && flag(first, "individual_digits", false, name) && regex && !ignore_merges)
      return "starcoder";
    if (type_of(&first) == "Split" && !regex && find_string(first, "behavior", name) == "Isolated" &&
        !flag(first, "invert", false, name)) {
      const json* pattern = find(first, "pattern");
      const json* r = pattern && pattern->is_object() ? find(*pattern, "Regex") : nullptr;
      if (r && r->is_string() && *r == kLlama3Pattern) return ignore_merges ? "llama-bpe" : "smaug-bpe";
      if (r && r->is_string() && *r == kQwen2Pattern && !ignore_merges) return "qwen2";
    }
  }
  throw Error(name + ": pre_tokenizer " + shown(*pre) + (ignore_merges ? " with ignore_merges" : "") + known);
}

// SentencePiece's space handling as tokenizer.json spells it: the normaliser Prepend("▁") +
// Replace(" ", "▁") of older conversions, or a Metaspace pre-tokenizer; whether it prepends.
bool metaspace_prefix(const json& tok, const std::string& name) {
  const json* norm = find(tok, "normalizer");
  const json* pre = find(tok, "pre_tokenizer");
  const std::string space = "\xE2\x96\x81";  // U+2581
  // Gemma: the Replace alone, no dummy prefix.
  if (norm && !pre && type_of(norm) == "Replace" && text_at(*norm, "content") == space && norm->contains("pattern") &&
      text_at((*norm)["pattern"], "String") == " ")
    return false;
  if (norm && !pre && type_of(norm) == "Sequence") {
    bool prepend = false, replace = false;
    const json* steps = find(*norm, "normalizers");
    for (const json& n : steps && steps->is_array() ? *steps : json::array()) {
      const std::string t = type_of(&n);
      if (t == "Prepend" && text_at(n, "prepend") == space) prepend = true;
      else if (t == "Replace" && text_at(n, "content") == space && n.contains("pattern") &&
               text_at(n["pattern"], "String") == " ")
        replace = true;
      else
        throw Error(name + ": normalizer step " + shown(n) + " is not supported for a SentencePiece BPE");
    }
    if (replace) return prepend;
  }
  if (!norm && pre && type_of(pre) == "Metaspace" && text_at(*pre, "replacement") == space &&
      !flag(*pre, "split", false, name)) {
    const std::string scheme = find_string(*pre, "prepend_scheme", name).value_or("always");
    if (scheme == "first" || scheme == "always") return true;
    if (scheme == "never") return false;
  }
  throw Error(name + ": a byte_fallback BPE whose normalizer " + (norm ? shown(*norm) : "null") + " and pre_tokenizer " +
              (pre ? shown(*pre) : "null") +
              " are not SentencePiece's (Prepend + Replace with \xE2\x96\x81, or Metaspace) is not supported");
}

// tokenizer_config.json's token entries are a string or {"content": ...}.
std::optional<std::string> token_text(const json& config, const char* key, const std::string& name) {
  const json* v = find(config, key);
  if (!v) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object() && v->contains("content") && (*v)["content"].is_string()) return (*v)["content"].get<std::string>();
  throw Error(fmt::format("{}: {} = {} must be a token's text or {{\"content\": ...}}", name, key, shown(*v)));
}

class Reader {
 public:
  Reader(const TokenizerFiles& files, OwnedMeta& meta) : f_(files), meta_(meta) {}

  std::string read() {
    const fs::path tok_path = f_.folder / "tokenizer.json";
    name_ = tok_path.string();
    const json tok = parse_object(read_text(tok_path, kMaxTokenizerBytes), name_);
    const json* model = find(tok, "model");
    if (!model || !model->is_object()) throw Error(name_ + ": no model object");
    const std::string type = type_of(model);
    if (type != "BPE")
      throw Error(name_ + ": model.type \"" + type + "\" is not supported; semline reads BPE tokenizer.json files " +
                  "(byte-level, or SentencePiece's with byte_fallback)");
    if (flag(*model, "fuse_unk", false, name_) && !flag(*model, "byte_fallback", false, name_))
      throw Error(name_ + ": model.fuse_unk without byte_fallback is not supported");
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix", "dropout"})
      if (const json* v = find(*model, k);
          v && !(v->is_string() && v->get<std::string>().empty()) && !(v->is_number() && v->get<double>() == 0))
        throw Error(name_ + ": model." + k + " = " + shown(*v) + " is not supported");
    read_vocab(*model);
    read_merges(*model);
    read_added(tok);
    const fs::path cfg_path = f_.folder / "tokenizer_config.json";
    const json cfg = fs::exists(cfg_path) ? parse_object(read_text(cfg_path, kMaxConfigBytes), cfg_path.string())
                                          : json::object();
    cfg_name_ = cfg_path.string();

    const bool spm = flag(*model, "byte_fallback", false, name_);
    std::string what;
    if (spm) {
      bool prefix = metaspace_prefix(tok, name_);
      if (const json* p = find(cfg, "add_prefix_space"); p && p->is_boolean()) prefix = p->get<bool>();
      mark_spm_types(*model);
      meta_.add_string("tokenizer.ggml.model", "llama");
      meta_.add_string("tokenizer.ggml.pre", "default");
      meta_.add_strings("tokenizer.ggml.tokens", tokens_);
      meta_.add_f32s("tokenizer.ggml.scores", spm_scores());
      meta_.add_i32s("tokenizer.ggml.token_type", types_);
      meta_.add_bool("tokenizer.ggml.add_space_prefix", prefix);
      what = "tokenizer.json (SentencePiece BPE)";
    } else {
      if (const json* norm = find(tok, "normalizer")) {
        // Qwen2's NFC: llama.cpp's qwen2 tokenizer does not normalise either.
        if (type_of(norm) != "NFC") throw Error(name_ + ": normalizer " + shown(*norm) + " is not supported for a byte-level BPE");
        spdlog::info("{}: the NFC normaliser is not applied (as llama.cpp)", name_);
      }
      const std::string pre = byte_level_pre(tok, flag(*model, "ignore_merges", false, name_), name_);
      meta_.add_string("tokenizer.ggml.model", "gpt2");
      meta_.add_string("tokenizer.ggml.pre", pre);
      meta_.add_strings("tokenizer.ggml.tokens", tokens_);
      meta_.add_i32s("tokenizer.ggml.token_type", types_);
      meta_.add_strings("tokenizer.ggml.merges", merges_);
      what = "tokenizer.json (byte-level BPE, pre " + pre + ")";
    }
    read_specials(tok, cfg);
    read_chat_template(cfg);
    return what;
  }

 private:
  void read_vocab(const json& model) {
    const json* vocab = find(model, "vocab");
    if (!vocab || !vocab->is_object()) throw Error(name_ + ": model.vocab must be an object of token: id");
    tokens_.resize(static_cast<size_t>(f_.n_vocab));
    types_.assign(tokens_.size(), kUnused);
    std::vector<bool> taken(tokens_.size(), false);
    for (auto it = vocab->begin(); it != vocab->end(); ++it) {
      if (!it->is_number_unsigned()) throw Error(name_ + ": the id of " + as_json_string(it.key()) + " is " + shown(*it));
      place(it->get<uint64_t>(), it.key(), kNormal, taken, false);
    }
    for (size_t id = 0; id < tokens_.size(); ++id)
      if (!taken[id]) tokens_[id] = fmt::format("[PAD{}]", id);
    taken_ = std::move(taken);
  }

  // An added token may restate a vocabulary entry, or replace it (as transformers' vocabulary
  // and llama.cpp's converter do).
  void place(uint64_t id, const std::string& text, int32_t type, std::vector<bool>& taken, bool added) {
    const char* where = added ? "added_tokens" : "model.vocab";
    if (id >= tokens_.size())
      throw Error(fmt::format("{}: {} gives {} the id {}, outside the model's vocabulary of {} (config.json's "
                              "vocab_size)",
                              name_, where, as_json_string(text), id, tokens_.size()));
    if (taken[id] && tokens_[id] != text) {
      if (!added)
        throw Error(fmt::format("{}: id {} is given to both {} and {}", name_, id, as_json_string(tokens_[id]),
                                as_json_string(text)));
      spdlog::warn("{}: added token {} replaces {} at id {}", name_, as_json_string(text), as_json_string(tokens_[id]), id);
      index_.erase(tokens_[id]);
    }
    taken[id] = true;
    tokens_[id] = text;
    types_[id] = type;
    index_[text] = static_cast<int64_t>(id);
  }

  void read_merges(const json& model) {
    const json* merges = find(model, "merges");
    if (!merges) return;
    if (!merges->is_array()) throw Error(name_ + ": model.merges must be a list");
    merges_.reserve(merges->size());
    for (const json& m : *merges) {
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == 0 || sp == std::string::npos || sp + 1 == s.size() || s.find(' ', sp + 1) != std::string::npos)
          throw Error(fmt::format("{}: merge {} (rank {}) is not two pieces separated by one space", name_,
                                  as_json_string(s), merges_.size()));
        merges_.push_back(s);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        // The pair form (transformers 4.45+), which allows spaces: llama.cpp writes a space inside a
        // piece as U+0120 ("Ġ"), as byte-level BPE spells it.
        auto piece = [](std::string p) {
          for (size_t at; (at = p.find(' ')) != std::string::npos;) p.replace(at, 1, "\xC4\xA0");
          return p;
        };
        merges_.push_back(piece(m[0].get<std::string>()) + " " + piece(m[1].get<std::string>()));
      } else {
        throw Error(fmt::format("{}: merge {} (rank {}) is neither \"a b\" nor [\"a\", \"b\"]", name_, shown(m),
                                merges_.size()));
      }
    }
  }

  void read_added(const json& tok) {
    const json* added = find(tok, "added_tokens");
    if (!added) return;
    if (!added->is_array()) throw Error(name_ + ": added_tokens must be a list");
    for (const json& a : *added) {
      const json* id = a.is_object() ? find(a, "id") : nullptr;
      const json* content = a.is_object() ? find(a, "content") : nullptr;
      if (!id || !id->is_number_unsigned() || !content || !content->is_string())
        throw Error(name_ + ": added token " + shown(a) + " needs an id and a content");
      const std::string text = content->get<std::string>();
      // As llama.cpp's converter: special added tokens are control tokens, the rest user-defined.
      const int32_t type = flag(a, "special", false, name_) ? kControl : kUserDefined;
      place(id->get<uint64_t>(), text, type, taken_, true);
    }
  }

  void mark_spm_types(const json& model) {
    for (size_t id = 0; id < tokens_.size(); ++id) {
      const std::string& t = tokens_[id];
      if (types_[id] == kNormal && t.size() == 6 && t.rfind("<0x", 0) == 0 && t[5] == '>' &&
          std::isxdigit(static_cast<unsigned char>(t[3])) && std::isxdigit(static_cast<unsigned char>(t[4])))
        types_[id] = kByte;
    }
    if (auto unk = find_string(model, "unk_token", name_)) {
      auto it = index_.find(*unk);
      if (it == index_.end()) throw Error(name_ + ": model.unk_token " + as_json_string(*unk) + " is not in the vocabulary");
      types_[static_cast<size_t>(it->second)] = kUnknown;
      unk_id_ = it->second;
    }
  }

  // SentencePiece merges the adjacent pair whose result scores highest; HF merges the pair of
  // lowest rank. A piece's score is minus the rank of the first merge that makes it; pieces no
  // merge makes (characters, bytes, special tokens) score as SentencePiece scores them: 0, and
  // unused pads -1000 as llama.cpp pads them.
  std::vector<float> spm_scores() const {
    std::vector<float> scores(tokens_.size(), 0.0f);
    std::vector<bool> made(tokens_.size(), false);
    for (size_t rank = 0; rank < merges_.size(); ++rank) {
      const std::string& m = merges_[rank];
      const size_t sp = m.find(' ');
      auto it = index_.find(m.substr(0, sp) + m.substr(sp + 1));
      if (it == index_.end())
        throw Error(fmt::format("{}: merge {} (rank {}) makes a piece that is not in the vocabulary", name_,
                                as_json_string(m), rank));
      const auto id = static_cast<size_t>(it->second);
      if (!made[id]) scores[id] = -static_cast<float>(rank + 1);
      made[id] = true;
    }
    for (size_t id = 0; id < tokens_.size(); ++id)
      if (types_[id] == kUnused) scores[id] = -1000.0f;
    return scores;
  }

  std::optional<int64_t> id_of(const std::optional<std::string>& text, const char* key) const {
    if (!text) return std::nullopt;
    auto it = index_.find(*text);
    if (it == index_.end())
      throw Error(cfg_name_ + ": " + key + " " + as_json_string(*text) + " is not a token of tokenizer.json");
    return it->second;
  }

  void read_specials(const json& tok, const json& cfg) {
    std::optional<int64_t> bos = id_of(token_text(cfg, "bos_token", cfg_name_), "bos_token");
    std::optional<int64_t> eos = id_of(token_text(cfg, "eos_token", cfg_name_), "eos_token");
    const std::optional<int64_t> unk = id_of(token_text(cfg, "unk_token", cfg_name_), "unk_token");
    const std::optional<int64_t> pad = id_of(token_text(cfg, "pad_token", cfg_name_), "pad_token");
    if (!bos) bos = f_.bos_token_id;
    if (!eos) eos = f_.eos_token_id;
    // What the post-processor adds around a text, where tokenizer_config.json does not say.
    std::optional<bool> add_bos = cfg.contains("add_bos_token") ? std::optional(flag(cfg, "add_bos_token", false, cfg_name_))
                                                                : std::nullopt;
    std::optional<bool> add_eos = cfg.contains("add_eos_token") ? std::optional(flag(cfg, "add_eos_token", false, cfg_name_))
                                                                : std::nullopt;
    if (const json* post = find(tok, "post_processor"); post && (!add_bos || !add_eos)) {
      const json* single = type_of(post) == "TemplateProcessing" ? find(*post, "single") : nullptr;
      auto special_at = [&](size_t i) -> std::optional<int64_t> {
        if (!single || !single->is_array() || single->size() < 2 || i >= single->size()) return std::nullopt;
        const json& piece = (*single)[i];
        if (!piece.is_object() || !piece.contains("SpecialToken")) return std::nullopt;
        return id_of(text_at(piece["SpecialToken"], "id"), "post_processor's special token");
      };
      if (!add_bos) add_bos = bos && special_at(0) == bos;
      if (!add_eos) add_eos = eos && single && special_at(single->size() - 1) == eos;
    }
    for (const auto& [key, id] : {std::pair{"bos", bos}, std::pair{"eos", eos}, std::pair{"unknown", unk ? unk : unk_id_},
                                  std::pair{"padding", pad}}) {
      if (!id) continue;
      if (*id >= f_.n_vocab)
        throw Error(fmt::format("{}: the {} token id {} is outside the vocabulary of {}", cfg_name_, key, *id, f_.n_vocab));
      meta_.add_u32(fmt::format("tokenizer.ggml.{}_token_id", key), static_cast<uint64_t>(*id));
    }
    if (add_bos) meta_.add_bool("tokenizer.ggml.add_bos_token", *add_bos);
    if (add_eos) meta_.add_bool("tokenizer.ggml.add_eos_token", *add_eos);
  }

  void read_chat_template(const json& cfg) {
    std::optional<std::string> tmpl;
    if (const json* t = find(cfg, "chat_template")) {
      if (t->is_string()) tmpl = t->get<std::string>();
      else if (t->is_array())  // [{"name": ..., "template": ...}]: the default one
        for (const json& named : *t)
          if (text_at(named, "name") == "default" && named.contains("template") &&
              named["template"].is_string())
            tmpl = named["template"].get<std::string>();
      if (!tmpl) throw Error(cfg_name_ + ": chat_template must be a text or a list holding one named \"default\"");
    } else if (const fs::path jinja = f_.folder / "chat_template.jinja"; fs::exists(jinja)) {
      tmpl = read_text(jinja, kMaxConfigBytes);
    }
    if (tmpl) meta_.add_string("tokenizer.chat_template", *tmpl);
  }

  const TokenizerFiles& f_;
  OwnedMeta& meta_;
  std::string name_, cfg_name_;
  std::vector<std::string> tokens_, merges_;
  std::vector<int32_t> types_;
  std::vector<bool> taken_;
  std::unordered_map<std::string, int64_t> index_;
  std::optional<int64_t> unk_id_;
};

}  // namespace

std::string read_tokenizer_json(const TokenizerFiles& files, OwnedMeta& meta) {
  try {
    return Reader(files, meta).read();
  } catch (const json::exception& e) {
    // A shape the checks above did not foresee: still one error naming the file.
    throw Error((files.folder / "tokenizer.json").string() + ": unexpected JSON: " + e.what());
  }
}

}  // namespace semline::hf
