// The content filter: banned strings, regular expressions and token ids kept out of the text.
#include <algorithm>

#include "samplers.h"

namespace semline::samplers {
namespace {

void lower_ascii(std::string& s) {
  for (char& ch : s)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
}

constexpr size_t kNone = static_cast<size_t>(-1);

}  // namespace

ContentFilter::ContentFilter(const Tokenizer* tokenizer, BanList bans) : tok_(tokenizer), bans_(std::move(bans)) {
  const bool text = !bans_.strings.empty() || !bans_.regexes.empty();
  if (text && !tok_)
    throw Error("ban and ban_regex need the line's tokenizer to read the candidates' text, and none was given");
  for (size_t i = 0; i < bans_.strings.size(); ++i) {
    std::string& s = bans_.strings[i];
    if (s.empty()) throw Error("ban[" + std::to_string(i) + "] is empty; a banned string has at least one byte");
    if (bans_.ignore_case) lower_ascii(s);
    longest_ = std::max(longest_, s.size());
  }
  const boost::regex::flag_type flags = bans_.ignore_case ? boost::regex::perl | boost::regex::icase : boost::regex::perl;
  for (size_t i = 0; i < bans_.regexes.size(); ++i) {
    try {
      regexes_.emplace_back(bans_.regexes[i], flags);
    } catch (const boost::regex_error& e) {
      throw Error("ban_regex[" + std::to_string(i) + "] = \"" + bans_.regexes[i] +
                  "\" is not a valid regular expression (Perl syntax): " + e.what());
    }
  }
  const int64_t n_vocab = tok_ ? tok_->n_vocab() : 0;
  for (int64_t id : bans_.ids) {
    if (tok_ && id >= n_vocab)
      throw Error("ban_ids: token " + std::to_string(id) + " is outside the vocabulary (0.." +
                  std::to_string(n_vocab - 1) + ")");
    if (static_cast<size_t>(id) >= banned_id_.size()) banned_id_.resize(static_cast<size_t>(id) + 1, false);
    banned_id_[static_cast<size_t>(id)] = true;
  }
  if (text) {
    bytes_.resize(static_cast<size_t>(n_vocab));
    for (int32_t id = 0; id < n_vocab; ++id) {
      bytes_[id] = tok_->token_bytes(id);
      if (bans_.ignore_case && !bans_.strings.empty()) lower_ascii(bytes_[id]);
    }
  }
}

std::string ContentFilter::text_before(std::span<const int32_t> history, size_t bytes) const {
  std::string text;
  for (auto it = history.rbegin(); it != history.rend() && text.size() < bytes; ++it) {
    const int32_t id = *it;
    if (id >= 0 && static_cast<size_t>(id) < bytes_.size()) text.insert(0, bytes_[id]);
  }
  if (text.size() > bytes) text.erase(0, text.size() - bytes);
  return text;
}

bool ContentFilter::banned_string(const std::string& token) const {
  for (const std::string& s : bans_.strings) {
    // Only the last |s| - 1 bytes before the token can take part in a match that ends inside it,
    // and a match of |s| bytes can lie wholly in that window only by ending inside the token.
    const size_t keep = std::min(before_.size(), s.size() - 1);
    if (keep == 0 ? token.find(s) != std::string::npos
                  : (before_.substr(before_.size() - keep) + token).find(s) != std::string::npos)
      return true;
  }
  return false;
}

// Whether re has a non-empty match ending inside the token, searching from before_[from] (or,
// for kNone, from the token's first byte) with the byte before that as context.
bool ContentFilter::banned_match(const boost::regex& re, size_t from, const std::string& token) {
  const size_t start = from == kNone ? before_.size() : from;
  const size_t context = start > 0 ? 1 : 0;
  text_.assign(before_, start - context, before_.size() - (start - context));
  text_ += token;
  const auto begin = text_.cbegin() + static_cast<std::ptrdiff_t>(context);
  const auto token_at = text_.cbegin() + static_cast<std::ptrdiff_t>(context + before_.size() - start);
  const auto flags = context ? boost::match_prev_avail : boost::match_default;
  for (boost::sregex_iterator m(begin, text_.cend(), re, flags), end; m != end; ++m)
    if ((*m)[0].second > token_at && (*m)[0].first != (*m)[0].second) return true;
  return false;
}

void ContentFilter::apply(Candidates& c, std::span<const int32_t> history) {
  c.selected = -1;
  const bool text = !bytes_.empty();
  if (text) {
    before_ = text_before(history, std::max(longest_, static_cast<size_t>(bans_.window)));
    if (bans_.ignore_case && !bans_.strings.empty()) lower_ascii(before_);
    // Per expression, the first position of before_ where a match could start and still be
    // going at its end: only from there can a match reach into a candidate.
    open_from_.assign(regexes_.size(), kNone);
    for (size_t r = 0; r < regexes_.size(); ++r)
      for (size_t p = 0; p < before_.size() && open_from_[r] == kNone; ++p) {
        boost::smatch m;
        const auto flags = boost::match_partial | boost::match_continuous | (p ? boost::match_prev_avail : boost::match_default);
        if (boost::regex_search(before_.cbegin() + static_cast<std::ptrdiff_t>(p), before_.cend(), m, regexes_[r], flags))
          open_from_[r] = p;
      }
  }
  std::erase_if(c.items, [&](const Candidate& x) {
    const auto id = static_cast<size_t>(x.id);
    if (id < banned_id_.size() && banned_id_[id]) return true;
    if (!text || id >= bytes_.size() || bytes_[id].empty()) return false;  // no text: completes nothing
    if (banned_string(bytes_[id])) return true;
    for (size_t r = 0; r < regexes_.size(); ++r)
      if (banned_match(regexes_[r], open_from_[r], bytes_[id])) return true;
    return false;
  });
}

}  // namespace semline::samplers
