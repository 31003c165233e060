// reactor-agent: the daemon. Parses flags, loads agent.conf, sets up its own
// log, handles signals and runs the Agent.
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <thread>

#include "agent/api/api_tls.h"
#include "agent/common/agent_config.h"
#include "agent/daemon/reopenable_file_sink.h"
#include "agent/runtime/agent.h"
#include "agent/store/state_commands.h"
#include "agent/store/store_options.h"

namespace {

// A start-up failure: on stderr (the terminal, or the journal under systemd)
// and, with --log-file, in the log too (an init script's daemon has no stderr).
int Fail(int code, const std::string& message, bool to_log) {
  std::cerr << "reactor-agent: " << message << "\n";
  if (to_log) spdlog::error("{}", message);
  return code;
}

// Health checks hold one socket per instance being checked, nginx control
// and the API a few more: 10,000 backends need more than the usual soft
// limit of 1,024 descriptors, so take what the hard limit allows.
void RaiseFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) spdlog::warn("cannot raise the open file limit to {}", rl.rlim_max);
}

}  // namespace

int main(int argc, char** argv) {
  // Two malloc arenas, not eight per core: the agent's dozen threads (API
  // pool, health checker, stop and launch workers) each kept an arena of
  // freed pages. Measured with scale_bench (1,000 endpoints, 10,000
  // backends): 235 MiB resident with the default, 87 MiB with two.
  // Set before any thread starts.
  mallopt(M_ARENA_MAX, 2);
  CLI::App app{"reactor-agent: runs nginx in front of an application and scales its instances"};
  std::string config_path = "/etc/reactor/agent.conf";
  std::string check_path;
  std::string log_path;
  app.add_option("--config,-c", config_path, "agent.conf to load");
  app.add_option("--check-config", check_path, "validate a config file and exit (0 ok, 2 bad)");
  app.add_option("--log-file", log_path,
                 "append the agent's log to this file instead of stdout; SIGUSR1 reopens it (for logrotate)");
  std::vector<std::string> copy_state;
  std::string restore_path;
  std::string backup_path;
  bool force = false;
  app.add_option("--copy-state", copy_state, "copy every record from store URL FROM to store URL TO, then exit")
      ->expected(2)
      ->type_name("FROM TO");
  app.add_option("--restore", restore_path, "restore a backup file into the store of --config, then exit");
  app.add_option("--backup", backup_path, "write a backup of the store of --config to this file, then exit");
  app.add_flag("--force", force, "--copy-state, --restore: replace what the target store holds");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (!check_path.empty()) {
    auto cfg = reactor::LoadAgentConfig(check_path);
    if (!cfg.ok()) {
      std::cerr << cfg.status().message() << "\n";
      return 2;
    }
    reactor::Status tls = reactor::CheckApiTlsFiles({cfg->tls_cert_file, cfg->tls_key_file});
    if (!tls.ok()) {
      std::cerr << check_path << ": " << tls.message() << "\n";
      return 2;
    }
    std::cout << check_path << ": ok\n";
    return 0;
  }

  if (!copy_state.empty() || !restore_path.empty() || !backup_path.empty()) {
    // etcd TLS and auth come from --config when it can be read.
    auto cfg = reactor::LoadAgentConfig(config_path);
    if (copy_state.empty() && !cfg.ok()) return Fail(2, cfg.status().message(), false);
    const reactor::StoreOptions options = cfg.ok() ? reactor::StoreOptionsFor(*cfg) : reactor::StoreOptions();
    if (!copy_state.empty()) {
      return reactor::CopyStateCommand(copy_state[0], copy_state[1], force, options, std::cout, std::cerr);
    }
    if (!backup_path.empty()) {
      return reactor::BackupCommand(cfg->state.ToString(), backup_path, options, std::cout, std::cerr);
    }
    return reactor::RestoreCommand(restore_path, cfg->state.ToString(), force, options, std::cout, std::cerr);
  }

  // Installed before any other thread exists, so swapping the default
  // logger cannot race with a logging call.
  std::shared_ptr<reactor::ReopenableFileSink> log_sink;
  if (!log_path.empty()) {
    log_sink = std::make_shared<reactor::ReopenableFileSink>(log_path);
    if (!log_sink->ok()) return Fail(2, "--log-file " + log_sink->error(), false);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("", log_sink));
  }
  const bool to_log = log_sink != nullptr;
  RaiseFileLimit();

  auto cfg = reactor::LoadAgentConfig(config_path);
  if (!cfg.ok()) return Fail(2, cfg.status().message(), to_log);

  // Signals are handled by one thread with sigwait; every other thread
  // inherits the blocked mask.
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  reactor::Agent agent(*cfg, config_path);
  reactor::Status st = agent.Start();
  if (!st.ok()) return Fail(1, st.ToString(), to_log);
  std::thread signals([&agent, &log_sink, set] {
    while (true) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == SIGHUP) {
        agent.RequestReload();
      } else if (sig == SIGUSR1) {
        if (!log_sink) {
          spdlog::info("SIGUSR1: no --log-file to reopen");
        } else if (std::string why = log_sink->Reopen(); !why.empty()) {
          spdlog::error("SIGUSR1: cannot reopen the log file, still writing to the old one: {}", why);
        } else {
          spdlog::info("SIGUSR1: log file {} reopened", log_sink->path());
        }
      } else {
        agent.RequestStop();
        return;
      }
    }
  });
  agent.Run();
  // Unblock the signal thread if Run returned for another reason.
  pthread_kill(signals.native_handle(), SIGTERM);
  signals.join();
  return 0;
}
