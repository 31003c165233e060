// Moving state between stores: `reactor-agent --copy-state FROM TO` (e.g.
// sqlite:/var/lib/reactor/state.db → etcd://...) and `--restore FILE`.
// Both work on a stopped agent's stores.
#pragma once

#include <cstdint>
#include <string>

#include "agent/store/store.h"

namespace reactor {

struct CopyStats {
  size_t copied = 0;          // keys written to the target
  size_t skipped_leased = 0;  // keys under a lease (a live agent's), not copied
  int64_t source_revision = 0;
};

/// Copies every key under kKeyRoot ("/reactor/") of `from`, as of one
/// revision, to `to`. Keys held by a lease (registrations of live agents)
/// are skipped: their leases do not exist in the target, and their agents
/// register again. A target with any key under kKeyRoot is refused with
/// Conflict unless `force`, which deletes them first. etcd's compaction
/// turn (EtcdCompactionKey) is neither copied nor counted.
///
/// Written in transactions of at most 100 puts (etcd's limit is 128 per
/// transaction), so a failure part-way leaves part of the copy in the
/// target; the error says how far it got, and running again with `force`
/// starts over.
Result<CopyStats> CopyState(Store& from, Store& to, bool force);

/// Restores a backup file written by WriteStoreBackup (agent/store/store_backup.h)
/// into `to`, which must be empty under kKeyRoot unless `force`:
/// - an SQLite database (the online backup of a sqlite: store) is opened
///   from a private copy, so the file itself is not changed;
/// - an etcd snapshot is restored with `etcdctl snapshot restore` into a
///   temporary data dir, served by a temporary single etcd on a loopback
///   port (`etcd_binary`, `etcdctl_binary`), and copied from there.
Result<CopyStats> RestoreBackup(const std::string& file, Store& to, bool force,
                                const std::string& etcd_binary = "/usr/bin/etcd",
                                const std::string& etcdctl_binary = "/usr/bin/etcdctl");

}  // namespace reactor
