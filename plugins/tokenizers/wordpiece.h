// WordPiece (BERT) as llama.cpp runs it for tokenizer.ggml.model = "bert".
//
// Encode: user-defined tokens (and with parse_special control tokens, e.g. [CLS]) are cut out first
// (VocabTokenizer::split_special). The rest is
// normalised and cut into words: with tokenizer.ggml.normalizer.strip_accents (default: as
// lowercase) a character becomes the first code point of its NFD form and marks are dropped;
// white space ends a word; NUL, U+FFFD (and so malformed UTF-8) and control or format characters
// are dropped; with tokenizer.ggml.normalizer.lowercase (default true) a character is lowercased;
// punctuation,
// ASCII symbols and CJK ideographs are words of their own. Each word, written with a leading
// U+2581 (the vocabulary marks word starts so), is spelled greedily by the longest vocabulary
// piece at each byte; a word that cannot be spelled to its end is the unknown token.
//
// Decode: a piece's leading U+2581 reads as a space; control tokens print nothing.
#pragma once

#include <memory>

#include <semline/model.h>
#include <semline/stage.h>

namespace semline::tokenizers {

// Throws semline::Error naming the key when the vocabulary metadata is missing or malformed, or
// when it names no unknown token (a word it cannot spell needs one).
std::unique_ptr<Tokenizer> make_wordpiece_tokenizer(const ModelView& model, const LogFn& log);

}  // namespace semline::tokenizers
