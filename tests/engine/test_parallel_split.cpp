// Tensor parallelism's split of a model, in one process: each rank's share of every weight, the
// hyper-parameters its block stations see, and the models and configs it refuses. The split line
// itself runs under mpirun (tests/parallel).
#include <catch2/catch.hpp>

#include <cstring>

#include "core/engine/communicator.h"
#include "core/engine/parallel.h"
#include "engine_fixture.h"

using namespace semline;
using namespace semline::engine_test;
using Catch::Matchers::Contains;

namespace {

PipelineGraph graph_of(const ModelFile& model, const std::string& path) {
  return build_graph(parse_config("[model]\npath = \"" + path + "\"\n", "tp.toml"), model, testing::built_plugins());
}

// The bytes of rows [r0, r0 + n) of matrix e of t, each row cut to bytes [c0, c0 + cn).
std::vector<unsigned char> cut(const Tensor& t, int64_t e, int64_t r0, int64_t n, size_t c0, size_t cn) {
  std::vector<unsigned char> out;
  const auto* p = static_cast<const unsigned char*>(t.host) + e * t.nb[2];
  for (int64_t r = r0; r < r0 + n; ++r) out.insert(out.end(), p + r * t.nb[1] + c0, p + r * t.nb[1] + c0 + cn);
  return out;
}

std::vector<unsigned char> bytes_of(const Tensor& t) {
  const auto* p = static_cast<const unsigned char*>(t.host);
  return {p, p + t.nb[3] * t.ne[3]};
}

}  // namespace

TEST_CASE("each rank's share: its heads' q, k, v rows, its columns of o and down, every expert's share, norms whole") {
  TempDir dir;
  for (DType dtype : {DType::F32, DType::Q8_0}) {
    INFO(dtype_name(dtype));
    SynthSpec s = synth_preset("mixtral-tiny");  // 8 heads, 4 kv heads, 8 experts of width 512, dim 256
    s.layers = 1;
    s.dtype = dtype;
    const std::string path = dir.file(std::string("mixtral-") + dtype_name(dtype) + ".gguf");
    synth_write(s, path);
    auto model = open_model_file(path);
    const PipelineGraph g = graph_of(*model, path);
    const HParams hp = shard_hparams(g, 2);
    CHECK(hp.n_head == 4);
    CHECK(hp.n_head_kv == 2);
    CHECK(hp.n_ff == 256);
    CHECK(hp.n_embd == 256);
    for (int rank : {0, 1}) {
      INFO("rank " << rank);
      ShardedModel shard(*model, block_nodes(g), rank, 2);
      auto whole = [&](const char* name) { return *model->weight(name); };
      auto part = [&](const char* name) { return *shard.weight(name); };
      // q: 8 heads of 32 -> rows [128 rank, 128 rank + 128); k: 4 kv heads -> rows [64 rank, +64).
      const Tensor q = whole("blk.0.attn_q.weight"), k = whole("blk.0.attn_k.weight");
      CHECK(part("blk.0.attn_q.weight").ne[1] == 128);
      CHECK(bytes_of(part("blk.0.attn_q.weight")) == cut(q, 0, 128 * rank, 128, 0, static_cast<size_t>(q.nb[1])));
      CHECK(bytes_of(part("blk.0.attn_k.weight")) == cut(k, 0, 64 * rank, 64, 0, static_cast<size_t>(k.nb[1])));
      // o: every row, the rank's 128 of 256 input columns.
      const Tensor o = whole("blk.0.attn_output.weight");
      const size_t half = static_cast<size_t>(dtype_row_bytes(dtype, 128));
      CHECK(part("blk.0.attn_output.weight").ne[0] == 128);
      CHECK(bytes_of(part("blk.0.attn_output.weight")) == cut(o, 0, 0, o.ne[1], half * rank, half));
      // Experts: each expert's 512 rows of gate (and up) halve, each expert's down keeps 256 of 512 columns.
      const Tensor gate = whole("blk.0.ffn_gate_exps.weight"), down = whole("blk.0.ffn_down_exps.weight");
      const Tensor pg = part("blk.0.ffn_gate_exps.weight"), pd = part("blk.0.ffn_down_exps.weight");
      CHECK((pg.ne[1] == 256 && pg.ne[2] == 8 && pd.ne[0] == 256 && pd.ne[2] == 8));
      const size_t dhalf = static_cast<size_t>(dtype_row_bytes(dtype, 256));
      for (int64_t e = 0; e < 8; ++e) {
        CHECK(cut(pg, e, 0, 256, 0, static_cast<size_t>(pg.nb[1])) ==
              cut(gate, e, 256 * rank, 256, 0, static_cast<size_t>(gate.nb[1])));
        CHECK(cut(pd, e, 0, pd.ne[1], 0, dhalf) == cut(down, e, 0, down.ne[1], dhalf * rank, dhalf));
      }
      // The head: the rank's 256 of the 512 rows of the output matrix; the embedding stays whole.
      ShardedModel head(*model, {&g.head}, rank, 2);
      const Tensor out = whole("output.weight");
      CHECK(bytes_of(*head.weight("output.weight")) == cut(out, 0, 256 * rank, 256, 0, static_cast<size_t>(out.nb[1])));
      CHECK(head.weight("token_embd.weight") == model->weight("token_embd.weight"));
      // Whole on every rank: the router, the norms, the embedding (the file's own views).
      for (const char* name : {"blk.0.ffn_gate_inp.weight", "blk.0.attn_norm.weight", "token_embd.weight"})
        CHECK(shard.weight(name) == model->weight(name));
    }
  }
}

TEST_CASE("expert parallelism: each rank holds whole experts, its range in the hyper-parameters, n_ff whole") {
  TempDir dir;
  SynthSpec s = synth_preset("mixtral-tiny");  // 8 experts of width 512
  s.layers = 1;
  s.dtype = DType::Q8_0;
  const std::string path = dir.file("mixtral-ep.gguf");
  synth_write(s, path);
  auto model = open_model_file(path);
  const PipelineGraph g = graph_of(*model, path);
  for (int rank : {0, 1}) {
    INFO("rank " << rank);
    const HParams hp = shard_hparams(g, 2, rank, true);
    CHECK(hp.n_ff == 512);
    CHECK(hp.n_head == 4);
    CHECK(hp.n_expert == 8);
    CHECK(hp.extra.at("expert_first") == 4 * rank);
    CHECK(hp.extra.at("expert_count") == 4);
    ShardedModel shard(*model, block_nodes(g), rank, 2, true);
    for (const char* name : {"blk.0.ffn_gate_exps.weight", "blk.0.ffn_up_exps.weight", "blk.0.ffn_down_exps.weight"}) {
      INFO(name);
      const Tensor whole = *model->weight(name), part = *shard.weight(name);
      CHECK((part.ne[0] == whole.ne[0] && part.ne[1] == whole.ne[1] && part.ne[2] == 4));
      for (int64_t e = 0; e < 4; ++e)
        CHECK(cut(part, e, 0, part.ne[1], 0, static_cast<size_t>(part.nb[1])) ==
              cut(whole, 4 * rank + e, 0, whole.ne[1], 0, static_cast<size_t>(whole.nb[1])));
    }
    // Attention is still split by heads; the router whole.
    CHECK(shard.weight("blk.0.attn_q.weight")->ne[1] == 128);
    CHECK(shard.weight("blk.0.ffn_gate_inp.weight") == model->weight("blk.0.ffn_gate_inp.weight"));
  }
  // Refused: experts the ranks cannot share, a model without experts.
  SynthSpec six = s;
  six.experts = 6;
  const std::string six_path = dir.file("mixtral-six.gguf");
  synth_write(six, six_path);
  auto sm = open_model_file(six_path);
  CHECK_THROWS_WITH(shard_hparams(graph_of(*sm, six_path), 4, 0, true), Contains("n_expert = 6 does not divide among 4 ranks"));
  SynthSpec llama{.dim = 64, .ffn = 128, .layers = 1, .heads = 4, .kv_heads = 2, .vocab = 512};
  const std::string dense = dir.file("dense.gguf");
  synth_write(llama, dense);
  auto dm = open_model_file(dense);
  const PipelineGraph dg = graph_of(*dm, dense);
  CHECK_THROWS_WITH(shard_hparams(dg, 2, 0, true), Contains("expert_parallel = true, but the model has no mixture"));
  CHECK_THROWS_WITH(ShardedModel(*dm, block_nodes(dg), 0, 2, true),
                    Contains("block 0 ffn: expert parallelism shares out a mixture's experts, and this feed-forward has none"));
}

TEST_CASE("pipeline stages take consecutive blocks, the first stages one more while the division leaves some") {
  auto stages = [](int64_t n_layer, int pipeline) {
    std::vector<std::pair<int32_t, int32_t>> out;
    for (int r = 0; r < pipeline; ++r) out.push_back(LineSplit{.pipeline = pipeline, .rank = r}.layers(n_layer));
    return out;
  };
  using R = std::vector<std::pair<int32_t, int32_t>>;
  CHECK(stages(5, 2) == R{{0, 3}, {3, 5}});
  CHECK(stages(16, 4) == R{{0, 4}, {4, 8}, {8, 12}, {12, 16}});
  CHECK(stages(7, 3) == R{{0, 3}, {3, 5}, {5, 7}});
  CHECK(LineSplit{.tensor = 2, .rank = 1}.layers(5) == std::pair<int32_t, int32_t>{0, 5});  // tensor: every block
  CHECK(LineSplit{.tensor = 2, .rank = 1}.first_stage());
  CHECK(LineSplit{.tensor = 2, .rank = 1}.last_stage());
}

TEST_CASE("what tensor parallelism refuses: uneven heads, a cut quantised block, a fused product, a recurrent mixer") {
  TempDir dir;
  auto refusal = [&](SynthSpec s, const std::string& name, int ranks) -> std::string {
    const std::string path = dir.file(name + ".gguf");
    synth_write(s, path);
    auto model = open_model_file(path);
    const PipelineGraph g = graph_of(*model, path);
    try {
      shard_hparams(g, ranks);
      ShardedModel shard(*model, block_nodes(g), 0, ranks);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  SynthSpec llama{.dim = 96, .ffn = 192, .layers = 1, .heads = 3, .kv_heads = 3, .vocab = 512};
  CHECK_THAT(refusal(llama, "three-heads", 2), Contains("n_head = 3 does not divide among 2 ranks"));
  // 192 / 4 = 48 down-product columns per rank: not whole Q8_0 blocks of 32.
  SynthSpec q8{.dim = 128, .ffn = 192, .layers = 1, .heads = 4, .kv_heads = 4, .vocab = 512, .dtype = DType::Q8_0};
  CHECK_THAT(refusal(q8, "q8", 4), Contains("block 0 ffn: tensor 'blk.0.ffn_down.weight' Q8_0 [192, 128] has 192 columns, "
                                            "which 4 ranks cannot split evenly into whole Q8_0 blocks of 32"));
  SynthSpec phi3{.arch = "phi3", .dim = 128, .ffn = 256, .layers = 1, .heads = 4, .kv_heads = 4, .vocab = 512};
  CHECK_THAT(refusal(phi3, "phi3", 2), Contains("cannot split tensor 'blk.0.attn_qkv.weight' (qkv)"));
  SynthSpec mamba{.arch = "mamba", .dim = 64, .layers = 1, .vocab = 512};
  CHECK_THAT(refusal(mamba, "mamba", 2), Contains("block 0 ssm: tensor parallelism does not split a recurrent mixer"));
}

TEST_CASE("[parallel]: a command that does not split the line, an unknown communicator, a bad count") {
  Line line(kStories);
  Config c = parse_config("[model]\npath = \"" + kStories + "\"\n[parallel]\ntensor = 2\n", "tp.toml");
  CHECK_THROWS_WITH(Pipeline(line.graph, *line.model, testing::built_plugins(), pipeline_options(c)),
                    Contains("[parallel] tensor = 2, pipeline = 1: this line is built in one process"));
  c.parallel.comm = "nccl";
  CHECK_THROWS_WITH(make_communicator(c, testing::built_plugins()),
                    Contains("tp.toml:3:1: [parallel] tensor = 2, pipeline = 1, comm = \"nccl\": no such communicator"));
  CHECK_THROWS_WITH(parse_config("[parallel]\ntensor = 0\n", "tp.toml"),
                    Contains("tp.toml:2:10: parallel.tensor = 0: out of range; expected an integer in 1..4096"));
  if (testing::built_plugins().find_comm("mpi")) {  // this process was not started by mpirun
    c.parallel.comm = "mpi";
    CHECK_THROWS_WITH(make_communicator(c, testing::built_plugins()),
                      Contains("comm = \"mpi\": this process was not started by mpirun"));
  }
  c.parallel.tensor = 1;
  CHECK(make_communicator(c, testing::built_plugins()) == nullptr);
  const Config ep = parse_config("[model]\npath = \"" + kStories + "\"\n[parallel]\nexpert_parallel = true\n", "tp.toml");
  CHECK(ep.parallel.expert_parallel);
  CHECK_THROWS_WITH(Pipeline(line.graph, *line.model, testing::built_plugins(), pipeline_options(ep)),
                    Contains("expert_parallel = true: the experts are split among the tensor ranks; set tensor = N too"));
  CHECK_THROWS_WITH(parse_config("[parallel]\nexpert_parallel = 1\n", "tp.toml"), Contains("parallel.expert_parallel"));
}
