// The TOML config: which model, which backend, which implementation for every station.
//
// Everything read keeps its position (file:line:column) so that later checks, such as the graph
// builder validating variant names and parameters against the registry, can point at the exact
// place in the file. Variant names and stage parameters are stored as given, not validated here.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "semline/params.h"

namespace semline {

struct SourcePos {
  std::string file;  // the config file, the name given to parse_config, or an override's text
  int line = 0, column = 0;  // 1-based; 0 when the value has no position (a default)
  std::string str() const;   // "file:line:col", or "file" without a position
};

struct ConfigValue {
  ParamValue value;  // typed as TOML gave it
  SourcePos pos;
};

// One table under [stages] or in a [[stages.layers]] override.
struct StageChoice {
  std::string variant;  // empty: not given (the architecture template's default)
  SourcePos variant_pos;
  std::string backend;  // empty: runtime.backend
  SourcePos backend_pos;
  std::map<std::string, ConfigValue> params;  // every other key
  SourcePos pos;                              // the table itself
  SourcePos key_pos;                          // the key naming the stage kind or station
};

// A [[stages.layers]] table: stage choices for blocks first..last (inclusive).
struct LayerOverride {
  int first = 0, last = 0;
  SourcePos pos;  // the range value
  std::map<std::string, StageChoice> stages;  // keys: embedding, norm, attention, ffn, head, or a
                                              // station of the model's template (checked by the graph)
};

// A [[serve.variants]] table: one variant of the line `semline serve` runs beside the others
// (live A/B): this config, or another file of the same model, with overrides.
struct ServeVariantConfig {
  std::string name;
  double share = 1;                  // of the requests that name no variant
  std::filesystem::path config;      // empty: this config
  std::vector<std::string> sets;     // "key=value" overrides, as --set takes them
  SourcePos pos;                     // the table
};

struct Config {
  std::filesystem::path file;  // the config file (empty for parsed strings)
  struct {
    std::filesystem::path path;  // relative paths are resolved against the config file's folder
    SourcePos pos;
  } model;
  struct {
    std::string backend = "cpu";
    SourcePos backend_pos;
    int threads = 0;  // 0: all cores
    std::vector<std::filesystem::path> plugin_paths;  // resolved like model.path
    // "kind.variant.backend" -> the plugin that wins when several register that key
    std::map<std::string, std::string> prefer;
    int max_batch_tokens = 512;
    int max_seqs = 16;  // sequences generated at once (continuous batching)
    int context = 0;  // tokens per sequence; 0: the model's
  } runtime;
  // Keys: tokenizer, embedding, norm, attention, ffn, head, sampler, or the name of a station of
  // the model's architecture template (e.g. attn_norm), which only the graph can check.
  std::map<std::string, StageChoice> stages;  // keys: tokenizer, embedding, norm, attention, ffn,
                                              // head, sampler
  std::vector<LayerOverride> layers;          // [[stages.layers]], in file order
  // [backends.<name>]: parameters of a backend (e.g. vulkan's device), checked against its schema
  // when the backend is created.
  std::map<std::string, std::map<std::string, ConfigValue>> backends;
  std::vector<ServeVariantConfig> serve_variants;  // [[serve.variants]], in file order
  struct {
    int block_tokens = 16;
    std::string dtype = "f32";  // "f32" | "f16" | "q8_0" (blocks of 32 values, an F16 scale each)
    int size_mib = 0;           // the pool in MiB; 0: from blocks, else max_seqs x context
    int blocks = 0;             // the pool in blocks; 0: see size_mib
    bool prefix_caching = true; // full blocks of a computed prefix are reused by later sequences
    SourcePos pos;              // the [kv_cache] table
  } kv_cache;
  struct {
    std::string proposer = "none";  // "none" | "ngram" | "draft" | a plugin's: who drafts tokens for the model to verify
    SourcePos proposer_pos;
    int k = 4;                      // draft tokens per step at most
    bool adaptive = true;           // the draft length follows the acceptance (1..k)
    int ngram_min = 1;              // ngram: the shortest and longest suffix looked up
    int ngram_max = 3;
    std::filesystem::path draft_model;  // draft: the draft model's file, resolved like model.path
    SourcePos draft_model_pos;
    SourcePos pos;                  // the [speculative] table
    // Every other key: a plugin proposer's parameters, checked against its entry when the engine
    // makes it (the engine's own proposers take none).
    std::map<std::string, ConfigValue> params;
  } speculative;
  struct {
    int tensor = 1;            // ranks the blocks are split across (tensor parallelism); 1: none
    int pipeline = 1;          // stages of consecutive blocks, one rank each (pipeline parallelism)
    std::string comm = "mpi";  // the communicator that joins them (a plugin's)
    bool expert_parallel = false;  // a mixture's experts whole, split among the tensor ranks
    SourcePos pos;             // the [parallel] table
    // Every other key: the communicator's parameters, checked against its entry when it is made.
    std::map<std::string, ConfigValue> params;
  } parallel;
};

// Reads and checks a config file. Throws semline::Error with "file:line:col: message".
Config load_config(const std::filesystem::path& file);

// Parses config text; `name` stands for the file in messages. Relative paths stay relative.
Config parse_config(std::string_view text, const std::string& name);

// Applies one "key=value" assignment, e.g. "stages.attention.variant=flash" or
// "runtime.threads=4" (the command line's --set, benchmark grids). The key is a TOML dotted key;
// the value is a TOML value, or else taken as a plain string (so variant=flash needs no quotes).
// It is checked exactly like the same key in a file; relative paths stay relative to the working
// directory. Throws semline::Error on a malformed assignment, an unknown key or a bad value.
void apply_override(Config& c, std::string_view assignment);

// "file:line:col: message"
std::string config_error(const SourcePos& pos, std::string_view message);

}  // namespace semline
