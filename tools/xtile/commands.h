// The xtile subcommands. Each lives in its own cmd_<name>.cpp and exposes one registration
// function that adds its CLI11 subcommand and flags to the root app and returns how to run it;
// a new subcommand is one new file plus one line in kCommands.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace xtile::cli {

struct Command {
  CLI::App* app = nullptr;    // the subcommand, owned by the root app
  std::function<int()> run;   // called after a successful parse; returns the exit status
};

using RegisterFn = Command (*)(CLI::App& root);

Command register_info(CLI::App& root);
Command register_run(CLI::App& root);
Command register_synth(CLI::App& root);
Command register_quantize(CLI::App& root);
Command register_bench(CLI::App& root);
Command register_perplexity(CLI::App& root);
Command register_serve(CLI::App& root);
Command register_chat(CLI::App& root);

// In the order `xtile --help` lists them.
inline constexpr RegisterFn kCommands[] = {
    &register_run,
    &register_chat,
    &register_serve,
    &register_info,
    &register_synth,
    &register_quantize,
    &register_bench,
    &register_perplexity,
};

}  // namespace xtile::cli
