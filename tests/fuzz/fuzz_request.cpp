// A request body through what the server does with it before the engine: parse_request for
// /v1/completions and for /v1/chat/completions, then the prompt tokenized with stories260K's
// vocabulary (text prompts) or rendered by every chat template and tokenized (chat). A refusal
// must be one ApiError with a 4xx status and OpenAI's error shape; any other exception is a finding.
#include <memory>
#include <string_view>

#include "core/model/gguf.h"
#include "core/serve/api.h"
#include "core/serve/chat_template.h"
#include "fuzz_util.h"
#include "tokenizers/spm.h"

using namespace semline;
using namespace semline::serve;

namespace {

struct Vocabulary {
  std::unique_ptr<gguf::GgufFile> file = gguf::GgufFile::open(fuzz::model_path("gguf/stories260K.gguf"));
  std::unique_ptr<tokenizers::SpmTokenizer> tok{new tokenizers::SpmTokenizer(*file, {})};
};

const Tokenizer& tokenizer() {
  static Vocabulary v;
  return *v.tok;
}

void check(const ApiRequest& r) {
  const RequestOptions& o = r.options;
  fuzz::expect(o.n >= 1 && o.n <= 128, "n outside 1..128 accepted");
  fuzz::expect(o.max_tokens == -1 || o.max_tokens >= 1, "max_tokens below 1 accepted");
  fuzz::expect(o.logprobs >= -1 && o.logprobs <= 20, "logprobs outside -1..20 accepted");
  const SamplingParams& s = o.sampling;
  fuzz::expect(!s.temperature || (*s.temperature >= 0 && *s.temperature <= 2), "temperature outside 0..2 accepted");
  fuzz::expect(!s.top_p || (*s.top_p >= 0 && *s.top_p <= 1), "top_p outside 0..1 accepted");
  for (const auto& [id, bias] : s.logit_bias) fuzz::expect(id >= 0 && bias >= -100 && bias <= 100, "bad logit_bias accepted");
  for (const std::string& stop : o.stop) fuzz::expect(!stop.empty(), "an empty stop string accepted");
  if (r.chat) {
    fuzz::expect(!r.messages.empty(), "a chat without messages accepted");
    for (const std::string& name : chat_family_names()) {
      const ChatTemplate t(*chat_family_by_name(name), tokenizer());
      for (int32_t id : t.tokenize(r.messages)) fuzz::expect(id >= 0 && id < tokenizer().n_vocab(), "a chat token outside the vocabulary");
    }
  } else {
    fuzz::expect(!r.prompts.empty(), "a completion without a prompt accepted");
    for (const PromptInput& p : r.prompts)
      if (!p.is_ids)
        for (int32_t id : tokenizer().encode(p.text, true, true)) fuzz::expect(id >= 0 && id < tokenizer().n_vocab(), "a prompt token outside the vocabulary");
  }
}

}  // namespace

SEMLINE_FUZZ_INITIALIZE(tokenizer())

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  for (bool chat : {false, true}) {
    try {
      check(parse_request(body, chat));
    } catch (const ApiError& e) {
      fuzz::expect(e.status >= 400 && e.status < 500, "a refusal outside 4xx");
      const nlohmann::json b = e.body();
      fuzz::expect(b.contains("error") && b["error"]["message"].is_string() && b["error"]["type"].is_string(),
                   "a refusal not in OpenAI's error shape");
      fuzz::touch(dump(b).data(), dump(b).size());
    }
  }
  return 0;
}
