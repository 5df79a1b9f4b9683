#include "cpu/stage_fixtures.h"

namespace semline::cputest {

// n_ctx_train shorter than the test contexts: dense must grow its score rows.
Layer::Layer(RopeType rope_type, int64_t rope_dim, cpu::Isa isa)
    : hp(testing::layer_hparams(rope_type, testing::Heads{8, 2, 8, rope_dim}, 8)), be(3, isa) {}

}  // namespace semline::cputest
