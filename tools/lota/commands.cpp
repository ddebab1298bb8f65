// Subcommand registry implementation (see commands.h).
#include "commands.h"

#include <map>
#include <vector>

namespace lota::cli {
namespace {

struct Entry {
    std::string name, help;
    CommandSetup setup;
    CLI::App* sub = nullptr;
    CommandRun run;
};

std::vector<Entry>& registry() {
    static std::vector<Entry> entries;
    return entries;
}

}  // namespace

CommandRegistrar::CommandRegistrar(const char* name, const char* help, CommandSetup setup) {
    registry().push_back(Entry{name, help, std::move(setup), nullptr, {}});
}

void register_all(CLI::App& app) {
    std::map<std::string, Entry*> sorted;
    for (auto& e : registry()) sorted[e.name] = &e;
    for (auto& [name, e] : sorted) {
        e->sub = app.add_subcommand(name, e->help);
        e->run = e->setup(*e->sub);
    }
}

int run_selected(CLI::App& app) {
    for (auto& e : registry())
        if (e.sub && e.sub->parsed()) return e.run();
    return 1;
}

}  // namespace lota::cli
