// In-memory form of one GPTQ-quantized linear layer (DESIGN §1 notation: K in, N out, G groups,
// b bits). Codes stay packed as in the checkpoint; zero points are kept unpacked and exact
// ("v2": the true Z, not the v1 file's Z − 1). Conversion from/to the file form is in pack.h.
// This header does not read files and does not run GEMMs (see io/gptq_checkpoint.h, model/quant_linear.h).
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

namespace lota::quant {

struct QuantizedWeight {
    at::Tensor qweight;  ///< int32 [K*b/32, N]: codes Q packed along K (see pack.h, Note [GPTQ bit stream])
    at::Tensor zeros;    ///< int32 [G, N]: zero points Z, unpacked and exact (v2)
    at::Tensor scales;   ///< fp16 [G, N]: scales S
    at::Tensor g_idx;    ///< int32 [K]: group of each input feature (k/g unless act-order)
    at::Tensor bias;     ///< optional [N]; undefined when absent
    int bits = 4;        ///< b ∈ {2, 3, 4, 8}
    int group_size = 128;  ///< g; -1 = one group per output channel (G = 1)
    int64_t in_features = 0, out_features = 0;  ///< K, N
    at::Tensor offset;  ///< optional float32 [G, N]: LoTA offset factor F; undefined when absent

    int64_t n_groups() const;  ///< G
    int maxq() const { return (1 << bits) - 1; }
};

/// Checks every tensor's dtype and shape against bits/group_size/in/out; throws lota::Error
/// starting with `what` (e.g. the layer name) and giving found and expected shapes. Weights read
/// from a file are checked by io::gptq_linear_read instead, against the file's tensors.
void quantized_weight_check(const QuantizedWeight& qw, const char* what = "quantized weight");

/// Unpacks qw.qweight into codes Q: uint8 [K, N] on qw's device.
at::Tensor unpack_codes(const QuantizedWeight& qw);

/// Packs codes Q (uint8 or any integer type, [K, N], values in [0, 2^bits − 1]) into int32
/// [K*bits/32, N]. Throws when K*bits is not a multiple of 32 or a code is out of range (the range
/// check reads back from the device: use pack_codes_unchecked on hot paths).
at::Tensor pack_codes(const at::Tensor& codes, int bits);
/// pack_codes without the range check, for codes that are in range by construction: for 2, 4 and
/// 8 bits a few tensor ops on the codes' device with no host sync (Note [byte view of packed codes]).
at::Tensor pack_codes_unchecked(const at::Tensor& codes, int bits);

/// Dequantized weight W[k,n] = S·(Q − Z + F) as [K, N] of `dtype` on qw's device, computed in
/// float32 and rounded once at the end (F only when qw.offset is defined). Runs kernels/dequant.h
/// (CPU reference loops or the CUDA kernel, which agree bit for bit).
at::Tensor dequantize(const QuantizedWeight& qw, at::ScalarType dtype = at::kFloat);

}  // namespace lota::quant

namespace lota::quant {

/// Assembles a QuantizedWeight from integer-valued codes Q [N, K] (any numeric dtype, the
/// layout of an HF weight), scales and zeros [G, N] (float), g_idx [K]. Packs the codes and
/// stores scales as fp16, zeros as int32; all tensors end up on the CPU. Checks the result
/// (quantized_weight_check): the one check of a weight that code, not a file, made.
QuantizedWeight quantized_weight_make(const at::Tensor& Q, const at::Tensor& scales, const at::Tensor& zeros,
                                      const at::Tensor& g_idx, int bits, int group_size);

}  // namespace lota::quant
