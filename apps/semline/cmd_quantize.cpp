// semline quantize: F32/F16 GGUF -> Q8_0 or Q4_0.
#include <spdlog/spdlog.h>

#include "app.h"
#include "core/model/quantize.h"

namespace semline::app {

void add_quantize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("quantize", "Write a Q8_0 or Q4_0 copy of a GGUF model");
  struct Opts {
    std::string in, out, type;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("input", o->in, "GGUF model (F32/F16 weights)")->required();
  cmd->add_option("output", o->out, "GGUF file to write")->required();
  cmd->add_option("-t,--type", o->type, "q8_0 | q4_0")->required()->check(CLI::IsMember({"q8_0", "q4_0"}));
  cmd->callback([o] {
    Progress bar("quantize");
    quantize_gguf(o->in, o->out, o->type == "q8_0" ? DType::Q8_0 : DType::Q4_0, std::ref(bar));
    spdlog::info("wrote {}", o->out);
  });
}

}  // namespace semline::app
