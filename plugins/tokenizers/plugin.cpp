// The plugin's entry point; the tokenizers themselves live in a static library the tests link too.
#include <semline/plugin.h>

#include "tokenizers.h"

SEMLINE_PLUGIN("tokenizers", "0.1.0", "Tokenizers: SentencePiece BPE (spm), GPT-2 byte-level BPE (bpe), characters (char)",
               semline::tokenizers::register_tokenizers)
