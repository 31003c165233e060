// reactor backup: the agent takes a state backup now (into [agent] backup_dir).
#include <iostream>

#include "agent/cli/api_client.h"
#include "agent/cli/commands.h"

namespace reactor::cli {

void AddBackupCommand(CLI::App& app, GlobalOptions& opts) {
  auto* sub = app.add_subcommand("backup", "take a backup of the agent's state store now (into [agent] backup_dir)");
  sub->callback([&opts] {
    ApiClient api(opts);
    auto j = api.Call("POST", "/v1/backup", "{}");
    if (opts.json) {
      std::cout << j.dump() << "\n";
    } else {
      std::cout << "backup written: " << j.value("backup", std::string()) << "\n";
    }
  });
}

}  // namespace reactor::cli
