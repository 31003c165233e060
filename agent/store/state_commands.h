// `reactor-agent --copy-state FROM TO [--force]`, `reactor-agent --restore
// FILE [--force]` and `reactor-agent --backup FILE`: the daemon's offline
// store commands (run on a
// stopped agent's stores). Each returns the process exit code: 0 done, 1 a
// runtime failure, 2 bad input (a bad URL, a non-empty target without --force).
#pragma once

#include <ostream>
#include <string>

#include "agent/store/store.h"

namespace reactor {

int CopyStateCommand(const std::string& from_url, const std::string& to_url, bool force, const StoreOptions& options,
                     std::ostream& out, std::ostream& err);

/// Restores `file` into the store `to_url` names.
int RestoreCommand(const std::string& file, const std::string& to_url, bool force, const StoreOptions& options,
                   std::ostream& out, std::ostream& err);

/// Writes a backup of the store `url` names to `file` (a temporary name
/// beside it, fsynced, renamed into place).
int BackupCommand(const std::string& url, const std::string& file, const StoreOptions& options, std::ostream& out,
                  std::ostream& err);

}  // namespace reactor
