#include <memory>
#include <string>
#include <vector>

#include <semline/error.h>

#include "bpe.h"
#include "char_tokenizer.h"
#include "meta_reader.h"
#include "spm.h"
#include "wordpiece.h"
#include "tokenizers.h"

namespace semline::tokenizers {

namespace {

constexpr std::string_view kModelKey = "tokenizer.ggml.model";

// Reasons `variant` cannot tokenize for ctx's model, which must say tokenizer.ggml.model = serves.
std::vector<std::string> check(const StageContext& ctx, std::string_view variant, std::string_view serves) {
  if (!ctx.model) return {"no model to read the vocabulary from"};
  std::vector<std::string> reasons;
  try {
    std::optional<std::string_view> model = MetaReader(*ctx.model).find_string(kModelKey);
    if (!model)
      reasons.push_back(std::string(kModelKey) + " is missing from " + ctx.model->path());
    else if (*model != serves)
      reasons.push_back(std::string(kModelKey) + " is '" + std::string(*model) + "', " + std::string(variant) +
                        " serves '" + std::string(serves) + "'");
    else if (variant == "bpe")
      if (std::string problem = bpe_pre_problem(*ctx.model); !problem.empty()) reasons.push_back(problem);
  } catch (const Error& e) {
    reasons.push_back(e.what());
  }
  return reasons;
}

using MakeFn = std::unique_ptr<Tokenizer> (*)(const ModelView&, const LogFn&);

template <class T>
std::unique_ptr<Tokenizer> make(const ModelView& model, const LogFn& log) {
  return std::make_unique<T>(model, log);
}

StageEntry entry(MakeFn make_fn, std::string variant, std::string serves, std::string description) {
  StageEntry e;
  e.kind = StageKind::Tokenizer;
  e.variant = variant;
  e.backend = "any";
  e.description = std::move(description);
  e.supports = [variant, serves](const StageContext& ctx) { return check(ctx, variant, serves); };
  e.make_tokenizer = [make_fn, variant, serves](const StageContext& ctx) -> std::unique_ptr<Tokenizer> {
    std::vector<std::string> reasons = check(ctx, variant, serves);
    if (!reasons.empty()) throw Error("tokenizer " + variant + ": " + reasons.front());
    return make_fn(*ctx.model, ctx.log);
  };
  return e;
}

}  // namespace

void register_tokenizers(Registry& registry) {
  registry.add_stage(entry(make<SpmTokenizer>, "spm", "llama",
                           "SentencePiece BPE: score-ordered merges, byte fallback, dummy prefix "
                           "(tokenizer.ggml.model llama)"));
  registry.add_stage(entry(make<BpeTokenizer>, "bpe", "gpt2",
                           "byte-level BPE: the pre-tokenizer tokenizer.ggml.pre names, ranked merges "
                           "(tokenizer.ggml.model gpt2)"));
  registry.add_stage(entry(make_wordpiece_tokenizer, "wordpiece", "bert",
                           "WordPiece (BERT): lowercasing, accent-stripping normaliser, longest-piece spelling "
                           "(tokenizer.ggml.model bert)"));
  registry.add_stage(entry(make<CharTokenizer>, "char", "char",
                           "one token per UTF-8 character of a character-level vocabulary (tokenizer.ggml.model char)"));
}

}  // namespace semline::tokenizers
