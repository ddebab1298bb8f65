// Progress of a long loop, to stderr: on a terminal one line redrawn in place (a bar, the caller's
// status text, elapsed time and ETA); otherwise (logs, CI) a plain line at most every
// `log_every_s` seconds and at the end. Silent when the log level is above info.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lota {

class Progress {
  public:
    /// `start`: units already done before this run (a resumed job); the ETA counts from there.
    Progress(std::string label, int64_t total, double log_every_s = 10.0, int64_t start = 0);
    ~Progress();  ///< finishes the terminal line if update() was called
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    /// `done` of `total` units are finished; `status` is shown after the counts (e.g. "loss 2.31").
    void update(int64_t done, const std::string& status = "");
    double elapsed_s() const;
    /// Seconds left at the average rate so far (0 before the first unit).
    double eta_s(int64_t done) const;

  private:
    std::string label_;
    int64_t total_, start_;
    double log_every_s_;
    bool tty_, enabled_, drawn_ = false;
    std::chrono::steady_clock::time_point t0_, last_log_;
};

/// "1h02m", "3m05s", "12s".
std::string format_duration(double seconds);

}  // namespace lota
