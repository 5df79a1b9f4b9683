// Records what llama.cpp computes for a model, through its public C API (llama.h): the logits at
// every position of a prompt and of its greedy continuation. Built and run by
// scripts/record-family-logits.sh against a llama.cpp build beside the project; never part of
// semline's build.
//
//   record_logits MODEL.gguf N_PREDICT ID...   ->  stdout:
//     prompt ID...            the prompt as given
//     greedy ID...            N_PREDICT tokens, each the first largest logit after the one before
//     margin X                the smallest top-1 minus top-2 logit over the greedy choices
//     logits P V0 V1 ...      the logits after the token at position P, for every position
//
// The KV cache is F32 and flash attention off, so the numbers are llama.cpp's arithmetic on the
// weights as stored, with no cache rounding.
#include <llama.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

void quiet(ggml_log_level level, const char* text, void*) {
  if (level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "record_logits: %s\n", what.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) die("usage: record_logits MODEL.gguf N_PREDICT ID...");
  const int n_predict = std::atoi(argv[2]);
  std::vector<llama_token> prompt;
  for (int i = 3; i < argc; ++i) prompt.push_back(std::atoi(argv[i]));

  llama_log_set(quiet, nullptr);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) die(std::string("cannot load ") + argv[1]);
  const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));

  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(prompt.size() + n_predict + 16);
  cp.n_batch = cp.n_ubatch = cp.n_ctx;
  cp.n_threads = cp.n_threads_batch = 1;
  cp.type_k = cp.type_v = GGML_TYPE_F32;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.no_perf = true;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) die("cannot make a context");

  std::vector<std::vector<float>> logits;
  llama_batch batch = llama_batch_init(static_cast<int32_t>(cp.n_ctx), 0, 1);
  auto decode = [&](const std::vector<llama_token>& tokens, int pos0) {
    batch.n_tokens = static_cast<int32_t>(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
      batch.token[i] = tokens[i];
      batch.pos[i] = pos0 + static_cast<int>(i);
      batch.n_seq_id[i] = 1;
      batch.seq_id[i][0] = 0;
      batch.logits[i] = 1;
    }
    if (llama_decode(ctx, batch) != 0) die("llama_decode failed");
    for (size_t i = 0; i < tokens.size(); ++i) {
      const float* l = llama_get_logits_ith(ctx, static_cast<int32_t>(i));
      logits.emplace_back(l, l + n_vocab);
    }
  };

  decode(prompt, 0);
  std::vector<llama_token> greedy;
  double margin = 1e30;
  for (int n = 0; n < n_predict; ++n) {
    const std::vector<float>& l = logits.back();
    int best = 0;
    for (int v = 1; v < n_vocab; ++v)
      if (l[v] > l[best]) best = v;
    double second = -1e30;
    for (int v = 0; v < n_vocab; ++v)
      if (v != best && l[v] > second) second = l[v];
    if (l[best] - second < margin) margin = l[best] - second;
    greedy.push_back(best);
    if (n + 1 < n_predict) decode({best}, static_cast<int>(prompt.size()) + n);
  }

  std::printf("prompt");
  for (llama_token t : prompt) std::printf(" %d", t);
  std::printf("\ngreedy");
  for (llama_token t : greedy) std::printf(" %d", t);
  std::printf("\nmargin %.6g\n", margin);
  for (size_t p = 0; p < logits.size(); ++p) {
    std::printf("logits %zu", p);
    for (float v : logits[p]) std::printf(" %.7g", v);
    std::printf("\n");
  }
  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
