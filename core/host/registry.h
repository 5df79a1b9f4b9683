// The host's registry: every stage entry, backend, architecture template, proposer and communicator the loaded
// plugins registered, each with the plugin and file it came from.
//
// Keys. A stage entry is keyed by (kind, variant, backend), written "attention.flash.cpu"; a
// backend by "backend.<name>"; a template by "arch.<name>"; a proposer by "proposer.<name>"; a communicator by "comm.<name>". A key belongs to one plugin. When two
// plugins register the same key, the preferences (the config's [runtime.prefer] table: key ->
// plugin name) name the winner, and without one the plugin loaded first keeps it (built-in
// plugins load first, see PluginHost::search_path); the other's entry alone is dropped, with one
// line naming the key and both plugins, and the rest of both plugins stays. Set the preferences
// before loading plugins.
//
// Calls into plugin code. Every std::function in a registered entry (factories, supports, probe,
// create, read_hparams) and every object a factory makes is wrapped at registration (guard.h):
// whatever the plugin throws comes out as one semline::Error naming the key and the plugin.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "semline/registry.h"

namespace semline {

struct PluginRecord {
  std::string name, version, description;
  std::filesystem::path file;  // empty for plugins registered in-process
  uint32_t abi_major = 0, abi_minor = 0;
};

// An entry as the host keeps it: with the plugin that registered it and that plugin's file.
template <class Entry>
struct Registered {
  Entry entry;
  std::string plugin;
  std::filesystem::path file;
};
using RegisteredStage = Registered<StageEntry>;
using RegisteredBackend = Registered<BackendEntry>;
using RegisteredArch = Registered<ArchTemplate>;
using RegisteredProposer = Registered<ProposerEntry>;
using RegisteredComm = Registered<CommEntry>;

// "attention.flash.cpu"
std::string stage_key_string(StageKind kind, std::string_view variant, std::string_view backend);

class StageRegistry {
 public:
  StageRegistry() = default;
  StageRegistry(const StageRegistry&) = delete;
  StageRegistry& operator=(const StageRegistry&) = delete;

  // Key ("attention.flash.cpu", "backend.cpu", "arch.llama") -> the plugin that wins it.
  void set_preferences(std::map<std::string, std::string> prefer);
  // Throws when a preference names a key no loaded plugin registers, or a plugin that does not
  // register that key (so a misspelt [runtime.prefer] line is not silently ignored).
  void check_preferences() const;

  const RegisteredStage* find(StageKind kind, std::string_view variant, std::string_view backend) const;
  std::vector<const RegisteredStage*> stages(std::optional<StageKind> kind = {}) const;  // by kind, variant, backend
  const RegisteredBackend* find_backend(std::string_view name) const;
  std::vector<const RegisteredBackend*> backends() const;  // by name
  const RegisteredArch* find_arch(std::string_view name) const;
  std::vector<const RegisteredArch*> archs() const;  // by name
  const RegisteredProposer* find_proposer(std::string_view name) const;
  std::vector<const RegisteredProposer*> proposers() const;  // by name
  const RegisteredComm* find_comm(std::string_view name) const;
  std::vector<const RegisteredComm*> comms() const;  // by name
  const std::vector<PluginRecord>& plugins() const { return plugins_; }  // in load order

  // Runs a plugin's register_all against a staging area, checks every entry, and commits all of
  // them or none: a throw from the plugin, a malformed entry, a key registered twice by the plugin
  // itself or a plugin name already registered refuses the plugin with one semline::Error. A key
  // another plugin holds drops only that entry (see Keys above).
  void register_plugin(const PluginRecord& rec, void (*register_all)(Registry&));

 private:
  using StageKey = std::tuple<StageKind, std::string, std::string>;

  const PluginRecord* find_plugin(std::string_view name) const;
  // True when `rec` takes `key` from the plugin holding it: only when the preferences say so.
  bool newcomer_wins(const std::string& key, const PluginRecord& rec) const;

  std::map<std::string, std::string> prefer_;
  std::map<StageKey, RegisteredStage> stages_;
  std::map<std::string, RegisteredBackend, std::less<>> backends_;
  std::map<std::string, RegisteredArch, std::less<>> archs_;
  std::map<std::string, RegisteredProposer, std::less<>> proposers_;
  std::map<std::string, RegisteredComm, std::less<>> comms_;
  std::map<std::string, std::vector<std::string>> claimants_;  // key -> every plugin that registered it
  std::vector<PluginRecord> plugins_;
};

}  // namespace semline
