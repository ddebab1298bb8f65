// Calibration token windows for GPTQ: text from a .txt file (one document) or a .jsonl file (one
// {"text": ...} object per line), tokenized once, and N random windows of L tokens drawn with a
// seed (the GPTQ paper draws random 2048-token windows of C4 documents). Not a general dataset
// reader: eval and training have their own.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

namespace lota::text {
class Tokenizer;
}

namespace lota::calibrate {

/// The documents of `path`: the whole file for .txt; for .jsonl the "text" field of each line,
/// or, for chat records, their "messages" contents joined by blank lines. Throws naming the file
/// and line for malformed JSON or a record with neither.
std::vector<std::string> calib_read_texts(const std::string& path);

/// ids [n_samples, L] int64: windows drawn uniformly (std::mt19937_64 seeded with `seed`) from
/// the concatenated tokens of all documents (separated by EOS when the tokenizer has one).
/// When there are fewer than L tokens, warns "text too short" and uses L = all tokens; when
/// the windows must overlap heavily (fewer than n·L tokens), warns too. Throws if < 2 tokens.
at::Tensor calib_windows(const std::string& path, const text::Tokenizer& tok, int64_t n_samples, int64_t seqlen,
                         uint64_t seed);

}  // namespace lota::calibrate
