// `reactor-agent --copy-state FROM TO [--force]` and `reactor-agent
// --restore FILE [--force]`: the daemon's offline store commands (run on a
// stopped agent's stores). Each returns the process exit code: 0 done, 1 a
// runtime failure, 2 bad input (a bad URL, a non-empty target without --force).
#pragma once

#include <ostream>
#include <string>

#include "agent/store/store.h"

namespace reactor {

int CopyStateCommand(const std::string& from_url, const std::string& to_url, bool force,
                     const StoreOptions& options, std::ostream& out, std::ostream& err);

/// Restores `file` into the store `to_url` names.
int RestoreCommand(const std::string& file, const std::string& to_url, bool force, const StoreOptions& options,
                   std::ostream& out, std::ostream& err);

}  // namespace reactor
