// Quantizes a whole HF model directory with GPTQ (sequential, DESIGN §2) or RTN and writes a GPTQ
// checkpoint (io/gptq_checkpoint.h). GPTQ is sequential over blocks: the inputs of block l come
// from blocks < l already quantized; inside a block the seven projections go in true-sequential
// groups (q/k/v, o, gate/up, down), each group calibrated on the outputs of the quantized groups
// before it. Embeddings, norms and the LM head stay as they are. One driver for every architecture.
#pragma once

#include <cstdint>
#include <string>

#include "dist/dist.h"
#include "quant/rtn.h"

namespace lota::calibrate {

struct QuantizeModelOptions {
    std::string method = "gptq";    ///< "gptq" or "rtn"
    quant::QuantOptions quant;      ///< bits, group size, sym, act-order, damp, block size
    std::string calib_path;         ///< .txt or .jsonl; required for gptq
    int64_t calib_samples = 128;    ///< random windows
    int64_t calib_seqlen = 2048;    ///< tokens per window
    uint64_t seed = 0;              ///< window sampling
    std::string device = "cpu";     ///< "cpu" or "cuda": where calibration runs (fp32)
    bool overwrite = false;         ///< replace an existing non-empty output directory (util/fs.h StagedDir)
};

/// Summary of a quantization run.
struct QuantizeModelReport {
    int64_t n_linears = 0;
    double mean_rel_error = 0;  ///< GPTQ only: mean of tr(ΔW·H·ΔWᵀ)/tr(W·H·Wᵀ) over linears
    double seconds = 0;
    double peak_memory_mib = 0;  ///< GPU allocator peak on CUDA, peak resident set on CPU
};

/// Reads `model_dir`, quantizes every block projection and writes the checkpoint to `out_dir`
/// (atomically). Throws lota::Error for bad options, files or calibration data. With `group` of
/// several ranks (dist/dist.h) the calibration windows are split across the ranks, each group's
/// Hessian is summed over them (exactly: quant/gptq.h) and every rank solves the same GPTQ problems,
/// so the codes equal one process's; rank 0 writes the checkpoint.
QuantizeModelReport quantize_model(const std::string& model_dir, const std::string& out_dir,
                                   const QuantizeModelOptions& opts, dist::Group* group = nullptr);

}  // namespace lota::calibrate
