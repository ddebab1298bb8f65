// Training records (train_log.h).
#include "train/train_log.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "io/mapped_file.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/json_read.h"

namespace lota::train {

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
            const auto j = json_parse(line, path);
            if (json_int_or(j, "step", 0, path + ": a record's \"step\"") <= step) kept += line + "\n";
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
                const auto j = json_parse(line, log_path);
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
