// Held-out loss: the training objective (mean NLL of the answer tokens, teacher-forced) on a
// dataset in one of the training formats, without updating anything; optionally the KL
// divergence from a reference model on the same answer tokens. This is how `lota eval --task
// loss` compares a base, a quantized, an adapted and a merged model on data they did not train on.
#pragma once

#include <cstdint>
#include <string>

#include "data/examples.h"

namespace lota::model {
class Transformer;
}
namespace lota::dist {
class Group;
}

namespace lota::eval {

struct HeldoutLossOptions {
    data::DataOptions data;
    int64_t batch_size = 8;
    int64_t limit = -1;  ///< first N examples only (−1: all)
};

struct HeldoutLossResult {
    double mean_nll = 0;  ///< per answer token, natural log
    double ppl = 0;       ///< exp(mean_nll)
    double kl = -1;       ///< mean KL(p_reference ‖ p_model) per answer token; −1 without a reference
    int64_t examples = 0, tokens = 0;
    double seconds = 0;
};

/// With `group` of several ranks (dist/dist.h) the batches are split across the ranks and the
/// result, on every rank, is one process's to the bit.
HeldoutLossResult heldout_loss_eval(model::Transformer& model, const std::string& model_dir,
                                    const HeldoutLossOptions& options, model::Transformer* reference = nullptr,
                                    dist::Group* group = nullptr);

}  // namespace lota::eval
