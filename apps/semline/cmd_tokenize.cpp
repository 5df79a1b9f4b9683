// semline tokenize: the token ids of a text, for any GGUF with a vocabulary (vocab-only ones too).
#include <cstdio>

#include "app.h"
#include "core/engine/pipeline.h"
#include "core/graph/graph.h"

namespace semline::app {

void add_tokenize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "Print the token ids of a text (one line, space-separated)");
  struct Opts {
    LineFlags line;
    std::string text;
    bool no_bos = false, pieces = false, special = false;
  };
  auto o = std::make_shared<Opts>();
  add_line_flags(*cmd, o->line);
  cmd->add_option("-t,--text", o->text, "Text to tokenize")->required();
  cmd->add_flag("--no-bos", o->no_bos, "Leave out the BOS token");
  cmd->add_flag("--pieces", o->pieces, "Show each token's piece beside its id (id:'piece')");
  cmd->add_flag("--special", o->special,
                "Read control tokens written in the text (e.g. </s>, <|im_start|>) as their ids, as llama-tokenize does "
                "by default; without it they are text");
  cmd->callback([o] {
    Config c = make_config(o->line);
    auto plugins = load_plugins(c.runtime.plugin_paths, c.runtime.prefer);
    auto model = open_model(c.model.path);
    auto tok = make_tokenizer(place_tokenizer(c, *model, plugins->registry), *model);
    std::vector<int32_t> ids = tok->encode(o->text, !o->no_bos, o->special);
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) line += ' ';
      line += std::to_string(ids[i]);
      if (o->pieces) line += ":'" + tok->piece(ids[i]) + "'";
    }
    std::printf("%s\n", line.c_str());
  });
}

}  // namespace semline::app
