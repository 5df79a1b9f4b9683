// semline convert: llama2.c checkpoint + tokenizer.bin -> GGUF.
#include <spdlog/spdlog.h>

#include "app.h"
#include "core/model/llama2c.h"

namespace semline::app {

void add_convert_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("convert", "Convert a llama2.c checkpoint and its tokenizer.bin to GGUF");
  struct Opts {
    std::string checkpoint, tokenizer, out;
    llama2c::ConvertOptions options;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("checkpoint", o->checkpoint, "llama2.c checkpoint (.bin, legacy v0 format)")->required();
  cmd->add_option("--tokenizer", o->tokenizer, "llama2.c tokenizer.bin")->required();
  cmd->add_option("-o,--output", o->out, "GGUF file to write")->required();
  cmd->add_option("--ctx", o->options.context_length,
                  "llama.context_length to record (default: the checkpoint's seq_len; llama.cpp's converter writes 2048)");
  cmd->add_option("--name", o->options.name, "general.name to record");
  cmd->callback([o] {
    Progress bar("convert");
    llama2c::convert_llama2c(o->checkpoint, o->tokenizer, o->out, std::ref(bar), o->options);
    spdlog::info("wrote {}", o->out);
  });
}

}  // namespace semline::app
