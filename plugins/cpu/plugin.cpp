// The plugin's entry point: the only exported symbol of libsemline-cpu.
#include <semline/plugin.h>

#include "register.h"

static void register_all(semline::Registry& r) { semline::cpu::register_cpu(r); }

SEMLINE_PLUGIN("cpu", "0.1.0", "CPU backend (worker pool, AVX-512/AVX2/scalar kernels) and llama-family stages",
               register_all)
