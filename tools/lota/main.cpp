// lota CLI entry: maps subcommands to their files (tools/lota/<cmd>.cpp); catches every error,
// prints its message and exits non-zero.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>

#include "commands.h"
#include "util/check.h"

int main(int argc, char** argv) {
    CLI::App app{"lota: quantize, fine-tune (LoTA-QAF), merge and run quantized LLMs"};
    app.require_subcommand(1);
    lota::cli::register_all(app);
    try {
        app.parse(argc, argv);
        return lota::cli::run_selected(app);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const lota::Error& e) {
        std::fprintf(stderr, "lota: error: %s\n", e.what());
        return 1;
    } catch (const c10::Error& e) {
        // LibTorch errors carry a C++ backtrace; the user needs the message only.
        std::fprintf(stderr, "lota: error: %s\n", e.what_without_backtrace());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "lota: error: %s\n", e.what());
        return 2;
    }
}
