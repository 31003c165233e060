// reactor-agent: the daemon. Parses flags, loads agent.conf, handles signals
// and runs the Agent.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <thread>

#include "agent/common/agent_config.h"
#include "agent/runtime/agent.h"

int main(int argc, char** argv) {
  CLI::App app{"reactor-agent: runs nginx in front of an application and scales its instances"};
  std::string config_path = "/etc/reactor/agent.conf";
  std::string check_path;
  app.add_option("--config,-c", config_path, "agent.conf to load");
  app.add_option("--check-config", check_path, "validate a config file and exit (0 ok, 2 bad)");
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
    std::cout << check_path << ": ok\n";
    return 0;
  }

  auto cfg = reactor::LoadAgentConfig(config_path);
  if (!cfg.ok()) {
    std::cerr << "reactor-agent: " << cfg.status().message() << "\n";
    return 2;
  }

  // Signals are handled by one thread with sigwait; every other thread
  // inherits the blocked mask.
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  reactor::Agent agent(*cfg, config_path);
  reactor::Status st = agent.Start();
  if (!st.ok()) {
    std::cerr << "reactor-agent: " << st.ToString() << "\n";
    return 1;
  }
  std::thread signals([&agent, set] {
    while (true) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == SIGHUP) {
        agent.RequestReload();
      } else if (sig == SIGUSR1) {
        spdlog::info("SIGUSR1: log files reopened");
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
