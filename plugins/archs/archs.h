// Architecture templates shipped with semline, one file per family.
#pragma once

#include <semline/registry.h>

namespace semline::archs {

ArchTemplate llama_template();
ArchTemplate gpt2_template();

// The head over output.weight, or over the token embedding where the model ties the two and
// carries no output.weight (llama.cpp's names).
StationSpec tied_head();

// Rejects hyper-parameters no model can have (zero sizes, heads that do not divide the width).
void check_hparams(const ModelView& model, const HParams& hp);

}  // namespace semline::archs
