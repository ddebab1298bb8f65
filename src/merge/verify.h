// Bit-exact verification of a LoTA-QAF merge: the adapter applied unmerged (LotaLinear, the
// training path) and the merged checkpoint must give identical logits on the same inputs.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include <ATen/core/Tensor.h>

#include "model/transformer.h"

namespace lota::merge {

/// Logits [B, T, V] of the model in `model_dir` computed on `load`'s device and dtype (resolved
/// names), with the adapter in `adapter_dir` applied unmerged when `adapter_dir` is not empty;
/// ids/mask int64 [B, T] on the CPU. Returned as float32 on the CPU (a widening copy: exact).
at::Tensor logits_compute(const std::string& model_dir, const std::string& adapter_dir, const at::Tensor& ids,
                          const at::Tensor& mask, const model::LoadOptions& load);

/// Random sample inputs: ids [batch, len] below `vocab` from `seed`, mask with the last row
/// right-padded to half length (so the padding path is covered).
std::pair<at::Tensor, at::Tensor> verify_inputs(int64_t batch, int64_t len, int64_t vocab, uint64_t seed);

/// Throws lota::Error unless `a` and `b` are bit-identical; the message gives the number of
/// differing elements, the worst index and both values.
void logits_require_equal(const at::Tensor& a, const at::Tensor& b, const std::string& what);

}  // namespace lota::merge
