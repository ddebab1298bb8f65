// Finite checks of loaded tensors: a NaN or Inf in a weight, scale, norm or adapter tensor would
// otherwise give NaN logits or a NaN perplexity with exit status 0.
#pragma once

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace lota::io {

/// Collects, for each tensor added, an "all finite" flag computed on the tensor's device (one pass,
/// no host sync per tensor), and reads all flags back at once in check(). Integer tensors pass.
class FiniteCheck {
  public:
    /// Queues `t` (kept referenced until check()); `file` and `name` are for the message.
    void add(const at::Tensor& t, const std::string& file, const std::string& name);
    /// Throws lota::Error naming the first queued tensor with a NaN or Inf ("FILE: tensor 'NAME' has
    /// N non-finite values (NaN or Inf) in F16, first at flat index I"), then forgets the queue.
    void check();

  private:
    struct Entry {
        at::Tensor tensor, finite;  ///< finite: bool scalar on the tensor's device
        std::string file, name;
    };
    std::vector<Entry> entries_;
};

/// Checks one tensor at once (FiniteCheck with a single entry).
void tensor_check_finite(const at::Tensor& t, const std::string& file, const std::string& name);

}  // namespace lota::io
