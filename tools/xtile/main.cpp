// xtile: command-line entry point. Parses with CLI11 (usage errors: CLI11's message, exit 2),
// then runs the chosen subcommand; an xtile::Error (bad file, unavailable tier, ...) prints
// "xtile: error: <message>" and exits 1.
#include <algorithm>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "base/error.h"
#include "commands.h"
#include "common.h"
#include "llama_compat.h"

int main(int argc, char** argv) {
  using xtile::cli::Command;
  CLI::App app{"xtile: fast inference of GGUF language models on x86 CPUs (AMX, AVX-512, AVX2)",
               "xtile"};
  app.set_version_flag("--version", xtile::cli::version_string());
  app.require_subcommand(1);
  app.footer("Run 'xtile <command> --help' for the flags of a command.");
  std::vector<Command> commands;
  for (xtile::cli::RegisterFn reg : xtile::cli::kCommands) commands.push_back(reg(app));

  if (argc <= 1) {
    std::cerr << app.help();
    return 2;
  }
  // CLI11 reports an unknown command only as "A subcommand is required": name it instead.
  const std::string first = argv[1];
  bool known = false;
  for (const Command& c : commands) known = known || c.app->check_name(first);
  if (!first.empty() && first[0] != '-' && !known) {
    std::string names;
    for (const Command& c : commands) names += (names.empty() ? "" : ", ") + c.app->get_name();
    std::cerr << "unknown command '" << first << "'; commands: " << names
              << "\nRun with --help for more information.\n";
    return 2;
  }
  // llama.cpp's multi-letter flags after one dash ("-pg", "-ctk", "-ngl", ...); CLI11 short
  // flags are one letter, so they are spelled as their long forms before parsing.
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    xtile::cli::respell_llama_flags(&args);
  } catch (const xtile::Error& e) {
    std::cerr << e.what() << "\nRun with --help for more information.\n";
    return 2;
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes the vector form in reverse order
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help/version (rc 0) or the error naming the flag
    return rc == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::cerr << "xtile: error: " << e.what() << "\n";
    return 1;
  }

  try {
    for (const Command& c : commands)
      if (c.app->parsed()) return c.run();
  } catch (const xtile::Error& e) {
    std::cout.flush();
    std::cerr << "xtile: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    // Not an xtile::Error: an OS or library failure (out of memory, filesystem); still a message,
    // never a crash.
    std::cout.flush();
    std::cerr << "xtile: error: " << e.what() << "\n";
    return 1;
  }
  return 2;  // unreachable: require_subcommand(1) guarantees one parsed command
}
