// Projections of one input run as one product: q/k/v and gate/up at inference (Transformer::
// fuse_projections). At batch 1 each product is a bandwidth-bound kernel over its weights, and the
// small ones (k, v: 4096 × 1024 in an 8B model) run far below bandwidth; one launch over the
// concatenated weights replaces three (bench/decode.md).
#pragma once

#include <vector>

#include "model/linear.h"

namespace lota::model {

/// One Linear whose output is the parts' outputs side by side: y = [part0(x), part1(x), ...] along the
/// last dimension. Dense parts concatenate their weights [N_i, K]; quantized parts their codes,
/// zeros, scales and LoTA offsets along N (a part without an offset or a bias gets zeros, which
/// change no value); a LoTA-QAF part contributes its merged layer (its adapter is fixed at inference).
/// Returns nullptr when the parts cannot be one product: mixed or other kinds (e.g. LoRA), different
/// in_features, device or dtypes, bit widths, group sizes or g_idx. The parts are not modified.
LinearPtr fuse_linears(const std::vector<LinearPtr>& parts);

}  // namespace lota::model
