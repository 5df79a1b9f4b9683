#include "core/host/guard.h"

#include <exception>
#include <functional>
#include <utility>

namespace semline {
namespace {

// Errors are one line; a plugin's multi-line what() is folded rather than trusted.
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

// Runs plugin code; whatever it throws leaves as one semline::Error starting with `prefix`.
template <class F>
decltype(auto) guarded_call(const std::string& prefix, F&& f) {
  try {
    return std::forward<F>(f)();
  } catch (const std::exception& e) {
    throw Error(prefix + one_line(e.what()));
  } catch (...) {
    throw Error(prefix + "threw something that is not a std::exception");
  }
}

template <class R, class... A>
void guard(std::function<R(A...)>& fn, const std::string& prefix) {
  if (!fn) return;
  fn = [inner = std::move(fn), prefix](A... args) -> R {
    return guarded_call(prefix, [&]() -> R { return inner(std::forward<A>(args)...); });
  };
}

// The objects a plugin's factories make are plugin code too: each is wrapped so that every call
// into it is guarded the same way.

class GuardedStage final : public Stage {
 public:
  GuardedStage(std::unique_ptr<Stage> inner, std::string prefix) : inner_(std::move(inner)), prefix_(std::move(prefix)) {}
  void forward(const Tensor& in, const Tensor& out, const Step& step) override {
    guarded_call(prefix_, [&] { inner_->forward(in, out, step); });
  }
  StageCost cost(const Batch& batch) const override {
    return guarded_call(prefix_, [&] { return inner_->cost(batch); });
  }
  int32_t kv_window() const override {
    return guarded_call(prefix_, [&] { return inner_->kv_window(); });
  }
  std::vector<int64_t> state_sizes() const override {
    return guarded_call(prefix_, [&] { return inner_->state_sizes(); });
  }

 private:
  std::unique_ptr<Stage> inner_;
  std::string prefix_;
};

class GuardedTokenizer final : public Tokenizer {
 public:
  GuardedTokenizer(std::unique_ptr<Tokenizer> inner, std::string prefix)
      : inner_(std::move(inner)), prefix_(std::move(prefix)) {}
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const override {
    return guarded_call(prefix_, [&] { return inner_->encode(text, add_bos, parse_special); });
  }
  std::string token_bytes(int32_t id) const override {
    return guarded_call(prefix_, [&] { return inner_->token_bytes(id); });
  }
  std::string decode(std::span<const int32_t> ids) const override {
    return guarded_call(prefix_, [&] { return inner_->decode(ids); });
  }
  std::string piece(int32_t id) const override {
    return guarded_call(prefix_, [&] { return inner_->piece(id); });
  }
  int32_t n_vocab() const override {
    return guarded_call(prefix_, [&] { return inner_->n_vocab(); });
  }
  int32_t bos() const override {
    return guarded_call(prefix_, [&] { return inner_->bos(); });
  }
  int32_t eos() const override {
    return guarded_call(prefix_, [&] { return inner_->eos(); });
  }
  bool is_eog(int32_t id) const override {
    return guarded_call(prefix_, [&] { return inner_->is_eog(id); });
  }

 private:
  std::unique_ptr<Tokenizer> inner_;
  std::string prefix_;
};

// Also holds a sampler to the Candidates contract (stage.h) where breaking it would go unnoticed:
// emptying the set, or selecting outside it.
class GuardedSampler final : public Sampler {
 public:
  GuardedSampler(std::unique_ptr<Sampler> inner, std::string prefix)
      : inner_(std::move(inner)), prefix_(std::move(prefix)) {}
  void apply(Candidates& c, std::span<const int32_t> history) override {
    const bool had_some = !c.items.empty();
    guarded_call(prefix_, [&] { inner_->apply(c, history); });
    if (had_some && c.items.empty())
      throw Error(prefix_ + "left no candidate (a sampler must keep at least one; see Candidates in <semline/stage.h>)");
    if (c.selected < -1 || c.selected >= static_cast<int32_t>(c.items.size()))
      throw Error(prefix_ + "selected item " + std::to_string(c.selected) + " of " + std::to_string(c.items.size()) +
                  " candidates");
  }
  void reset() override {
    guarded_call(prefix_, [&] { inner_->reset(); });
  }

 private:
  std::unique_ptr<Sampler> inner_;
  std::string prefix_;
};

class GuardedProposer final : public Proposer {
 public:
  GuardedProposer(std::unique_ptr<Proposer> inner, std::string prefix)
      : inner_(std::move(inner)), prefix_(std::move(prefix)) {}
  void propose(std::span<DraftRequest> requests) override {
    guarded_call(prefix_, [&] { inner_->propose(requests); });
  }
  void release(uint64_t seq) override {
    guarded_call(prefix_, [&] { inner_->release(seq); });
  }

 private:
  std::unique_ptr<Proposer> inner_;
  std::string prefix_;
};

// A factory's result, checked and wrapped.
template <class Guarded, class T, class Context>
void guard_factory(std::function<std::unique_ptr<T>(const Context&)>& make, const std::string& prefix) {
  if (!make) return;
  make = [inner = std::move(make), prefix](const Context& ctx) -> std::unique_ptr<T> {
    std::unique_ptr<T> made = guarded_call(prefix, [&] { return inner(ctx); });
    if (!made) throw Error(prefix + "the factory returned nothing");
    return std::make_unique<Guarded>(std::move(made), prefix);
  };
}

std::string prefix_of(const std::string& key, const std::string& plugin) {
  return key + " (plugin '" + plugin + "'): ";
}

}  // namespace

void guard_stage_entry(StageEntry& e, const std::string& key, const std::string& plugin) {
  const std::string p = prefix_of(key, plugin);
  guard(e.supports, p);
  guard_factory<GuardedStage>(e.make_stage, p);
  guard_factory<GuardedTokenizer>(e.make_tokenizer, p);
  guard_factory<GuardedSampler>(e.make_sampler, p);
}

void guard_backend_entry(BackendEntry& e, const std::string& key, const std::string& plugin) {
  const std::string p = prefix_of(key, plugin);
  guard(e.probe, p);
  guard(e.create, p);
}

void guard_arch(ArchTemplate& a, const std::string& key, const std::string& plugin) {
  guard(a.read_hparams, prefix_of(key, plugin));
}

void guard_proposer_entry(ProposerEntry& e, const std::string& key, const std::string& plugin) {
  guard_factory<GuardedProposer>(e.make, prefix_of(key, plugin));
}

void guard_comm_entry(CommEntry& e, const std::string& key, const std::string& plugin) {
  const std::string p = prefix_of(key, plugin);
  guard(e.probe, p);
  guard(e.create, p);
}

}  // namespace semline
