// GPTQModel/AutoGPTQ "gptq" packing of codes and zero points (DESIGN §3), 2/3/4/8 bits.
// Bit layout: see note [GPTQ bit stream] in kernels/dequant_formula.h.
//   qweight int32 [K*b/32, N]  codes Q packed along K (pack_codes/unpack_codes, quantized_weight.h)
//   qzeros  int32 [G, N*b/32]  zero points packed along N
//
// Note [qzeros v1 and v2]: the "gptq" (v1) file format stores Z − 1. GPTQModel converts between
// v1 and its zero-exact internal "v2" by adding (reading) or subtracting (writing) one constant
// to each *whole packed word*, modulo 2^32: 0x55555555 for 2 bits, 0x11111111 for 4, 0x01010101
// for 8, and for 3 bits 0x49249249, 0x92492492, 0x24924924 for the three words of each 32-code
// unit (a 1 at every field start). Carries and borrows cross field boundaries (not word
// boundaries), so this is not "Z − 1 per field": an asymmetric zero point Z = 0 is written as
// field value maxq and borrows one from the next field up (the top field of a word borrows out
// of the word and the borrow is dropped). Because adding and subtracting a constant mod 2^32 are
// inverse bijections, every Z in [0, maxq], including 0 and maxq, round-trips exactly through
// our writer and reader and through GPTQModel's; a reader that adds 1 field by field decodes the
// field above a Z = 0 one too low. Z = maxq needs no borrow (its field holds maxq − 1).
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

}  // namespace lota::quant
