#include "core/host/plugin_host.h"

#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>

#include "semline/plugin.h"

namespace semline {
namespace fs = std::filesystem;
namespace {

// Plugin libraries stay loaded until the process ends: registered entries, stages and samplers
// hold code and vtables that live in them, and some are destroyed only by static destructors at
// exit. The list is allocated once and never freed, so no destructor can dlclose a library whose
// code is still referenced. Libraries refused after opening are kept too: their constructors have
// run and may have left handlers pointing into them.
void keep_loaded(boost::dll::shared_library lib) {
  static std::mutex mutex;
  static auto* libraries = new std::vector<boost::dll::shared_library>();
  std::lock_guard lock(mutex);
  libraries->push_back(std::move(lib));
}

// dlerror() names the file first; the refusal already does.
std::string dl_reason(const fs::path& file, const std::error_code& ec) {
  const char* err = dlerror();
  std::string reason = err ? err : ec.message();
  const std::string lead = file.string() + ": ";
  if (reason.rfind(lead, 0) == 0) reason.erase(0, lead.size());
  return reason;
}

bool is_plugin_file_name(const fs::path& p) {
  const std::string name = p.filename().string();
  return name.size() > 14 && name.starts_with("libsemline-") && name.ends_with(".so");
}

// A shared library's static initialisers run inside dlopen. An exception one throws either ends in
// std::terminate (where the loader's frames let none through) or unwinds out of dlopen with the
// loader's lock still held and the library half-initialised; either way nothing can be recovered.
// While a plugin is opened, both paths name the file and the exception in the CLI's error form
// and exit with status 1, instead of aborting with a bare "terminate called" or carrying on with
// a loader that may deadlock the next thread that opens a library.
std::mutex opening_mutex;
std::string opening;  // the file being opened, under opening_mutex

[[noreturn]] void report_throwing_initialiser(std::exception_ptr e) {
  std::string what = "something that is not a std::exception";
  if (e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      what = x.what();
    } catch (...) {
    }
  }
  std::fflush(stdout);
  std::fprintf(stderr,
               "error: %s: a static initialiser of the plugin threw (%s); initialisers run inside the dynamic "
               "loader, where no error can be caught, so semline stops: remove the file from the plugin path or fix "
               "the plugin\n",
               opening.c_str(), what.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

// dlopen with the terminate handler above in place.
void open_library(boost::dll::shared_library& lib, const fs::path& path, std::error_code& ec) {
  std::lock_guard lock(opening_mutex);
  opening = path.string();
  const std::terminate_handler previous =
      std::set_terminate([] { report_throwing_initialiser(std::current_exception()); });
  using boost::dll::load_mode::rtld_local;
  using boost::dll::load_mode::rtld_now;
  try {
    lib.load(path, rtld_local | rtld_now, ec);
  } catch (...) {
    report_throwing_initialiser(std::current_exception());
  }
  std::set_terminate(previous);
}

}  // namespace

std::string abi_refusal(uint32_t plugin_major, uint32_t plugin_minor, uint32_t host_major, uint32_t host_minor) {
  const std::string theirs = std::to_string(plugin_major) + "." + std::to_string(plugin_minor);
  const std::string ours = std::to_string(host_major) + "." + std::to_string(host_minor);
  if (plugin_major != host_major)
    return "built for semline plugin ABI " + theirs + ", this host speaks ABI " + ours +
           "; another major changes layouts and virtual tables, so rebuild the plugin against this semline SDK";
  if (plugin_minor > host_minor)
    return "built for semline plugin ABI " + theirs + ", newer than this host's " + ours +
           ": it may read fields this host does not provide; upgrade semline or rebuild the plugin against this SDK";
  return "";
}

void PluginHost::load(const fs::path& file) {
  std::error_code ec;
  const fs::path path = fs::canonical(file, ec);
  if (ec) throw Error(file.string() + ": cannot open plugin: " + ec.message());
  if (loaded_.contains(path)) return;
  if (!fs::is_regular_file(path, ec))
    throw Error(path.string() + ": not a plugin; a plugin is a shared library file libsemline-<name>.so");

  boost::dll::shared_library lib;
  open_library(lib, path, ec);
  if (ec || !lib.is_loaded())
    throw Error(path.string() + ": cannot be loaded as a shared library: " + dl_reason(path, ec));

  using EntryFn = const semline_plugin_info*(uint32_t);
  EntryFn* entry = nullptr;
  if (lib.has(SEMLINE_PLUGIN_ENTRY_SYMBOL)) entry = &lib.get<EntryFn>(SEMLINE_PLUGIN_ENTRY_SYMBOL);
  keep_loaded(std::move(lib));
  if (!entry)
    throw Error(path.string() + ": not a semline plugin: it does not export " SEMLINE_PLUGIN_ENTRY_SYMBOL
                               " (write SEMLINE_PLUGIN(...) from <semline/plugin.h> in one source file)");

  const semline_plugin_info* info = nullptr;
  try {
    info = entry(SEMLINE_ABI_MAJOR);
  } catch (const std::exception& e) {
    throw Error(path.string() + ": " SEMLINE_PLUGIN_ENTRY_SYMBOL " failed: " + e.what());
  } catch (...) {
    throw Error(path.string() + ": " SEMLINE_PLUGIN_ENTRY_SYMBOL " threw something that is not a std::exception");
  }
  if (!info) throw Error(path.string() + ": " SEMLINE_PLUGIN_ENTRY_SYMBOL " returned no plugin descriptor");

  // Only the ABI fields may be read before the version is checked: another major may lay out the
  // rest differently.
  const uint32_t major = info->abi_major, minor = info->abi_minor;
  if (std::string why = abi_refusal(major, minor, SEMLINE_ABI_MAJOR, SEMLINE_ABI_MINOR); !why.empty())
    throw Error(path.string() + ": " + why);

  // Every field of the descriptor exists since ABI 2.0, so all are read whatever the minor; a
  // field appended later is read only when minor is at least the minor that added it.
  for (const char* field : {info->name, info->version, info->description})
    if (!field) throw Error(path.string() + ": its plugin descriptor has a null name, version or description");
  PluginRecord rec{info->name, info->version, info->description, path, major, minor};
  reg_.register_plugin(rec, info->register_all);
  loaded_.insert(path);
  spdlog::debug("loaded plugin '{}' {} (ABI {}.{}) from {}", rec.name, rec.version, major, minor, path.string());
}

std::vector<std::string> PluginHost::load_all(const std::vector<fs::path>& paths) {
  std::vector<std::string> refused;
  auto refuse = [&](std::string message) {
    spdlog::error("{}", message);
    refused.push_back(std::move(message));
  };
  std::set<fs::path> seen;
  auto try_load = [&](const fs::path& file) {
    if (!seen.insert(file).second) return;
    try {
      load(file);
    } catch (const Error& e) {
      refuse(e.what());
    }
  };

  for (const auto& p : paths) {
    std::error_code ec;
    const fs::path path = fs::canonical(p, ec);
    if (ec) {
      refuse(p.string() + ": plugin path does not exist or cannot be read (" + ec.message() + ")");
      continue;
    }
    if (!fs::is_directory(path, ec)) {
      try_load(path);
      continue;
    }
    if (!seen.insert(path).second) continue;
    std::vector<fs::path> files;
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec))
      if (is_plugin_file_name(it->path())) files.push_back(it->path());
    if (ec) {
      refuse(path.string() + ": cannot list plugin folder (" + ec.message() + ")");
      continue;
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      const fs::path file = fs::canonical(f, ec);
      if (ec)
        refuse(f.string() + ": cannot open plugin: " + ec.message());
      else
        try_load(file);
    }
  }
  return refused;
}

}  // namespace semline
