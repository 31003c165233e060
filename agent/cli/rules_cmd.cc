#include "agent/cli/commands.h"

namespace reactor::cli {

void AddRulesCommands(CLI::App& app) {
  app.add_subcommand("rules", "check and evaluate scaling rules offline")->require_subcommand(1);
}

}  // namespace reactor::cli
