#include "core/host/registry.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <type_traits>
#include <utility>

#include "core/host/entry_check.h"
#include "core/host/guard.h"
#include "core/host/plugin_log.h"
#include "core/util/text.h"

namespace semline {
namespace {

// What a plugin added during register_all; nothing reaches the registry until all of it passed.
class Staging final : public Registry {
 public:
  explicit Staging(std::string plugin) : log_(plugin_log(std::move(plugin))) {}
  void add_stage(StageEntry e) override { stages.push_back(std::move(e)); }
  void add_backend(BackendEntry e) override { backends.push_back(std::move(e)); }
  void add_arch(ArchTemplate a) override { archs.push_back(std::move(a)); }
  void log(LogLevel level, std::string_view message) override { log_(level, message); }
  void add_proposer(ProposerEntry e) override { proposers.push_back(std::move(e)); }
  void add_comm(CommEntry e) override { comms.push_back(std::move(e)); }

  std::vector<StageEntry> stages;
  std::vector<BackendEntry> backends;
  std::vector<ArchTemplate> archs;
  std::vector<ProposerEntry> proposers;
  std::vector<CommEntry> comms;

 private:
  LogFn log_;
};

// "<file>: plugin 'x'", the start of every refusal.
std::string origin(const PluginRecord& rec) {
  return (rec.file.empty() ? "" : rec.file.string() + ": ") + "plugin '" + rec.name + "'";
}
// "plugin 'x' (<file>)", for naming the other party of a clash.
std::string owner(const std::string& plugin, const std::filesystem::path& file) {
  return "plugin '" + plugin + "'" + (file.empty() ? "" : " (" + file.string() + ")");
}

template <class T>
std::vector<const T*> values_of(const auto& map) {
  std::vector<const T*> out;
  out.reserve(map.size());
  for (const auto& [key, value] : map) out.push_back(&value);
  return out;
}

template <class Check, class Item>
void check_or_refuse(Check check, const Item& item, const std::string& who) {
  try {
    check(item);
  } catch (const Error& e) {
    throw Error(who + ": " + e.what());
  }
}

}  // namespace

std::string stage_key_string(StageKind kind, std::string_view variant, std::string_view backend) {
  return std::string(stage_kind_name(kind)) + "." + std::string(variant) + "." + std::string(backend);
}

void StageRegistry::set_preferences(std::map<std::string, std::string> prefer) { prefer_ = std::move(prefer); }

void StageRegistry::check_preferences() const {
  for (const auto& [key, plugin] : prefer_) {
    auto it = claimants_.find(key);
    if (it == claimants_.end()) {
      std::vector<std::string> keys;
      for (const auto& [k, who] : claimants_) keys.push_back(k);
      throw Error("[runtime.prefer] \"" + key + "\": no loaded plugin registers this key" + did_you_mean(key, keys) +
                  "; keys look like \"attention.flash.cpu\", \"backend.cpu\", \"arch.llama\", \"proposer.name\" or \"comm.mpi\"");
    }
    const auto& who = it->second;
    if (std::find(who.begin(), who.end(), plugin) == who.end())
      throw Error("[runtime.prefer] \"" + key + "\" = \"" + plugin + "\": plugin '" + plugin +
                  "' does not register this key; it is registered by " + join(who));
  }
}

const RegisteredStage* StageRegistry::find(StageKind kind, std::string_view variant, std::string_view backend) const {
  auto it = stages_.find(StageKey{kind, std::string(variant), std::string(backend)});
  return it == stages_.end() ? nullptr : &it->second;
}

std::vector<const RegisteredStage*> StageRegistry::stages(std::optional<StageKind> kind) const {
  std::vector<const RegisteredStage*> out;
  for (const auto& [key, value] : stages_)
    if (!kind || std::get<0>(key) == *kind) out.push_back(&value);
  return out;
}

const RegisteredBackend* StageRegistry::find_backend(std::string_view name) const {
  auto it = backends_.find(name);
  return it == backends_.end() ? nullptr : &it->second;
}

std::vector<const RegisteredBackend*> StageRegistry::backends() const { return values_of<RegisteredBackend>(backends_); }

const RegisteredArch* StageRegistry::find_arch(std::string_view name) const {
  auto it = archs_.find(name);
  return it == archs_.end() ? nullptr : &it->second;
}

std::vector<const RegisteredArch*> StageRegistry::archs() const { return values_of<RegisteredArch>(archs_); }

const RegisteredProposer* StageRegistry::find_proposer(std::string_view name) const {
  auto it = proposers_.find(name);
  return it == proposers_.end() ? nullptr : &it->second;
}

std::vector<const RegisteredProposer*> StageRegistry::proposers() const {
  return values_of<RegisteredProposer>(proposers_);
}

const RegisteredComm* StageRegistry::find_comm(std::string_view name) const {
  auto it = comms_.find(name);
  return it == comms_.end() ? nullptr : &it->second;
}

std::vector<const RegisteredComm*> StageRegistry::comms() const { return values_of<RegisteredComm>(comms_); }

const PluginRecord* StageRegistry::find_plugin(std::string_view name) const {
  for (const auto& p : plugins_)
    if (p.name == name) return &p;
  return nullptr;
}

bool StageRegistry::newcomer_wins(const std::string& key, const PluginRecord& rec) const {
  // Without a preference the plugin loaded first keeps the key. A preference for a third plugin
  // keeps the holder until that plugin loads and takes the key; check_preferences reports it if
  // it never does.
  auto it = prefer_.find(key);
  return it != prefer_.end() && it->second == rec.name;
}

void StageRegistry::register_plugin(const PluginRecord& rec, void (*register_all)(Registry&)) {
  const std::string who = origin(rec);
  try {
    check_plugin_name(rec.name);
  } catch (const Error& e) {
    throw Error((rec.file.empty() ? "" : rec.file.string() + ": ") + e.what());
  }
  if (const PluginRecord* prev = find_plugin(rec.name))
    throw Error(who + " is already loaded" + (prev->file.empty() ? "" : " from " + prev->file.string()) +
                "; plugin names must be unique, remove one of the two files from the plugin path");
  if (!register_all) throw Error(who + " has no register_all function");

  Staging staged(rec.name);
  try {
    register_all(staged);
  } catch (const std::exception& e) {
    throw Error(who + " failed to register its entries: " + e.what());
  } catch (...) {
    throw Error(who + " failed to register its entries: it threw something that is not a std::exception");
  }

  // How each kind is keyed: its slot in the registry's map and its key as the config writes it.
  auto stage_slot = [](const StageEntry& e) { return StageKey{e.kind, e.variant, e.backend}; };
  auto stage_key = [](const StageEntry& e) { return stage_key_string(e.kind, e.variant, e.backend); };
  auto name_slot = [](const auto& e) { return e.name; };
  auto backend_key = [](const BackendEntry& e) { return "backend." + e.name; };
  auto arch_key = [](const ArchTemplate& a) { return "arch." + a.name; };
  auto proposer_key = [](const ProposerEntry& e) { return "proposer." + e.name; };
  auto comm_key = [](const CommEntry& e) { return "comm." + e.name; };

  std::set<std::string> keys;
  auto check_all = [&](const auto& entries, auto check, auto key_of) {
    for (const auto& e : entries) {
      check_or_refuse(check, e, who);
      if (!keys.insert(key_of(e)).second) throw Error(who + " registers " + key_of(e) + " twice");
    }
  };
  check_all(staged.stages, check_stage_entry, stage_key);
  check_all(staged.backends, check_backend_entry, backend_key);
  check_all(staged.archs, check_arch, arch_key);
  check_all(staged.proposers, check_proposer_entry, proposer_key);
  check_all(staged.comms, check_comm_entry, comm_key);

  // Decide every clash before changing anything, so a refusal leaves the registry as it was.
  auto decide = [&](const auto& map, const auto& entries, auto slot_of, auto key_of) {
    std::vector<bool> take;
    for (const auto& e : entries) {
      auto held = map.find(slot_of(e));
      take.push_back(held == map.end() || newcomer_wins(key_of(e), rec));
    }
    return take;
  };
  const auto take_stages = decide(stages_, staged.stages, stage_slot, stage_key);
  const auto take_backends = decide(backends_, staged.backends, name_slot, backend_key);
  const auto take_archs = decide(archs_, staged.archs, name_slot, arch_key);
  const auto take_proposers = decide(proposers_, staged.proposers, name_slot, proposer_key);
  const auto take_comms = decide(comms_, staged.comms, name_slot, comm_key);

  auto commit = [&](auto& map, auto& entries, const std::vector<bool>& take, auto slot_of, auto key_of, auto guard) {
    using Registered = typename std::remove_reference_t<decltype(map)>::mapped_type;
    for (size_t i = 0; i < entries.size(); ++i) {
      auto& e = entries[i];
      const std::string key = key_of(e);
      auto slot = slot_of(e);
      claimants_[key].push_back(rec.name);
      if (auto held = map.find(slot); held != map.end()) {
        const std::string& winner = take[i] ? rec.name : held->second.plugin;
        const std::string& loser = take[i] ? held->second.plugin : rec.name;
        if (prefer_.count(key))
          spdlog::info("{}: the entry of plugin '{}' is dropped; [runtime.prefer] names '{}'", key, loser, prefer_.at(key));
        else
          spdlog::warn("{}: registered by {} and by {}; the first loaded keeps it, the other's entry is dropped (the rest "
                       "of both plugins stays); to choose, set [runtime.prefer] \"{}\" = \"{}\" or \"{}\"",
                       key, owner(held->second.plugin, held->second.file), owner(rec.name, rec.file), key, winner,
                       loser);
      }
      if (!take[i]) continue;
      guard(e, key, rec.name);
      map.insert_or_assign(std::move(slot), Registered{std::move(e), rec.name, rec.file});
    }
  };
  commit(stages_, staged.stages, take_stages, stage_slot, stage_key, guard_stage_entry);
  commit(backends_, staged.backends, take_backends, name_slot, backend_key, guard_backend_entry);
  commit(archs_, staged.archs, take_archs, name_slot, arch_key, guard_arch);
  commit(proposers_, staged.proposers, take_proposers, name_slot, proposer_key, guard_proposer_entry);
  commit(comms_, staged.comms, take_comms, name_slot, comm_key, guard_comm_entry);
  plugins_.push_back(rec);
}

}  // namespace semline
