// Finite checks of loaded tensors (see finite_check.h).
#include "io/finite_check.h"

#include <ATen/ATen.h>

#include "io/safetensors.h"
#include "util/check.h"

namespace lota::io {
namespace {

// All-finite flag of `t` as a bool scalar on its device; large tensors go in slices so the
// temporary mask stays small.
at::Tensor finite_flag(const at::Tensor& t) {
    constexpr int64_t kSlice = int64_t(1) << 26;
    const at::Tensor flat = t.reshape({-1});
    if (flat.numel() <= kSlice) return at::isfinite(flat).all();
    std::vector<at::Tensor> parts;
    for (const at::Tensor& s : flat.split(kSlice)) parts.push_back(at::isfinite(s).all());
    return at::stack(parts).all();
}

}  // namespace

void FiniteCheck::add(const at::Tensor& t, const std::string& file, const std::string& name) {
    if (!t.defined() || !at::isFloatingType(t.scalar_type()) || t.numel() == 0) return;
    entries_.push_back({t, finite_flag(t), file, name});
}

void FiniteCheck::check() {
    std::vector<Entry> entries = std::move(entries_);
    entries_.clear();
    if (entries.empty()) return;
    std::vector<at::Tensor> flags;
    const at::Device dev = entries[0].finite.device();
    for (const Entry& e : entries) flags.push_back(e.finite.to(dev));
    const at::Tensor all = at::stack(flags).cpu();  // the one read back
    if (all.all().item<bool>()) return;
    const bool* ok = all.data_ptr<bool>();
    for (size_t i = 0; i < entries.size(); ++i) {
        if (ok[i]) continue;
        const Entry& e = entries[i];
        const at::Tensor bad = at::isfinite(e.tensor).logical_not().reshape({-1});
        LOTA_FAIL("%s: tensor '%s' has %lld non-finite values (NaN or Inf) in %s, first at flat index %lld",
                  e.file.c_str(), e.name.c_str(), (long long)bad.sum().item<int64_t>(),
                  safetensors_dtype_from_scalar(e.tensor.scalar_type()).c_str(),
                  (long long)bad.nonzero()[0][0].item<int64_t>());
    }
}

void tensor_check_finite(const at::Tensor& t, const std::string& file, const std::string& name) {
    FiniteCheck c;
    c.add(t, file, name);
    c.check();
}

}  // namespace lota::io
