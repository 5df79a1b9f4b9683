#include "core/engine/sampling.h"

#include <algorithm>
#include <map>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace semline {
namespace {

const std::vector<std::string> kPenalties = {"repetition_penalty", "frequency_penalty", "presence_penalty"};

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

// One request parameter: the sampler parameter it sets and the chain members that read it.
struct Setting {
  std::string param;
  ParamValue value;
  std::vector<std::string> members;
};

std::vector<Setting> settings_of(const SamplingParams& p) {
  std::vector<Setting> out;
  auto add = [&](const char* param, const auto& v, std::vector<std::string> members) {
    if (v) out.push_back({param, ParamValue(*v), std::move(members)});
  };
  add("temperature", p.temperature, {"temperature"});
  add("top_k", p.top_k, {"top_k"});
  add("top_p", p.top_p, {"top_p"});
  add("min_p", p.min_p, {"min_p"});
  add("repeat_penalty", p.repeat_penalty, {"repetition_penalty"});
  add("frequency_penalty", p.frequency_penalty, {"frequency_penalty"});
  add("presence_penalty", p.presence_penalty, {"presence_penalty"});
  add("repeat_last_n", p.repeat_last_n, kPenalties);
  return out;
}

bool reaches(const Setting& s, const std::vector<std::string>& chain) {
  return std::any_of(s.members.begin(), s.members.end(), [&](const std::string& m) { return contains(chain, m); });
}

}  // namespace

int32_t sample_chain(std::vector<std::unique_ptr<Sampler>>& chain, std::span<const float> logits,
                     std::span<const int32_t> history, Candidates& c) {
  const size_t n = logits.size();
  c.items.resize(n);
  size_t i = 0;
#if defined(__SSE2__)
  // Four candidates (48 bytes) in three 16-byte stores rather than twelve 4-byte ones: a batch of
  // rows fills a vocabulary-long set each, every step.
  static_assert(sizeof(Candidate) == 12);
  auto* out = reinterpret_cast<__m128i*>(c.items.data());
  const __m128i keep01_3 = _mm_setr_epi32(-1, -1, 0, -1), keep0_23 = _mm_setr_epi32(-1, 0, -1, -1),
                keep_12 = _mm_setr_epi32(0, -1, -1, 0), four = _mm_set1_epi32(4);
  for (__m128i id = _mm_setr_epi32(0, 1, 2, 3); i + 4 <= n; i += 4, out += 3, id = _mm_add_epi32(id, four)) {
    const __m128i l = _mm_castps_si128(_mm_loadu_ps(logits.data() + i));
    const __m128i il01 = _mm_unpacklo_epi32(id, l), il23 = _mm_unpackhi_epi32(id, l);  // id0 l0 id1 l1, id2 l2 id3 l3
    // id0 l0 0 id1 | l1 0 id2 l2 | 0 id3 l3 0
    _mm_storeu_si128(out, _mm_and_si128(_mm_shuffle_epi32(il01, _MM_SHUFFLE(2, 0, 1, 0)), keep01_3));
    const __m128 mid = _mm_shuffle_ps(_mm_castsi128_ps(il01), _mm_castsi128_ps(il23), _MM_SHUFFLE(1, 0, 3, 3));
    _mm_storeu_si128(out + 1, _mm_and_si128(_mm_castps_si128(mid), keep0_23));
    _mm_storeu_si128(out + 2, _mm_and_si128(_mm_shuffle_epi32(il23, _MM_SHUFFLE(3, 3, 2, 2)), keep_12));
  }
#endif
  for (; i < n; ++i) c.items[i] = Candidate{static_cast<int32_t>(i), logits[i], 0.0f};
  c.sorted = false;
  c.selected = -1;
  for (auto& s : chain) s->apply(c, history);
  if (c.selected < 0 || c.selected >= static_cast<int32_t>(c.items.size()))
    throw Error("the sampler chain selected no token: end it with 'greedy' or 'draw'");
  return c.items[static_cast<size_t>(c.selected)].id;
}

bool SamplingParams::empty() const {
  return !greedy && !temperature && !top_p && !min_p && !repeat_penalty && !frequency_penalty && !presence_penalty &&
         !top_k && !repeat_last_n && !seed && logit_bias.empty();
}

const std::vector<std::string>& sampling_chain() {
  static const std::vector<std::string> chain = {"repetition_penalty", "frequency_penalty", "presence_penalty", "top_k",
                                                 "top_p", "min_p", "temperature", "draw"};
  return chain;
}

SamplerFactory::SamplerFactory(const PipelineGraph& graph, const StageRegistry& registry, const Tokenizer& tokenizer)
    : graph_(graph), registry_(registry), tokenizer_(tokenizer) {
  for (const GraphNode& n : graph.sampler_chain) configured_.push_back(n.impl->entry.variant);
}

std::vector<std::string> SamplerFactory::chain_for(const SamplingParams& p) const {
  if (p.empty()) return configured_;
  const std::vector<Setting> settings = settings_of(p);
  std::vector<std::string> chain;
  if (!p.logit_bias.empty()) chain.push_back("logit_bias");
  for (const std::string& m : configured_)  // the config's own filters
    if (m != "greedy" && m != "draw" && m != "logit_bias" && !contains(sampling_chain(), m)) chain.push_back(m);
  const bool greedy = p.greedy || (p.temperature && *p.temperature == 0);
  if (greedy) {
    for (const std::string& pen : kPenalties)
      for (const Setting& s : settings)
        if (s.members == std::vector<std::string>{pen}) chain.push_back(pen);
    chain.push_back("greedy");
    return chain;
  }
  const bool covered = std::all_of(settings.begin(), settings.end(), [&](const Setting& s) {
    return reaches(s, configured_);
  }) && (!p.seed || contains(configured_, "draw"));
  if (covered) {
    for (const std::string& m : configured_)
      if (!contains(chain, m)) chain.push_back(m);
  } else {
    chain.insert(chain.end(), sampling_chain().begin(), sampling_chain().end());
  }
  return chain;
}

std::vector<std::unique_ptr<Sampler>> SamplerFactory::make(const SamplingParams& p, int32_t index) const {
  const std::vector<std::string> chain = chain_for(p);
  const std::vector<Setting> settings = settings_of(p);
  const SourcePos pos{"request", 0, 0};
  std::vector<std::unique_ptr<Sampler>> out;
  for (const std::string& name : chain) {
    const RegisteredStage* e = registry_.find(StageKind::Sampler, name, "any");
    if (!e) throw Error("sampler '" + name + "' is not registered (is the samplers plugin loaded?)");
    // The config's values for a member it has, then the request's.
    std::map<std::string, ConfigValue> given;
    for (const GraphNode& n : graph_.sampler_chain)
      if (n.impl->entry.variant == name) {
        for (const auto& [k, v] : n.params.values) given[k] = ConfigValue{v, pos};
        break;
      }
    for (const Setting& s : settings)
      if (contains(s.members, name)) given[s.param] = ConfigValue{s.value, pos};
    if (name == "draw") {
      int64_t seed = 42;
      if (p.seed) seed = *p.seed;
      else if (auto it = given.find("seed"); it != given.end()) seed = std::get<int64_t>(it->second.value);
      given["seed"] = ConfigValue{ParamValue(seed + index), pos};
    }
    if (name == "logit_bias") {
      std::vector<int64_t> ids;
      std::vector<double> values;
      for (const auto& [id, bias] : p.logit_bias) ids.push_back(id), values.push_back(bias);
      given["logit_bias_ids"] = ConfigValue{ids, pos};
      given["logit_bias_values"] = ConfigValue{values, pos};
    }
    StageContext ctx;
    ctx.station = "sampler." + name;
    ctx.params = validate_params(given, e->entry.params, "sampler " + name);
    ctx.tokenizer = &tokenizer_;
    out.push_back(e->entry.make_sampler(ctx));
  }
  return out;
}

}  // namespace semline
