// A consistent copy of a whole store in one file, whichever backend it is:
// SQLite's online backup API (a database file) or etcd's maintenance
// snapshot (a bbolt file, as `etcdctl snapshot save` writes). RestoreBackup
// (agent/store/store_copy.h) reads either.
#pragma once

#include <string>

#include "agent/store/store.h"

namespace reactor {

/// Writes the backup of `store` to `path` (created or truncated) and
/// fsyncs it. The caller picks a temporary name and renames it into place.
Status WriteStoreBackup(Store& store, const std::string& path);

/// The file extension of its backups: ".db" (SQLite) or ".snapshot" (etcd).
std::string BackupFileExtension(Store& store);

}  // namespace reactor
