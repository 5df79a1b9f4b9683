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

template <class R, class... A>
void guard(std::function<R(A...)>& fn, const std::string& prefix) {
  if (!fn) return;
  fn = [inner = std::move(fn), prefix](A... args) -> R {
    try {
      return inner(std::forward<A>(args)...);
    } catch (const std::exception& e) {
      throw Error(prefix + one_line(e.what()));
    } catch (...) {
      throw Error(prefix + "threw something that is not a std::exception");
    }
  };
}

std::string prefix_of(const std::string& key, const std::string& plugin) {
  return key + " (plugin '" + plugin + "'): ";
}

}  // namespace

void guard_stage_entry(StageEntry& e, const std::string& key, const std::string& plugin) {
  const std::string p = prefix_of(key, plugin);
  guard(e.supports, p);
  guard(e.make_stage, p);
  guard(e.make_tokenizer, p);
  guard(e.make_sampler, p);
}

void guard_backend_entry(BackendEntry& e, const std::string& key, const std::string& plugin) {
  const std::string p = prefix_of(key, plugin);
  guard(e.probe, p);
  guard(e.create, p);
}

void guard_arch(ArchTemplate& a, const std::string& key, const std::string& plugin) {
  guard(a.read_hparams, prefix_of(key, plugin));
}

}  // namespace semline
