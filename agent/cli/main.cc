// reactor: the command-line client. Offline commands (rules, metrics parse)
// run locally; the rest talk to reactor-agent's REST API.
#include <cstdio>

#include "agent/cli/commands.h"

int main(int argc, char** argv) {
  using namespace reactor::cli;
  CLI::App app{"reactor: autoscaling agent for web services"};
  app.require_subcommand(1);
  GlobalOptions opts;
  AddRulesCommands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitBadInput;
  } catch (const CliExit& e) {
    return e.code;
  }
  return kExitOk;
}
