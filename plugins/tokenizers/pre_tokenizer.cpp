#include "pre_tokenizer.h"

#include <algorithm>
#include <utility>

#include "utf8.h"

namespace semline::tokenizers {

namespace {

using Char = PreTokenizer::Char;
using Chars = std::vector<Char>;

bool is_space(const Char& c) { return c.cls == CharClass::Space; }
bool is_letter(const Char& c) { return c.cls == CharClass::Letter; }
bool is_number(const Char& c) { return c.cls == CharClass::Number; }
bool is_punct(const Char& c) { return c.punct; }

// The length of the run of chars[at..end) that `in_class` accepts.
template <bool (*InClass)(const Char&)>
size_t run(const Chars& cs, size_t at, size_t end) {
  size_t e = at;
  while (e < end && InClass(cs[e])) ++e;
  return e - at;
}

// \s?X+ : an optional white space, then a run of X.
template <bool (*InClass)(const Char&)>
size_t space_then_run(const Chars& cs, size_t at, size_t end) {
  const size_t body = is_space(cs[at]) && at + 1 < end && InClass(cs[at + 1]) ? at + 1 : at;
  const size_t n = run<InClass>(cs, body, end);
  return n ? body + n - at : 0;
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S), and \s+ where nothing
// else matches (llama.cpp's own code for this pattern adds it, so every character lands in a word).
size_t gpt2(const Chars& cs, size_t at, size_t end) {
  const uint32_t cp = cs[at].cp;
  auto cp_at = [&](size_t i) { return i < end ? cs[i].cp : kInvalidCodePoint; };
  if (cp == '\'') {
    const uint32_t c1 = cp_at(at + 1), c2 = cp_at(at + 2);
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  }
  // An optional ' ', then a run of one class: letters, numbers or the rest.
  const size_t body = cp == ' ' ? at + 1 : at;
  if (body < end && !is_space(cs[body])) {
    const CharClass cls = cs[body].cls;
    size_t e = body;
    while (e < end && cs[e].cls == cls) ++e;
    return e - at;
  }
  // \s+(?!\S) leaves the last white space of a run to the word that follows; \s+ takes the rest.
  size_t e = at + run<is_space>(cs, at, end);
  if (e - at > 1 && e < end) --e;
  return e - at;
}

// (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,Digits}|
//  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ : Llama 3's pattern (Digits 3) and Qwen2's (1).
template <size_t Digits>
size_t llama3(const Chars& cs, size_t at, size_t end) {
  auto lower_at = [&](size_t i) { return i < end && cs[i].cp < 128 ? cs[i].cp | 0x20 : kInvalidCodePoint; };
  auto newline = [](const Char& c) { return c.cp == '\r' || c.cp == '\n'; };
  const Char& c = cs[at];
  if (c.cp == '\'') {
    const uint32_t c1 = lower_at(at + 1), c2 = lower_at(at + 2);
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  }
  // An optional character that is no newline, letter or number, then letters.
  if (!newline(c) && !is_letter(c) && !is_number(c) && at + 1 < end && is_letter(cs[at + 1]))
    return 1 + run<is_letter>(cs, at + 1, end);
  if (is_letter(c)) return run<is_letter>(cs, at, end);
  if (is_number(c)) return std::min(Digits, run<is_number>(cs, at, end));
  // An optional ' ', then symbols and punctuation, then newlines.
  const size_t body = c.cp == ' ' ? at + 1 : at;
  auto other = [](const Char& x) { return x.cls == CharClass::Other; };
  if (body < end && other(cs[body])) {
    size_t e = body;
    while (e < end && other(cs[e])) ++e;
    while (e < end && newline(cs[e])) ++e;
    return e - at;
  }
  // White space: up to its last newline if it has one; else all of it, less the last when a
  // word follows (\s+(?!\S)) and more than one.
  const size_t e = at + run<is_space>(cs, at, end);
  size_t last_newline = at;
  for (size_t i = at; i < e; ++i)
    if (newline(cs[i])) last_newline = i + 1;
  if (last_newline > at) return last_newline - at;
  return e - at > 1 && e < end ? e - 1 - at : e - at;
}

size_t number(const Chars& cs, size_t at, size_t) { return is_number(cs[at]) ? 1 : 0; }  // \p{N}
size_t numbers(const Chars& cs, size_t at, size_t end) { return run<is_number>(cs, at, end); }  // \p{N}+

// [0-9][0-9][0-9]
size_t three_digits(const Chars& cs, size_t at, size_t end) {
  if (at + 3 > end) return 0;
  for (size_t i = at; i < at + 3; ++i)
    if (cs[i].cp < '0' || cs[i].cp > '9') return 0;
  return 3;
}

// [\p{P}\$\+<=>\^~\|]+ (falcon adds `)
template <bool Backtick>
size_t punct_symbols(const Chars& cs, size_t at, size_t end) {
  size_t e = at;
  for (; e < end; ++e) {
    const uint32_t c = cs[e].cp;
    const bool symbol =
        c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' || c == '~' || c == '|' || (Backtick && c == '`');
    if (!cs[e].punct && !symbol) break;
  }
  return e - at;
}

size_t newline(const Chars& cs, size_t at, size_t) { return cs[at].cp == '\r' || cs[at].cp == '\n' ? 1 : 0; }  // [\r\n]

// \s+$ : the white space that ends the piece.
size_t trailing_space(const Chars& cs, size_t at, size_t end) {
  return run<is_space>(cs, at, end) == end - at ? end - at : 0;
}

// DeepSeek's classes, given as explicit code point ranges in its patterns. llama.cpp matches them
// on a copy of the text where non-ASCII white space is U+000B, so no white space is in them.

// [A-Za-zµÀ-ÖØ-öø-ƺ...] of deepseek-llm: the cased scripts' letters.
constexpr CodeRange kDeepseekLetters[] = {
    {0x00041, 0x0005A}, {0x00061, 0x0007A}, {0x000B5, 0x000B5}, {0x000C0, 0x000D6}, {0x000D8, 0x000F6}, {0x000F8, 0x001BA},
    {0x001BC, 0x001BF}, {0x001C4, 0x00293}, {0x00295, 0x002AF}, {0x00370, 0x00373}, {0x00376, 0x00377}, {0x0037B, 0x0037D},
    {0x0037F, 0x0037F}, {0x00386, 0x00386}, {0x00388, 0x0038A}, {0x0038C, 0x0038C}, {0x0038E, 0x003A1}, {0x003A3, 0x003F5},
    {0x003F7, 0x00481}, {0x0048A, 0x0052F}, {0x00531, 0x00556}, {0x010A0, 0x010C5}, {0x013A0, 0x013F5}, {0x013F8, 0x013FD},
    {0x01C90, 0x01CBA}, {0x01CBD, 0x01CBF}, {0x01D00, 0x01D2B}, {0x01D6B, 0x01D77}, {0x01D79, 0x01D9A}, {0x01E00, 0x01F15},
    {0x01F18, 0x01F1D}, {0x01F20, 0x01F45}, {0x01F48, 0x01F4D}, {0x01F50, 0x01F57}, {0x01F59, 0x01F59}, {0x01F5B, 0x01F5B},
    {0x01F5D, 0x01F5D}, {0x01F5F, 0x01F7D}, {0x01F80, 0x01FB4}, {0x01FB6, 0x01FBC}, {0x01FBE, 0x01FBE}, {0x01FC2, 0x01FC4},
    {0x01FC6, 0x01FCC}, {0x01FD0, 0x01FD3}, {0x01FD6, 0x01FDB}, {0x01FE0, 0x01FEC}, {0x01FF2, 0x01FF4}, {0x01FF6, 0x01FFC},
    {0x02102, 0x02102}, {0x02107, 0x02107}, {0x0210A, 0x02113}, {0x02115, 0x02115}, {0x02119, 0x0211D}, {0x02124, 0x02124},
    {0x02126, 0x02126}, {0x02128, 0x02128}, {0x0212A, 0x0212D}, {0x0212F, 0x02134}, {0x02139, 0x02139}, {0x0213C, 0x0213F},
    {0x02145, 0x02149}, {0x0214E, 0x0214E}, {0x02183, 0x02184}, {0x02C00, 0x02C7B}, {0x02C7E, 0x02CE4}, {0x02CEB, 0x02CEE},
    {0x02CF2, 0x02CF3}, {0x0A640, 0x0A66D}, {0x0A680, 0x0A69B}, {0x0A722, 0x0A76F}, {0x0A771, 0x0A787}, {0x0A78B, 0x0A78E},
    {0x0AB70, 0x0ABBF}, {0x0FB00, 0x0FB06}, {0x0FB13, 0x0FB17}, {0x0FF21, 0x0FF3A}, {0x0FF41, 0x0FF5A}, {0x10400, 0x1044F},
    {0x104B0, 0x104D3}, {0x104D8, 0x104FB}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};
// [!-/:-~！-／：-～‘-‟　-。] of deepseek-llm: ASCII and full-width punctuation and symbols, quotes.
constexpr CodeRange kDeepseekPunct[] = {{0x0021, 0x002F}, {0x003A, 0x007E}, {0x2018, 0x201F},
                                        {0x3000, 0x3002}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E}};
// [一-龥ࠀ-一가-퟿] of both DeepSeek patterns: CJK ideographs, much of the BMP below them, Hangul.
constexpr CodeRange kDeepseekCjk[] = {{0x0800, 0x9FA5}, {0xAC00, 0xD7FF}};

template <const auto& Ranges>
bool in_table(const Char& c) {
  return !is_space(c) && in_ranges(Ranges, c.cp);
}

struct Named {
  std::vector<std::string_view> names;
  PreTokenizer pre;
};

const std::vector<Named>& known() {
  static const std::vector<Named> table = {
      {{"gpt-2", "phi-2", "mpt", "olmo"}, PreTokenizer({gpt2})},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell"}, PreTokenizer({number, gpt2})},
      {{"falcon"}, PreTokenizer({punct_symbols<true>, gpt2, three_digits})},
      {{"default"}, PreTokenizer({punct_symbols<false>, gpt2, numbers, three_digits})},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"},
       PreTokenizer({llama3<3>}, true)},
      {{"dbrx", "smaug-bpe"}, PreTokenizer({llama3<3>})},
      {{"qwen2", "deepseek-r1-qwen", "stablelm2", "hunyuan"}, PreTokenizer({llama3<1>})},
      {{"deepseek-llm"},
       PreTokenizer({newline, space_then_run<in_table<kDeepseekLetters>>, space_then_run<in_table<kDeepseekPunct>>,
                     trailing_space, run<in_table<kDeepseekCjk>>, numbers})},
      {{"deepseek-coder"},
       PreTokenizer({newline, space_then_run<is_letter>, space_then_run<is_punct>, run<in_table<kDeepseekCjk>>, number})},
  };
  return table;
}

}  // namespace

const PreTokenizer* PreTokenizer::named(std::string_view pre) {
  for (const Named& n : known())
    if (std::find(n.names.begin(), n.names.end(), pre) != n.names.end()) return &n.pre;
  return nullptr;
}

std::string PreTokenizer::names() {
  std::string out;
  for (const Named& n : known())
    for (std::string_view name : n.names) out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

std::vector<Span> PreTokenizer::split(std::string_view text) const {
  Chars cs;
  cs.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const Utf8Unit u = utf8_next(text, pos);
    const bool valid = u.cp != kInvalidCodePoint;
    cs.push_back({u.cp, static_cast<uint32_t>(pos), valid ? char_class(u.cp) : CharClass::Other,
                  valid && is_punctuation(u.cp)});
    pos += u.len;
  }
  // Pieces as [first, last) character indices.
  std::vector<std::pair<size_t, size_t>> pieces = {{0, cs.size()}}, next;
  for (Rule rule : rules_) {
    next.clear();
    for (auto [first, last] : pieces) {
      size_t gap = first;
      for (size_t at = first; at < last;) {
        const size_t len = rule(cs, at, last);
        if (len == 0) {
          ++at;
          continue;
        }
        if (at > gap) next.emplace_back(gap, at);
        next.emplace_back(at, at + len);
        at += len;
        gap = at;
      }
      if (gap < last) next.emplace_back(gap, last);
    }
    pieces.swap(next);
  }
  std::vector<Span> words;
  words.reserve(pieces.size());
  for (auto [first, last] : pieces) {
    const size_t off = cs[first].off, stop = last < cs.size() ? cs[last].off : text.size();
    words.push_back({off, stop - off});
  }
  return words;
}

}  // namespace semline::tokenizers
