// cuBLAS's TF32 setting for a scope: GPTQ needs full float32 for its Hessians and solve (TF32 matmuls
// lose ~10 mantissa bits; GPTQ's reference turns it off at import), while its calibration forwards may
// use it. Restores the previous setting on scope exit.
#pragma once

#include <ATen/Context.h>

namespace lota::quant {

class Tf32Guard {
  public:
    explicit Tf32Guard(bool allow) : prev_(at::globalContext().allowTF32CuBLAS()) {
        at::globalContext().setAllowTF32CuBLAS(allow);
    }
    ~Tf32Guard() { at::globalContext().setAllowTF32CuBLAS(prev_); }
    Tf32Guard(const Tf32Guard&) = delete;
    Tf32Guard& operator=(const Tf32Guard&) = delete;

  private:
    bool prev_;
};

}  // namespace lota::quant
