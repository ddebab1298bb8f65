// GPTQ v1 re-export (gptq_export.h): the checkpoint is read with io::gptq_checkpoint_read, each linear's
// LoTA offsets F folded into its zero points (Z − F rounded to the grid), and written back with
// io::gptq_checkpoint_write; the tokenizer and generation files are copied.
#include "exporter/gptq_export.h"

#include <algorithm>
#include <string>

#include <ATen/ATen.h>

#include "io/gptq_checkpoint.h"
#include "io/model_files.h"
#include "quant/gptq_tensors.h"
#include "quant/quantized_weight.h"
#include "util/check.h"
#include "util/fs.h"

namespace lota::exporter {

GptqExportReport gptq_export(const ExportOptions& o) {
    const std::string &model = o.model, &out = o.out;
    const bool allow_lossy = o.allow_lossy, overwrite = o.overwrite;
    output_path_check(out, {{"--model", model}});
    output_dir_check(out, overwrite);
    io::GptqCheckpoint ckpt = io::gptq_checkpoint_read(model);
    LOTA_CHECK(!ckpt.linears.empty(), "%s: no quantized linears; --format gptq writes GPTQ or LoTA-merged models "
               "(`lota quantize` makes one)", model.c_str());
    GptqExportReport rep;
    for (auto& [prefix, t] : ckpt.linears) {
        quant::QuantizedWeight qw = quant::quantized_weight_from_gptq(t, ckpt.quant, prefix);
        ++rep.linears;
        if (qw.offset.defined()) {
            const at::Tensor zf = qw.zeros.to(at::kDouble) - qw.offset.to(at::kDouble);  // Z − F, [G, N]
            const at::Tensor zr = zf.round().clamp(0, qw.maxq());
            const double err = (zr - zf).abs().max().item<double>();
            LOTA_CHECK(err == 0 || allow_lossy,
                       "%s: %s has LoTA offsets F that are not integers (Z − F is up to %.3g grid steps from an "
                       "integer zero point); GPTQ stores integer zero points: --allow-lossy rounds Z − F",
                       model.c_str(), prefix.c_str(), err);
            rep.clamped += (zf.round() != zr).sum().item<int64_t>();
            rep.max_error_steps = std::max(rep.max_error_steps, err);
            rep.offsets_rounded += err > 0;
            qw.zeros = zr.to(at::kInt);
            qw.offset = at::Tensor();
        }
        at::Tensor bias = t.bias;
        t = quant::gptq_tensors_from_quantized_weight(qw, "gptq");
        t.bias = bias;
    }
    // Rounded zero points are no longer the symmetric one; the file says what it holds.
    if (rep.offsets_rounded > 0) ckpt.quant.sym = false;
    ckpt.quant.lota_offset = false;
    ckpt.quant.extra.erase("lota_offset_note");  // lota merge's note that the file carries offsets
    ckpt.quant.checkpoint_format = "gptq";
    StagedDir staged(out, overwrite);
    io::gptq_checkpoint_write(staged.path(), ckpt);
    io::model_text_files_copy(model, staged.path());
    staged.commit();
    return rep;
}

}  // namespace lota::exporter
