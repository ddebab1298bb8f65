// Training records (train_log.h).
#include "train/train_log.h"

#include <sys/resource.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <ATen/ATen.h>

#include "io/mapped_file.h"
#include "util/check.h"
#include "util/fs.h"

namespace lota::train {

at::Tensor lota_stats_device(const std::vector<adapter::AdaptedLayer>& layers) {
    std::vector<at::Tensor> per_layer;
    for (const auto& l : layers)
        if (l.lota) per_layer.push_back(l.lota->merged_stats());
    return per_layer.empty() ? at::zeros({3}, at::kDouble) : at::stack(per_layer).sum(0);
}

LotaStats lota_stats_from(const at::Tensor& values, const std::vector<adapter::AdaptedLayer>& layers) {
    LOTA_CHECK(values.is_cpu() && values.scalar_type() == at::kDouble && values.numel() == 3,
               "lota_stats_from: expected the float64 [3] values on the CPU");
    int64_t offset_n = 0;
    for (const auto& l : layers)
        if (l.lota) offset_n += l.lota->n_groups() * l.lota->out_features();  // F is [G, N]
    const double* v = values.contiguous().data_ptr<double>();
    LotaStats s;
    s.markers_pos = static_cast<int64_t>(v[0]);
    s.markers_neg = static_cast<int64_t>(v[1]);
    s.mean_abs_offset = offset_n ? v[2] / (double)offset_n : 0.0;
    return s;
}

LotaStats lota_stats(const std::vector<adapter::AdaptedLayer>& layers) {
    return lota_stats_from(lota_stats_device(layers).cpu(), layers);
}

void train_log_append(const std::string& path, const nlohmann::json& record) {
    std::ofstream f(path, std::ios::app);
    LOTA_CHECK(f.good(), "%s: cannot open for appending", path.c_str());
    f << record.dump() << "\n";
    f.flush();
    LOTA_CHECK(f.good(), "%s: write failed", path.c_str());
}

void train_log_truncate(const std::string& path, int64_t step) {
    if (!path_exists(path)) return;
    std::istringstream in(io::file_read_text(path));
    std::string line, kept;
    while (std::getline(in, line)) {
        try {
            const auto j = nlohmann::json::parse(line);
            if (j.value("step", (int64_t)0) <= step) kept += line + "\n";
        } catch (const nlohmann::json::exception&) {
            break;  // a torn last line from a killed run
        }
    }
    io::file_write_atomic(path, kept.data(), kept.size());
}

void loss_curve_write(const std::string& log_path, const std::string& svg_path) {
    std::vector<double> loss;
    if (path_exists(log_path)) {
        std::istringstream in(io::file_read_text(log_path));
        std::string line;
        while (std::getline(in, line)) {
            try {
                const auto j = nlohmann::json::parse(line);
                if (j.contains("loss") && j["loss"].is_number()) loss.push_back(j["loss"].get<double>());
            } catch (const nlohmann::json::exception&) {
                break;
            }
        }
    }
    const double W = 640, H = 360, pad = 40;
    std::ostringstream s;
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << pad << "\" y=\"20\" font-family=\"sans-serif\" font-size=\"14\">training loss per step</text>\n";
    if (!loss.empty()) {
        const double lo = *std::min_element(loss.begin(), loss.end()), hi = *std::max_element(loss.begin(), loss.end());
        const double span = hi > lo ? hi - lo : 1.0;
        s << "<polyline fill=\"none\" stroke=\"steelblue\" stroke-width=\"2\" points=\"";
        for (size_t i = 0; i < loss.size(); ++i) {
            const double x = pad + (W - 2 * pad) * (loss.size() > 1 ? (double)i / (double)(loss.size() - 1) : 0.5);
            const double y = H - pad - (H - 2 * pad) * (loss[i] - lo) / span;
            s << x << "," << y << " ";
        }
        s << "\"/>\n<text x=\"" << pad << "\" y=\"" << H - 10 << "\" font-family=\"sans-serif\" font-size=\"12\">steps 1-"
          << loss.size() << ", loss " << hi << " .. " << lo << "</text>\n";
    }
    s << "</svg>\n";
    const std::string text = s.str();
    io::file_write_atomic(svg_path, text.data(), text.size());
}

}  // namespace lota::train
