// Reading a real GGUF file (stories260K) and the typed metadata getters.
#include <cstring>

#include "core/model/gguf.h"
#include "model_test_util.h"

using namespace semline;
using namespace semline::gguf;
using semline::test::Bytes;
using semline::test::check_message;
using semline::test::error_of;

TEST_CASE("gguf reads stories260K: header, metadata and tensor table") {
  auto f = GgufFile::open(test::models_dir() / "gguf/stories260K.gguf");
  CHECK(f->version() == 3);
  CHECK(f->alignment() == 32);
  CHECK(f->file_size() == 1185376);
  CHECK(f->data_offset() == 14176);
  REQUIRE(f->metadata().size() == 19);
  REQUIRE(f->tensors().size() == 48);
  CHECK(f->metadata().front().first == "tokenizer.ggml.tokens");
  CHECK(f->metadata().back().first == "llama.attention.layer_norm_rms_epsilon");

  CHECK(f->get_string("general.architecture") == "llama");
  CHECK(f->get_u64("llama.embedding_length") == 64);
  CHECK(f->get_i64("llama.feed_forward_length") == 172);
  CHECK(f->get_u64("tokenizer.ggml.padding_token_id") == 4294967295u);
  CHECK(f->get_f64("llama.attention.layer_norm_rms_epsilon") == Approx(1e-5));
  CHECK(f->get_f64("llama.block_count") == 5.0);  // integers read as numbers too

  const MetaValue* tokens = f->meta("tokenizer.ggml.tokens");
  REQUIRE(tokens);
  CHECK(tokens->type == MetaType::ARRAY);
  CHECK(tokens->elem == MetaType::STRING);
  REQUIRE(tokens->strings.size() == 512);
  CHECK(tokens->strings[1] == "<s>");
  CHECK(tokens->strings[259] == "\xe2\x96\x81t");
  const MetaValue* scores = f->meta("tokenizer.ggml.scores");
  REQUIRE(scores);
  CHECK(scores->elem == MetaType::F32);
  CHECK(scores->at<float>(261) == -2.0f);
  const MetaValue* types = f->meta("tokenizer.ggml.token_type");
  REQUIRE(types);
  CHECK(types->at<int32_t>(0) == 2);
  CHECK(types->at<int32_t>(3) == 6);
  // Zero-copy: strings and numeric arrays point into the file image.
  const uint8_t* lo = f->bytes().data();
  const uint8_t* hi = lo + f->file_size();
  auto inside = [&](const void* p) { return p >= lo && p < hi; };
  CHECK(inside(tokens->strings[5].data()));
  CHECK(inside(scores->raw));

  const Tensor* emb = f->weight("token_embd.weight");
  REQUIRE(emb);
  CHECK(emb->dtype == DType::F32);
  CHECK(emb->ndim == 2);
  CHECK(emb->ne[0] == 64);
  CHECK(emb->ne[1] == 512);
  CHECK(emb->contiguous());
  CHECK(emb->host == lo + 14176);
  const TensorInfo* down = f->tensor_info("blk.4.ffn_down.weight");
  REQUIRE(down);
  CHECK(tensor_shape_string(down->view) == "F32 [172, 64]");
  CHECK(down->bytes == 172 * 64 * 4);
  CHECK(down->view.host == lo + f->data_offset() + down->offset);
  CHECK(f->weight("blk.5.ffn_down.weight") == nullptr);
  CHECK(f->meta("llama.nope") == nullptr);
  CHECK(f->path().find("stories260K.gguf") != std::string::npos);
}

TEST_CASE("gguf typed getters refuse missing keys and wrong types clearly") {
  auto f = GgufFile::open(test::models_dir() / "gguf/stories260K.gguf");
  check_message(error_of([&] { f->get_u64("llama.embeding_length"); }),
                {"stories260K.gguf: ", "'llama.embeding_length' is missing", "did you mean 'llama.embedding_length'"});
  check_message(error_of([&] { f->get_string("llama.block_count"); }),
                {"'llama.block_count' is u32, expected a string"});
  check_message(error_of([&] { f->get_u64("general.name"); }), {"'general.name' is string, expected an unsigned integer"});
  check_message(error_of([&] { f->get_bool("llama.block_count"); }), {"expected a bool"});
  check_message(error_of([&] { f->get_f64("tokenizer.ggml.tokens"); }), {"is array, expected a number"});
  CHECK_FALSE(f->find_u64("llama.expert_count").has_value());
  CHECK_FALSE(f->find_string("general.license").has_value());
  check_message(error_of([&] { f->find_string("llama.block_count"); }),
                {"stories260K.gguf: ", "'llama.block_count' is u32, expected a string"});
}

TEST_CASE("gguf getters check signs and ranges of integers") {
  Bytes b;
  b.header(0, 5)
      .str("neg").u32(5).i32(-3)
      .str("big").u32(10).u64(~uint64_t{0})
      .str("flag").u32(7).u8(1)
      .str("small").u32(0).u8(200)
      .str("half").u32(6).f32(0.5f);
  auto f = GgufFile::from_memory(b, "ints.gguf");
  check_message(error_of([&] { f->get_u64("neg"); }), {"ints.gguf: metadata 'neg' is -3, expected a value >= 0"});
  CHECK(f->get_i64("neg") == -3);
  CHECK(f->get_f64("neg") == -3.0);
  CHECK(f->get_u64("big") == ~uint64_t{0});
  check_message(error_of([&] { f->get_i64("big"); }), {"'big' is 18446744073709551615, more than a signed 64-bit"});
  CHECK(f->get_bool("flag"));
  check_message(error_of([&] { f->get_u64("flag"); }), {"'flag' is bool, expected an unsigned integer"});
  CHECK(f->get_u64("small") == 200);
  CHECK(f->get_i64("small") == 200);
  CHECK(f->get_f64("half") == 0.5);
  check_message(error_of([&] { f->get_u64("half"); }), {"'half' is f32"});
  CHECK(f->tensors().empty());
}

TEST_CASE("gguf reads version 2 files, a custom alignment and nested arrays") {
  Bytes b;
  b.header(1, 2, 2).kv_u32("general.alignment", 64);
  // [[1, 2], [3]] as an array of two u8 arrays
  b.str("nested").u32(9).u32(9).u64(2).u32(0).u64(2).u8(1).u8(2).u32(0).u64(1).u8(3);
  b.tensor("w", {32, 2}, 8, 0).pad_to(64);
  size_t data = b.size();
  b.zeros(2 * 34);
  auto f = GgufFile::from_memory(b, "v2.gguf");
  CHECK(f->version() == 2);
  CHECK(f->alignment() == 64);
  CHECK(f->data_offset() == data);
  const MetaValue* n = f->meta("nested");
  REQUIRE(n);
  REQUIRE(n->arrays.size() == 2);
  CHECK(n->arrays[0].count == 2);
  CHECK(n->arrays[0].at<int>(1) == 2);
  CHECK(n->arrays[1].at<int>(0) == 3);
  const TensorInfo* w = f->tensor_info("w");
  REQUIRE(w);
  CHECK(w->view.dtype == DType::Q8_0);
  CHECK(w->bytes == 68);
  CHECK(w->view.nb[1] == 34);
  CHECK(w->view.contiguous());
}

TEST_CASE("gguf reads tensor data stored in another order than the tensor table") {
  // The table lists a, b, c; the data holds c, a, b. Only overlap is refused, never the order.
  Bytes t;
  t.header(3, 0).tensor("a", {8}, 0, 64).tensor("b", {16}, 0, 96).tensor("c", {4, 4}, 0, 0).pad_to(32);
  const size_t data = t.size();
  for (int i = 0; i < 40; ++i) t.f32(static_cast<float>(i));  // c: 0..15, then a: 16..23 at byte 64
  auto f = GgufFile::from_memory(t, "order.gguf");
  const uint8_t* base = f->bytes().data() + data;
  CHECK(f->tensor_info("c")->view.host == base);
  CHECK(f->tensor_info("a")->view.host == base + 64);
  CHECK(f->tensor_info("b")->view.host == base + 96);
  CHECK(f->weight("a")->data<float>()[0] == 16.0f);
  CHECK(f->weight("c")->data<float>()[15] == 15.0f);
}
