// Subcommand registry: each tools/lota/<cmd>.cpp registers itself with LOTA_COMMAND, declaring
// its flags on a CLI11 subcommand and returning the function that runs it.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace lota::cli {

using CommandRun = std::function<int()>;
/// Declares the subcommand's flags on `sub` and returns the function that runs it after parsing.
using CommandSetup = std::function<CommandRun(CLI::App& sub)>;

struct CommandRegistrar {
    CommandRegistrar(const char* name, const char* help, CommandSetup setup);
};

void register_all(CLI::App& app);
int run_selected(CLI::App& app);

}  // namespace lota::cli

#define LOTA_CONCAT2(a, b) a##b
#define LOTA_CONCAT(a, b) LOTA_CONCAT2(a, b)
/// LOTA_COMMAND("name", "help", [](CLI::App& sub) -> CommandRun { ... });
/// (Variadic so that commas inside the lambda body need no extra parentheses.)
#define LOTA_COMMAND(name, help, ...) \
    static ::lota::cli::CommandRegistrar LOTA_CONCAT(lota_command_, __LINE__)(name, help, __VA_ARGS__)
