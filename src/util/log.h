// The one logger: printf-style, to stderr, level from the LOTA_LOG environment variable
// (debug|info|warn|error; default info). Library code logs; it never writes to stdout.
#pragma once

namespace lota {

enum class LogLevel { DEBUG = 0, INFO = 1, WARN = 2, ERROR = 3 };

void log_write(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
/// Whether messages of `level` are written (LOTA_LOG, read once).
bool log_enabled(LogLevel level);

}  // namespace lota

#define LOTA_LOG_DEBUG(...) ::lota::log_write(::lota::LogLevel::DEBUG, __VA_ARGS__)
#define LOTA_LOG_INFO(...) ::lota::log_write(::lota::LogLevel::INFO, __VA_ARGS__)
#define LOTA_LOG_WARN(...) ::lota::log_write(::lota::LogLevel::WARN, __VA_ARGS__)
#define LOTA_LOG_ERROR(...) ::lota::log_write(::lota::LogLevel::ERROR, __VA_ARGS__)
