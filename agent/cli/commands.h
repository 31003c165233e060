// The reactor CLI: each subcommand (or group) lives in its own file and adds
// itself to the CLI11 app through one of these functions, called by main.cc.
//
// Exit codes: 0 ok, 1 runtime failure, 2 bad input. A command's callback
// reports its exit code by throwing CliExit (CLI11's callbacks return void).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace reactor::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitBadInput = 2;

/// Thrown by a command callback to end the program with `code`, after the
/// command has printed what it had to say.
struct CliExit {
  int code;
};

/// Global options every API command shares (--api, --token-file, --ca-file, --json).
struct GlobalOptions {
  std::string api;         // --api or $REACTOR_API
  std::string token_file;  // --token-file, or $REACTOR_TOKEN holds the token itself
  std::string ca_file;     // --ca-file or $REACTOR_CA_FILE: verifies an https:// agent
  bool json = false;
};

void AddRulesCommands(CLI::App& app);
void AddManageCommands(CLI::App& app, GlobalOptions& opts);
void AddStateCommands(CLI::App& app, GlobalOptions& opts);
void AddConfigCommands(CLI::App& app, GlobalOptions& opts);
void AddListCommands(CLI::App& app, GlobalOptions& opts);
void AddLogCommand(CLI::App& app, GlobalOptions& opts);
void AddMetricsCommands(CLI::App& app, GlobalOptions& opts);
void AddSimulateCommand(CLI::App& app, GlobalOptions& opts);
void AddBackupCommand(CLI::App& app, GlobalOptions& opts);

}  // namespace reactor::cli
