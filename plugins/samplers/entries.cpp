#include "entries.h"

#include "samplers.h"

namespace semline::samplers {
namespace {

ParamSpec float_param(const char* name, double def, const char* doc, std::optional<double> min,
                      std::optional<double> max) {
  return ParamSpec{name, ParamType::Float, def, doc, min, max, {}};
}

ParamSpec int_param(const char* name, int64_t def, const char* doc, std::optional<double> min) {
  return ParamSpec{name, ParamType::Int, def, doc, min, std::nullopt, {}};
}

ParamSpec window_param() {
  return int_param("repeat_last_n", 64, "how many of the latest tokens the penalties look at; -1: all, 0: off", -1);
}

StageEntry entry(const char* variant, const char* description, std::vector<ParamSpec> params,
                 std::function<std::unique_ptr<Sampler>(const Params&)> make) {
  StageEntry e;
  e.kind = StageKind::Sampler;
  e.variant = variant;
  e.backend = "any";
  e.description = description;
  e.params = std::move(params);
  e.make_sampler = [make = std::move(make)](const StageContext& ctx) { return make(ctx.params); };
  return e;
}

}  // namespace

std::vector<StageEntry> sampler_entries() {
  std::vector<StageEntry> entries;
  entries.push_back(entry("greedy", "selects the candidate with the highest logit", {},
                          [](const Params&) { return std::make_unique<Greedy>(); }));
  entries.push_back(entry(
      "temperature", "divides the logits by a temperature",
      {float_param("temperature", 0.8, "below 1 sharpens, above 1 flattens; 0 keeps only the best", 0.0, std::nullopt)},
      [](const Params& p) { return std::make_unique<Temperature>(p.get_float("temperature")); }));
  entries.push_back(entry("top_k", "keeps the k candidates with the highest logits",
                          {int_param("top_k", 40, "how many candidates to keep; 0 keeps all", 0)},
                          [](const Params& p) { return std::make_unique<TopK>(p.get_int("top_k")); }));
  entries.push_back(entry(
      "top_p", "keeps the most likely candidates up to a total probability (nucleus sampling)",
      {float_param("top_p", 0.95, "the smallest set whose probabilities add up to at least this; never empty", 0.0, 1.0)},
      [](const Params& p) { return std::make_unique<TopP>(p.get_float("top_p")); }));
  entries.push_back(entry(
      "min_p", "drops candidates far less likely than the most likely one",
      {float_param("min_p", 0.05, "keeps candidates with probability >= min_p x the highest probability", 0.0, 1.0)},
      [](const Params& p) { return std::make_unique<MinP>(p.get_float("min_p")); }));
  entries.push_back(entry(
      "repetition_penalty", "penalises recent tokens: positive logits divided, negative multiplied (llama.cpp)",
      {float_param("repeat_penalty", 1.0, "the divisor/multiplier; 1 is off (as llama.cpp), above 1 discourages repeats", 0.01, 100.0),
       window_param()},
      [](const Params& p) {
        return std::make_unique<RepetitionPenalty>(p.get_float("repeat_penalty"), p.get_int("repeat_last_n"));
      }));
  entries.push_back(entry(
      "frequency_penalty", "lowers each recent token's logit by a penalty per occurrence",
      {float_param("frequency_penalty", 0.0, "subtracted from the logit once per occurrence in the window", -2.0, 2.0),
       window_param()},
      [](const Params& p) {
        return std::make_unique<CountPenalty>(p.get_float("frequency_penalty"), 0.0, p.get_int("repeat_last_n"));
      }));
  entries.push_back(entry(
      "presence_penalty", "lowers the logit of every recent token by a fixed penalty",
      {float_param("presence_penalty", 0.0, "subtracted once from the logit of every token in the window", -2.0, 2.0),
       window_param()},
      [](const Params& p) {
        return std::make_unique<CountPenalty>(0.0, p.get_float("presence_penalty"), p.get_int("repeat_last_n"));
      }));
  {
    StageEntry e = entry(
        "content_filter",
        "keeps banned strings, regular expressions and token ids out of the text, across token boundaries",
        {ParamSpec{"ban", ParamType::StringList, std::vector<std::string>{},
                   "strings the text must not contain; the token that would complete one is dropped", {}, {}, {}},
         ParamSpec{"ban_regex", ParamType::StringList, std::vector<std::string>{},
                   "regular expressions (Perl syntax) no text may match, judged like ban", {}, {}, {}},
         ParamSpec{"ban_ids", ParamType::IntList, std::vector<int64_t>{}, "token ids never to generate", 0.0, {}, {}},
         ParamSpec{"ignore_case", ParamType::Bool, false, "compare ASCII letters without case", {}, {}, {}},
         ParamSpec{"ban_window", ParamType::Int, int64_t{64}, "bytes of the text before a candidate a regular expression sees",
                   1.0, 4096.0, {}}},
        {});
    e.make_sampler = [](const StageContext& ctx) {
      const Params& p = ctx.params;
      return std::make_unique<ContentFilter>(
          ctx.tokenizer, BanList{p.get_list("ban"), p.get_list("ban_regex"), p.get_int_list("ban_ids"),
                                 p.get_bool("ignore_case"), p.get_int("ban_window")});
    };
    entries.push_back(std::move(e));
  }
  {
    StageEntry e = entry(
        "logit_bias", "adds a bias to the logits of chosen tokens (OpenAI's logit_bias)",
        {ParamSpec{"logit_bias_ids", ParamType::IntList, std::vector<int64_t>{}, "the token ids to bias", 0.0, {}, {}},
         ParamSpec{"logit_bias_values", ParamType::FloatList, std::vector<double>{},
                   "one bias per id, added to its logit (-100 all but bans it)", -100.0, 100.0, {}}},
        {});
    e.make_sampler = [](const StageContext& ctx) {
      return std::make_unique<LogitBias>(ctx.params.get_int_list("logit_bias_ids"),
                                         ctx.params.get_float_list("logit_bias_values"),
                                         ctx.tokenizer ? ctx.tokenizer->n_vocab() : 0);
    };
    entries.push_back(std::move(e));
  }
  entries.push_back(entry(
      "draw", "draws one candidate from the softmax of the remaining logits, seeded",
      {int_param("seed", 42, "the same seed draws the same tokens on every platform", 0)},
      [](const Params& p) { return std::make_unique<Draw>(static_cast<uint64_t>(p.get_int("seed"))); }));
  return entries;
}

}  // namespace semline::samplers
