// Logger implementation: one line per call to stderr, prefixed with the level for warnings/errors.
#include "util/log.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace lota {
namespace {

int level_from_env() {
    const char* s = std::getenv("LOTA_LOG");
    if (!s) return static_cast<int>(LogLevel::INFO);
    if (!std::strcmp(s, "debug")) return 0;
    if (!std::strcmp(s, "warn")) return 2;
    if (!std::strcmp(s, "error")) return 3;
    return 1;
}

}  // namespace

bool log_enabled(LogLevel level) {
    static const int threshold = level_from_env();
    return static_cast<int>(level) >= threshold;
}

void log_write(LogLevel level, const char* fmt, ...) {
    if (!log_enabled(level)) return;
    static const char* prefix[] = {"debug: ", "", "warning: ", "error: "};
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    std::fprintf(stderr, "%s%s\n", prefix[static_cast<int>(level)], buf);
    std::fflush(stderr);
}

}  // namespace lota
