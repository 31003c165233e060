// Running nginx: commands with captured output, the long-running master in a
// session of its own, pid files and /proc checks. fork/exec with an argv,
// never a shell.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "agent/common/clock.h"
#include "agent/common/status.h"

namespace reactor {

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  std::string output;  // stdout and stderr, interleaved
};

/// Runs argv[0] with argv, waits at most `timeout` (then SIGKILLs it) and
/// returns its exit code and output. Error only when it cannot be started.
Result<CommandResult> RunCommand(const std::vector<std::string>& argv, Duration timeout);

/// Starts argv in a new session (its own process group, so it outlives the
/// agent and no terminal signal reaches it), stdin from /dev/null, stdout and
/// stderr appended to `log_path`, no inherited descriptors. Returns its pid;
/// the caller reaps it (ReapIfExited) or lets it outlive the caller.
Result<pid_t> SpawnDetached(const std::vector<std::string>& argv, const std::string& log_path);

/// The pid in a pid file; 0 when missing or unreadable.
pid_t ReadPidFile(const std::string& path);

/// True iff `pid` is running (not a zombie).
bool ProcessRunning(pid_t pid);

/// Reaps `pid` if it is our child and has exited; true iff it was reaped.
bool ReapIfExited(pid_t pid);

/// True iff `pid` runs nginx started with `-p prefix` (from /proc/pid/cmdline,
/// which the nginx master rewrites to "nginx: master process ... -p PREFIX ...").
bool IsNginxWithPrefix(pid_t pid, const std::string& prefix);

}  // namespace reactor
