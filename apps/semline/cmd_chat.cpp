// semline chat: a conversation in the terminal, on the engine the server uses. Each turn renders
// the whole conversation with the chat template; the prefix cache keeps the earlier turns' blocks,
// so a turn computes little more than its own message.
#include <cstdio>
#include <iostream>

#include <spdlog/spdlog.h>

#include "app.h"
#include "core/engine/engine.h"
#include "core/graph/graph.h"
#include "core/serve/chat_template.h"
#include "core/util/text.h"

namespace semline::app {

namespace {

struct ChatOpts {
  LineFlags line;
  std::string chat_template, system;
  int n = -1;
  std::optional<double> temp;
  std::optional<int64_t> seed;
};

}  // namespace

void add_chat_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("chat", "Chat in the terminal (one message per line; /reset starts over, /quit ends)");
  auto o = std::make_shared<ChatOpts>();
  add_line_flags(*cmd, o->line);
  cmd->add_option("--chat-template", o->chat_template,
                  "Chat template: plain, chatml, llama-2, llama-3, mistral, phi-3, gemma, zephyr (default: the model's)");
  cmd->add_option("--system", o->system, "A system message that leads the conversation");
  cmd->add_option("-n,--n-predict", o->n, "Most tokens per answer (default: to the answer's end or the context)");
  cmd->add_option("--temp", o->temp, "Temperature (default: the config's chain)");
  cmd->add_option("-s,--seed", o->seed, "Seed of the random draw");
  cmd->callback([o] {
    const auto loaded = load_line(make_config(o->line));
    Pipeline& line = *loaded->pipeline;
    if (followed(line)) return;
    const serve::ChatFamily family =
        serve::choose_chat_family(o->chat_template, loaded->model->find_string("tokenizer.chat_template").value_or(""));
    const serve::ChatTemplate chat(family, line.tokenizer());
    EngineOptions eo = loaded->engine_options();
    eo.max_seqs = 1;
    Engine engine(line, eo);
    std::vector<serve::ChatMessage> messages;
    if (!o->system.empty()) messages.push_back({"system", o->system});
    std::fprintf(stderr, "chat template: %s; one message per line, /reset starts over, /quit ends\n",
                 serve::chat_family_name(family));
    for (std::string input;;) {
      std::fputs("> ", stderr);
      if (!std::getline(std::cin, input) || input == "/quit") break;
      if (input == "/reset") {
        messages.resize(o->system.empty() ? 0 : 1);
        continue;
      }
      if (input.empty()) continue;
      messages.push_back({"user", input});
      RequestOptions r;
      r.prompt = chat.tokenize(messages);
      r.max_tokens = o->n;
      r.stop_tokens = chat.end_of_turn();
      r.sampling.temperature = o->temp;
      r.sampling.seed = o->seed;
      std::string answer, error;
      try {
        engine.submit(std::move(r), [&](const Update& u) {
          std::fwrite(u.text.data(), 1, u.text.size(), stdout);
          std::fflush(stdout);
          answer += u.text;
          if (u.finish == FinishReason::Error) error = u.error;
        });
        engine.run();
      } catch (const Error& e) {
        error = e.what();  // the conversation no longer fits, say: the user may /reset
      }
      std::fputs("\n", stdout);
      std::fflush(stdout);
      if (!error.empty()) {
        spdlog::error("{}", error);
        messages.pop_back();
        continue;
      }
      messages.push_back({"assistant", answer});
    }
  });
}

}  // namespace semline::app
