// The A/B bench: several variants of a line (configs, or one config with a grid of overrides)
// run interleaved in one process, compared on speed, cost and quality against the first.
#pragma once

#include <string>
#include <vector>

#include "app.h"

namespace semline::app {

struct AbOptions {
  LineFlags base;                  // --config, --model, --set (plain), --plugin-path
  std::vector<std::string> vs;     // --vs FILE: more configs
  std::vector<std::string> grid;   // --set KEY=a,b,c: one variant per value (cartesian over keys)
  int n_prompt = 512;
  int n_gen = 128;
  int n_depth = 0;                 // tokens of context each timed request continues from (-d)
  int reps = 3;
  std::string text;                // text file for perplexity / KL / top-1 (optional)
  std::string prompt_file;         // the timed prompt: this text, cut at n_prompt tokens (default: random tokens)
  int window = 256;                // quality window, tokens
  int windows = 4;                 // most windows scored
  double roofline_gbs = 46.0;      // memory bandwidth of the machine
  double roofline_gflops = 0;      // compute peak; 0: not reported
  std::string output = "md";
  std::string chart;               // PNG path (gnuplot), optional
};

// True when a --set value is a grid ("a,b,c" that is not a TOML array, table or string).
bool is_grid_assignment(const std::string& assignment);

// The cartesian product of grid assignments over a config, each named by its values
// ("attention.variant=flash kv_cache.dtype=f16").
std::vector<std::pair<std::string, Config>> grid_configs(const Config& base, const std::vector<std::string>& grid);

// For variants a grid switched: drops (with a note) the stage parameters the new variant does not
// declare (block for dense, say).
void drop_undeclared_params(std::vector<std::pair<std::string, Config>>& variants, const std::vector<std::string>& grid,
                            const StageRegistry& reg);

void run_ab(const AbOptions& o);

}  // namespace semline::app
