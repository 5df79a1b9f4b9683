// semline convert: a llama2.c checkpoint + tokenizer.bin, or a Hugging Face folder, -> GGUF.
#include <spdlog/spdlog.h>

#include "app.h"
#include "core/model/hf_model.h"
#include "core/model/llama2c.h"

namespace semline::app {

void add_convert_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "convert", "Convert a llama2.c checkpoint and its tokenizer.bin, or a Hugging Face folder, to GGUF");
  struct Opts {
    std::string input, tokenizer, out;
    llama2c::ConvertOptions options;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("input", o->input,
                  "llama2.c checkpoint (.bin, legacy v0 format), or a Hugging Face folder (or its config.json): GPT-2, "
                  "Llama, Mistral, Qwen2, Qwen3, Phi-3, Gemma 2, StarCoder2, StableLM, GPT-NeoX")
      ->required();
  cmd->add_option("--tokenizer", o->tokenizer, "llama2.c tokenizer.bin (llama2.c checkpoints only)");
  cmd->add_option("-o,--output", o->out, "GGUF file to write")->required();
  cmd->add_option("--ctx", o->options.context_length,
                  "llama2.c: llama.context_length to record (default: the checkpoint's seq_len; llama.cpp's converter "
                  "writes 2048)");
  cmd->add_option("--name", o->options.name, "llama2.c: general.name to record");
  cmd->callback([o] {
    Progress bar("convert");
    if (hf::is_hf_path(o->input)) {
      // The folder is read as every command reads it, already in GGUF terms: the file is that model.
      if (!o->tokenizer.empty())
        throw Error("convert: --tokenizer is for llama2.c checkpoints; a Hugging Face folder brings its tokenizer.json (or vocab.json)");
      write_gguf(*hf::open_folder(o->input), o->out, std::ref(bar));
    } else {
      if (o->tokenizer.empty()) throw Error("convert: a llama2.c checkpoint needs --tokenizer tokenizer.bin");
      llama2c::convert_llama2c(o->input, o->tokenizer, o->out, std::ref(bar), o->options);
    }
    spdlog::info("wrote {}", o->out);
  });
}

}  // namespace semline::app
