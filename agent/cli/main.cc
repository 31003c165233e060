// reactor: the command-line client. Offline commands (rules, metrics parse)
// run locally; the rest talk to reactor-agent's REST API.
#include <cstdio>

#include "agent/cli/commands.h"

int main(int argc, char** argv) {
  using namespace reactor::cli;
  CLI::App app{"reactor: autoscaling agent for web services"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand
  GlobalOptions opts;
  app.add_option("--api", opts.api, "agent API: host:port, http://host:port or unix:/path (env REACTOR_API)");
  app.add_option("--token-file", opts.token_file, "file holding the API token (env REACTOR_TOKEN holds the token)");
  app.add_option("--ca-file", opts.ca_file,
                 "PEM CA certificate(s) that verify an https:// agent instead of the system's CAs; "
                 "a host:port --api then means https (env REACTOR_CA_FILE)");
  app.add_flag("--json", opts.json, "machine-readable output");
  AddRulesCommands(app);
  AddManageCommands(app, opts);
  AddStateCommands(app, opts);
  AddConfigCommands(app, opts);
  AddListCommands(app, opts);
  AddLogCommand(app, opts);
  AddMetricsCommands(app, opts);
  AddSimulateCommand(app, opts);
  AddBackupCommand(app, opts);
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
