// Progress reporter (see progress.h).
#include "util/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "util/log.h"
#include "util/strfmt.h"

namespace lota {

Progress::Progress(std::string label, int64_t total, double log_every_s, int64_t start)
    : label_(std::move(label)),
      total_(total),
      start_(start),
      log_every_s_(log_every_s),
      tty_(isatty(STDERR_FILENO) != 0),
      enabled_(log_enabled(LogLevel::INFO)),
      t0_(std::chrono::steady_clock::now()),
      last_log_(t0_) {}

Progress::~Progress() {
    if (drawn_ && tty_) std::fputc('\n', stderr);
}

double Progress::elapsed_s() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
}

double Progress::eta_s(int64_t done) const {
    if (done <= start_ || total_ <= done) return 0.0;
    return elapsed_s() / double(done - start_) * double(total_ - done);
}

void Progress::update(int64_t done, const std::string& status) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    const bool last = done >= total_;
    if (!tty_ && !last && std::chrono::duration<double>(now - last_log_).count() < log_every_s_) return;
    last_log_ = now;
    const std::string counts = strfmt("%lld/%lld", (long long)done, (long long)total_);
    const std::string times = strfmt("%s elapsed, ETA %s", format_duration(elapsed_s()).c_str(),
                                     format_duration(eta_s(done)).c_str());
    const std::string sep = status.empty() ? "" : " | ";
    if (tty_) {
        constexpr int kWidth = 24;
        const int filled = total_ > 0 ? int(double(kWidth) * double(std::min(done, total_)) / double(total_)) : 0;
        const std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '.');
        std::fprintf(stderr, "\r\033[K%s [%s] %s%s%s | %s", label_.c_str(), bar.c_str(), counts.c_str(), sep.c_str(),
                     status.c_str(), times.c_str());
        std::fflush(stderr);
        drawn_ = true;
    } else {
        std::fprintf(stderr, "%s %s%s%s | %s\n", label_.c_str(), counts.c_str(), sep.c_str(), status.c_str(),
                     times.c_str());
    }
}

std::string format_duration(double s) {
    if (!(s >= 0) || !std::isfinite(s)) return "?";
    const long long t = (long long)std::llround(s);
    if (t >= 3600) return strfmt("%lldh%02lldm", t / 3600, (t % 3600) / 60);
    if (t >= 60) return strfmt("%lldm%02llds", t / 60, t % 60);
    return strfmt("%llds", t);
}

}  // namespace lota
