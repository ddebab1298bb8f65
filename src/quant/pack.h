// GPTQModel/AutoGPTQ "gptq" packing of codes and zero points (DESIGN §3), 2/3/4/8 bits.
// Bit layout: see note [GPTQ bit stream] in kernels/dequant_formula.h.
//   qweight int32 [K*b/32, N]  codes Q packed along K (pack_codes/unpack_codes, quantized_weight.h)
//   qzeros  int32 [G, N*b/32]  zero points packed along N
//
// Note [qzeros v1 and v2]: the "gptq" (v1) file format stores Z − 1; "gptq_v2" stores Z. Two ways
// of forming Z − 1 exist in files, and they differ:
//   whole word  add (reading) or subtract (writing) one constant to each *packed word*, modulo 2^32:
//               0x55555555 for 2 bits, 0x11111111 for 4, 0x01010101 for 8, and for 3 bits
//               0x49249249, 0x92492492, 0x24924924 for the three words of each 32-code unit (a 1 at
//               every field start). Carries and borrows cross field boundaries inside a word: Z = 0
//               is written as maxq and borrows one from the next field up, and the borrow of a field
//               at the top of a word (or of the low part of a 3-bit field that straddles two words)
//               is dropped. Adding and subtracting a constant mod 2^32 are inverse bijections, so
//               every Z round-trips exactly through a whole-word writer and reader.
//   per field   each field holds (Z − 1) mod 2^bits on its own, no carries between fields.
// GPTQModel uses whole words for 2, 4 and 8 bits, and per field for 3 bits (since 7.0.0; AutoGPTQ
// packs per field too). The two agree for 2/4/8 bits unless some Z = 0; for 3 bits they also differ
// wherever a straddling field's low part borrows, which is common. lota writes 2/4/8 bits whole
// word and 3 bits per field, and reads 3-bit files by what they record (io::Qzeros3Bit).
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace lota::quant {

/// Packs integer zero points Z [G, N] (values in [0, 2^bits)) along N into int32 [G, N*bits/32]
/// without any v1 offset (the v2 form).
at::Tensor pack_zeros(const at::Tensor& zeros, int bits);
/// Inverse of pack_zeros: int32 [G, N*bits/32] -> int32 [G, N] with N = cols*32/bits.
at::Tensor unpack_zeros(const at::Tensor& qzeros, int bits);

/// The constant added to packed word `w` (counting from 0 along the packed axis) by the v1 -> v2
/// conversion: 1 at the lowest bit of every field starting in that word.
uint32_t qzeros_v1_word_constant(int64_t w, int bits);
/// v1 file words -> zero-exact v2 words (whole-word add mod 2^32, see note [qzeros v1 and v2]).
at::Tensor qzeros_v1_to_v2(const at::Tensor& qzeros_v1, int bits);
/// v2 words -> v1 file words (whole-word subtract mod 2^32).
at::Tensor qzeros_v2_to_v1(const at::Tensor& qzeros_v2, int bits);
/// v1 file words -> v2 words, each field (Z − 1) mod 2^bits on its own (see note [qzeros v1 and v2]).
at::Tensor qzeros_v1_to_v2_per_field(const at::Tensor& qzeros_v1, int bits);
/// v2 words -> v1 file words, field by field: (Z − 1) mod 2^bits.
at::Tensor qzeros_v2_to_v1_per_field(const at::Tensor& qzeros_v2, int bits);

}  // namespace lota::quant
