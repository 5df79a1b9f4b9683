// Name lookups of a GgufFile; keys view the names stored in its metadata and tensor vectors.
#pragma once

#include <string_view>
#include <unordered_map>

#include "core/model/gguf.h"

namespace semline::gguf {

struct GgufFile::Index {
  std::unordered_map<std::string_view, size_t> meta;     // key -> position in metadata()
  std::unordered_map<std::string_view, size_t> tensors;  // name -> position in tensors()
};

}  // namespace semline::gguf
