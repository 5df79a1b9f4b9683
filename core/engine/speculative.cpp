#include "core/engine/speculative.h"

#include <algorithm>

#include <semline/error.h>

#include "core/engine/draft_proposer.h"
#include "core/graph/graph.h"
#include "core/host/plugin_log.h"
#include "core/util/text.h"

namespace semline {

NgramProposer::NgramProposer(int32_t ngram_min, int32_t ngram_max) : min_(ngram_min), max_(ngram_max) {
  if (ngram_min < 1 || ngram_max < ngram_min)
    throw Error("speculative: ngram_min = " + std::to_string(ngram_min) + " and ngram_max = " +
                std::to_string(ngram_max) + ": expected 1 <= ngram_min <= ngram_max");
}

void NgramProposer::propose(std::span<DraftRequest> requests) {
  for (DraftRequest& r : requests) propose(r.tokens, r.k, r.draft);
}

void NgramProposer::propose(std::span<const int32_t> tokens, int32_t k, std::vector<int32_t>& out) const {
  const int64_t n = static_cast<int64_t>(tokens.size());
  for (int64_t len = std::min<int64_t>(max_, n - 1); len >= min_; --len) {
    const auto suffix = tokens.subspan(static_cast<size_t>(n - len));
    // The most recent earlier occurrence: its continuation is the likeliest to hold again.
    for (int64_t start = n - len - 1; start >= 0; --start) {
      if (!std::equal(suffix.begin(), suffix.end(), tokens.begin() + start)) continue;
      const int64_t from = start + len;
      const int64_t take = std::min<int64_t>(k, n - from);
      out.insert(out.end(), tokens.begin() + from, tokens.begin() + from + take);
      return;
    }
  }
}

const std::vector<std::string>& own_proposer_names() {
  static const std::vector<std::string> names = {"none", "ngram", "draft"};
  return names;
}

namespace {

std::string at(const SourcePos& pos) { return pos.file.empty() ? "" : pos.str() + ": "; }

// The engine's own proposers take only the keys [speculative] itself knows.
void refuse_params(const SpeculativeOptions& opt) {
  if (opt.params.empty()) return;
  const auto& [key, value] = *opt.params.begin();
  static const std::vector<std::string> keys = {"proposer", "k", "adaptive", "ngram_min", "ngram_max", "draft_model"};
  throw Error(at(value.pos) + "speculative." + key + ": the " + opt.proposer + " proposer takes no such key" +
              did_you_mean(key, keys) + "; [speculative] keys: " + join(keys));
}

}  // namespace

std::unique_ptr<Proposer> make_proposer(const SpeculativeOptions& opt, const Pipeline& line, int32_t max_seqs) {
  if (opt.k < 1) throw Error("speculative: k = " + std::to_string(opt.k) + ": expected 1 or more draft tokens");
  if (opt.proposer == "none" || opt.proposer == "ngram" || opt.proposer == "draft") refuse_params(opt);
  if (opt.proposer == "none") return nullptr;
  // Rejected drafts are taken back; a recurrent state (Mamba) has no way back.
  auto no_way_back = [&](const Pipeline& p, const char* which) {
    if (p.recurrent())
      throw Error(at(opt.proposer_pos) + "speculative.proposer = \"" + opt.proposer + "\": the " + which +
                  " model has recurrent layers (" + p.hp().arch + "), whose state cannot be rolled back to drop "
                  "rejected drafts; use proposer = \"none\"");
  };
  no_way_back(line, "target");
  if (opt.proposer == "draft" && opt.draft) no_way_back(*opt.draft, "draft");
  if (opt.proposer == "ngram") return std::make_unique<NgramProposer>(opt.ngram_min, opt.ngram_max);
  if (opt.proposer == "draft") {
    if (!opt.draft) throw Error(at(opt.proposer_pos) + "speculative.proposer = \"draft\" needs a draft model (speculative.draft_model, or --draft FILE)");
    return std::make_unique<DraftProposer>(*opt.draft);
  }
  const RegisteredProposer* e = line.registry().find_proposer(opt.proposer);
  if (!e) {
    std::vector<std::string> names = own_proposer_names();
    for (const RegisteredProposer* p : line.registry().proposers()) names.push_back(p->entry.name);
    throw Error(at(opt.proposer_pos) + "speculative.proposer = \"" + opt.proposer + "\": no such proposer" +
                did_you_mean(opt.proposer, names) + "; known: " + join(names) + " (`semline plugins` lists what plugins add)");
  }
  ProposerContext ctx;
  ctx.params = validate_params(opt.params, e->entry.params, "proposer " + opt.proposer);
  ctx.tokenizer = &line.tokenizer();
  ctx.n_vocab = line.hp().n_vocab;
  ctx.k = opt.k;
  ctx.max_seqs = max_seqs;
  ctx.log = plugin_log(e->plugin);
  return e->entry.make(ctx);
}

void DraftLength::update(int32_t drafted, int32_t accepted) {
  if (!adaptive_ || drafted == 0) return;
  if (accepted == drafted) k_ = std::min(max_, k_ + 1);
  else if (accepted == 0) k_ = std::max(1, k_ - 1);
}

}  // namespace semline
