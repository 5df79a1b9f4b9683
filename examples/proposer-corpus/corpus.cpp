// Corpus lookup: a speculative decoding proposer that drafts from a text of one's own.
//
// The text (a file: documentation an answer will quote, the code being edited, earlier answers
// to the same questions) is tokenized once with the model's tokenizer and indexed by its n-grams.
// For each sequence, the longest suffix of max_match tokens down to min_match that occurs in the
// text proposes the tokens that followed its first occurrence there. Drafts depend only on the
// sequence, so the engine's verification keeps the model's output unchanged: the corpus buys
// speed where the answer repeats it, and costs one wasted position per draft where it does not.
#include <semline/plugin.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <unordered_map>

namespace {

class CorpusProposer final : public semline::Proposer {
 public:
  CorpusProposer(std::vector<int32_t> corpus, int32_t min_match, int32_t max_match)
      : corpus_(std::move(corpus)), min_(min_match), max_(max_match) {
    // Each n-gram's first occurrence, for every length looked up.
    for (int32_t n = min_; n <= max_; ++n)
      for (size_t at = 0; at + static_cast<size_t>(n) < corpus_.size(); ++at)
        first_.try_emplace(key(std::span<const int32_t>(corpus_).subspan(at, static_cast<size_t>(n))), at);
  }

  void propose(std::span<semline::DraftRequest> requests) override {
    for (semline::DraftRequest& r : requests) {
      const size_t size = r.tokens.size();
      for (int32_t n = std::min<int32_t>(max_, static_cast<int32_t>(size)); n >= min_; --n) {
        const auto suffix = r.tokens.subspan(size - static_cast<size_t>(n));
        const auto hit = first_.find(key(suffix));
        // A hash names a length and its tokens; the tokens are compared to rule out a collision.
        if (hit == first_.end() || !std::equal(suffix.begin(), suffix.end(), corpus_.begin() + hit->second)) continue;
        const size_t from = hit->second + static_cast<size_t>(n);
        const size_t take = std::min(static_cast<size_t>(r.k), corpus_.size() - from);
        r.draft.assign(corpus_.begin() + from, corpus_.begin() + from + take);
        break;
      }
    }
  }

  void release(uint64_t) override {}  // nothing is kept per sequence

 private:
  static uint64_t key(std::span<const int32_t> tokens) {
    uint64_t h = 0xcbf29ce484222325ull ^ tokens.size();  // FNV-1a over the ids
    for (int32_t t : tokens) h = (h ^ static_cast<uint32_t>(t)) * 0x100000001b3ull;
    return h;
  }

  std::vector<int32_t> corpus_;
  int32_t min_, max_;
  std::unordered_map<uint64_t, size_t> first_;
};

void register_all(semline::Registry& r) {
  semline::ProposerEntry e;
  e.name = "corpus";
  e.description = "drafts what followed the sequence's longest suffix in a text file of one's own";
  e.params = {
      {"corpus", semline::ParamType::String, std::string(), "the text file drafts are looked up in", {}, {}, {}},
      {"min_match", semline::ParamType::Int, int64_t{2}, "shortest suffix looked up, in tokens", 1.0, 64.0, {}},
      {"max_match", semline::ParamType::Int, int64_t{6}, "longest suffix looked up, in tokens", 1.0, 64.0, {}},
  };
  e.make = [](const semline::ProposerContext& ctx) -> std::unique_ptr<semline::Proposer> {
    const std::string& path = ctx.params.get_string("corpus");
    const auto min_match = static_cast<int32_t>(ctx.params.get_int("min_match"));
    const auto max_match = static_cast<int32_t>(ctx.params.get_int("max_match"));
    if (path.empty()) throw semline::Error("speculative.corpus: name the text file to draft from");
    if (min_match > max_match)
      throw semline::Error("speculative.min_match = " + std::to_string(min_match) + " is above max_match = " +
                           std::to_string(max_match));
    std::ifstream in(path, std::ios::binary);
    if (!in) throw semline::Error("speculative.corpus = " + path + ": cannot be read");
    std::ostringstream text;
    text << in.rdbuf();
    std::vector<int32_t> tokens = ctx.tokenizer->encode(text.str(), false, false);
    ctx.log(semline::LogLevel::Info, path + ": " + std::to_string(tokens.size()) + " tokens to draft from");
    return std::make_unique<CorpusProposer>(std::move(tokens), min_match, max_match);
  };
  r.add_proposer(std::move(e));
}

}  // namespace

SEMLINE_PLUGIN("proposer-corpus", CORPUS_PLUGIN_VERSION,
               "Speculative decoding from a text file of one's own (an out-of-tree example)", register_all)
