#include "agent/store/state_commands.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "agent/store/store_backup.h"
#include "agent/store/store_copy.h"

namespace reactor {
namespace {

int ExitCode(const Status& st) { return st.IsInvalidArgument() || st.IsConflict() ? 2 : 1; }

void Report(const CopyStats& stats, std::ostream& out) {
  out << "copied " << stats.copied << " keys (source revision " << stats.source_revision << ")";
  if (stats.skipped_leased > 0) {
    out << "; skipped " << stats.skipped_leased << " keys held by leases (live agents register again)";
  }
  out << "\n";
}

}  // namespace

int CopyStateCommand(const std::string& from_url, const std::string& to_url, bool force, const StoreOptions& options,
                     std::ostream& out, std::ostream& err) {
  if (from_url == to_url) {
    err << "reactor-agent --copy-state: FROM and TO are the same store (" << from_url << ")\n";
    return 2;
  }
  auto from = OpenStore(from_url, SystemClock::Get(), options);
  if (!from.ok()) {
    err << "reactor-agent --copy-state: FROM " << from.status().ToString() << "\n";
    return ExitCode(from.status());
  }
  auto to = OpenStore(to_url, SystemClock::Get(), options);
  if (!to.ok()) {
    err << "reactor-agent --copy-state: TO " << to.status().ToString() << "\n";
    return ExitCode(to.status());
  }
  auto stats = CopyState(**from, **to, force);
  if (!stats.ok()) {
    err << "reactor-agent --copy-state " << from_url << " " << to_url << ": " << stats.status().ToString() << "\n";
    return ExitCode(stats.status());
  }
  out << from_url << " -> " << to_url << ": ";
  Report(*stats, out);
  return 0;
}

int RestoreCommand(const std::string& file, const std::string& to_url, bool force, const StoreOptions& options,
                   std::ostream& out, std::ostream& err) {
  auto to = OpenStore(to_url, SystemClock::Get(), options);
  if (!to.ok()) {
    err << "reactor-agent --restore: " << to.status().ToString() << "\n";
    return ExitCode(to.status());
  }
  auto stats = RestoreBackup(file, **to, force);
  if (!stats.ok()) {
    err << "reactor-agent --restore " << file << " into " << to_url << ": " << stats.status().ToString() << "\n";
    return ExitCode(stats.status());
  }
  out << file << " -> " << to_url << ": ";
  Report(*stats, out);
  return 0;
}

int BackupCommand(const std::string& url, const std::string& file, const StoreOptions& options, std::ostream& out,
                  std::ostream& err) {
  auto store = OpenStore(url, SystemClock::Get(), options);
  if (!store.ok()) {
    err << "reactor-agent --backup: " << store.status().ToString() << "\n";
    return ExitCode(store.status());
  }
  const std::string tmp = file + ".tmp";
  Status st = WriteStoreBackup(**store, tmp);
  if (st.ok() && std::rename(tmp.c_str(), file.c_str()) != 0) {
    st = Status::IOError("backup " + file, std::string("rename: ") + std::strerror(errno));
  }
  if (!st.ok()) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    err << "reactor-agent --backup " << file << ": " << st.ToString() << "\n";
    return 1;
  }
  out << url << " -> " << file << "\n";
  return 0;
}

}  // namespace reactor
