// The cost of cluster traffic counters (agent/metrics/cluster_traffic.h):
// one agent's publish round and one owner's read of every endpoint, with
// N endpoints under steady traffic (20 requests a second each, spread over
// 10 backends), on SQLite (a file, WAL) and on a real 3-member etcd on
// loopback (started by the benchmark, data dirs on /dev/shm).
//
//   build/bin/traffic_bench
//   build/bin/traffic_bench --benchmark_filter=sqlite
//
// Publish: Poll of the lines of one second (not timed) then Publish: every
// record changed, so every endpoint is written, in ceil(N / 128) transactions.
// Read: ClusterTraffic::Metrics of every endpoint, the records of 3 hosts
// each. Counters: record_bytes (mean size of one record), bytes_per_round
// (what one host writes each second), txns_per_round.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "../component/etcd_fixture.h"
#include "../unit/fake_clock.h"
#include "../unit/fake_log_file_system.h"
#include "agent/metrics/cluster_traffic.h"
#include "agent/store/keys.h"
#include "agent/store/sqlite_store.h"

namespace reactor {
namespace {

EtcdCluster* g_etcd = nullptr;
const std::string kLog = "/log/access.log";
constexpr int kBackends = 10;
constexpr int kRequestsPerSecond = 20;

class BenchDir {
 public:
  BenchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "traffic_bench.XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~BenchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::unique_ptr<Store> OpenBackend(const std::string& backend, BenchDir& dir, Clock& clock) {
  if (backend == "sqlite") return std::move(SqliteStore::Open(dir.path() + "/state.db", clock)).value();
  if (g_etcd == nullptr) {
    g_etcd = new EtcdCluster();
    std::string err = g_etcd->Start(3);
    if (!err.empty()) {
      std::fprintf(stderr, "etcd: %s\n", err.c_str());
      std::abort();
    }
  }
  auto s = OpenStore(g_etcd->Url(), SystemClock::Get());
  if (!s.ok()) std::abort();
  // A clean keyspace for each run.
  (void)(*s)->DeletePrefix(kKeyRoot);
  return std::move(s).value();
}

// One host: a collector on an in-memory log and its publisher.
struct Host {
  Host(const std::string& name, Clock& clock, Store& store, LeaseId lease) {
    fs = new FakeLogFileSystem();
    fs->Create(kLog);
    collector = std::make_unique<MetricsCollector>(kLog, clock, std::unique_ptr<FileSystem>(fs));
    collector->Poll();
    TrafficPublisher::Options o;
    o.manager = name;
    o.lease = [lease] { return lease; };
    publisher = std::make_unique<TrafficPublisher>(o, *collector, store);
  }
  // One second of traffic for every endpoint, logged over the second just past.
  void OneSecond(const Clock& clock, int endpoints, int seed) {
    std::string text;
    const int64_t now = clock.WallMillis();
    for (int e = 0; e < endpoints; ++e) {
      for (int i = 0; i < kRequestsPerSecond; ++i) {
        const int64_t ms = now - 1000 + 50 * i;
        char line[256];
        std::snprintf(line, sizeof line, "%lld.%03lld|reactor_ep%d|200|%d|0.012|10.0.%d.%d:8080|200|0.0%02d\n",
                      static_cast<long long>(ms / 1000), static_cast<long long>(ms % 1000), e, 500 + i, e % 250,
                      (i + seed) % kBackends, 5 + (i * 7 + seed) % 90);
        text += line;
      }
    }
    fs->Append(kLog, text);
  }
  FakeLogFileSystem* fs;
  std::unique_ptr<MetricsCollector> collector;
  std::unique_ptr<TrafficPublisher> publisher;
};

void BM_Publish(benchmark::State& state, const std::string& backend) {
  const int endpoints = static_cast<int>(state.range(0));
  FakeClock clock;
  BenchDir dir;
  auto store = OpenBackend(backend, dir, clock);
  const LeaseId lease = store->GrantLease(Duration(600000)).value();
  Host host("h1", clock, *store, lease);
  int seed = 0;
  uint64_t bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    clock.Advance(Duration(1000));
    host.OneSecond(clock, endpoints, ++seed);
    host.collector->Poll();
    const uint64_t txns_before = host.publisher->stats().transactions;
    state.ResumeTiming();
    Status st = host.publisher->Publish({}, {});
    state.PauseTiming();
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      break;
    }
    if (seed == 12) {  // records are full (11 seconds) from here on
      auto all = store->GetPrefix(kKeyRoot + "counters/");
      if (all.ok()) {
        for (const auto& kv : *all) bytes += kv.value.size();
        state.counters["record_bytes"] = static_cast<double>(bytes) / static_cast<double>(all->size());
        state.counters["bytes_per_round"] = static_cast<double>(bytes);
      }
    }
    state.counters["txns_per_round"] = static_cast<double>(host.publisher->stats().transactions - txns_before);
    state.ResumeTiming();
  }
  (void)store->RevokeLease(lease);
}

void BM_Read(benchmark::State& state, const std::string& backend) {
  const int endpoints = static_cast<int>(state.range(0));
  FakeClock clock;
  BenchDir dir;
  auto store = OpenBackend(backend, dir, clock);
  std::vector<std::unique_ptr<Host>> hosts;
  std::vector<LeaseId> leases;
  for (int h = 0; h < 3; ++h) {
    leases.push_back(store->GrantLease(Duration(600000)).value());
    hosts.push_back(std::make_unique<Host>("h" + std::to_string(h), clock, *store, leases.back()));
  }
  ClusterTraffic reader(*store, clock);
  std::vector<std::string> in_service;
  for (int b = 0; b < kBackends; ++b) in_service.push_back("10.0.0." + std::to_string(b) + ":8080");
  int seed = 0;
  for (auto _ : state) {
    state.PauseTiming();
    clock.Advance(Duration(1000));
    for (auto& host : hosts) {
      host->OneSecond(clock, endpoints, ++seed);
      host->collector->Poll();
      if (!host->publisher->Publish({}, {}).ok()) std::abort();
    }
    state.ResumeTiming();
    for (int e = 0; e < endpoints; ++e) {
      auto m = reader.Metrics("ep" + std::to_string(e), Duration(5000), in_service);
      if (!m.ok()) {
        state.SkipWithError(m.status().ToString().c_str());
        break;
      }
      benchmark::DoNotOptimize(m->averages);
    }
  }
  for (LeaseId l : leases) (void)store->RevokeLease(l);
}

BENCHMARK_CAPTURE(BM_Publish, sqlite, std::string("sqlite"))
    ->Arg(100)
    ->Arg(1000)
    ->Iterations(30)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Read, sqlite, std::string("sqlite"))
    ->Arg(100)
    ->Arg(1000)
    ->Iterations(20)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Publish, etcd, std::string("etcd"))
    ->Arg(100)
    ->Arg(1000)
    ->Iterations(30)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Read, etcd, std::string("etcd"))
    ->Arg(100)
    ->Arg(1000)
    ->Iterations(20)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace reactor

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  delete reactor::g_etcd;
  return 0;
}
