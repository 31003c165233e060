// The Store's cost per operation on both backends, side by side: SQLite (a
// file in a temporary directory, WAL, synchronous = NORMAL; and in memory)
// and etcd (a real 3-member cluster on loopback, started by the benchmark
// with tests/component/etcd_fixture.h, data dirs on /dev/shm).
//
//   build/bin/store_bench                      # all
//   build/bin/store_bench --benchmark_filter=etcd
//
// Put: an unconditional put. Get: one key of 1,000. Txn: a compare-and-swap
// on one key. Watch: a put by one connection until a Watch on another
// returns its event (commit + notification). GetPrefix: N keys under a
// prefix of a store holding 10 x N.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>

#include "../component/etcd_fixture.h"
#include "agent/store/etcd_store.h"
#include "agent/store/sqlite_store.h"

namespace reactor {
namespace {

EtcdCluster* g_etcd = nullptr;

class BenchDir {
 public:
  BenchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "store_bench.XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~BenchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File() const { return (path_ / "state.db").string(); }

 private:
  std::filesystem::path path_;
};

// One backend's store for one benchmark run; keys go under a prefix of
// their own so the runs on the shared etcd cluster do not meet.
struct Backend {
  std::string name;
  std::function<std::unique_ptr<Store>(BenchDir&)> open;
};

std::unique_ptr<Store> OpenSqlite(const std::string& path) {
  auto store = SqliteStore::Open(path, SystemClock::Get());
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    std::abort();
  }
  return std::move(store).value();
}

std::unique_ptr<Store> OpenEtcd() {
  EtcdOptions o;
  o.endpoints = g_etcd->Endpoints();
  auto store = EtcdStore::Open(o);
  if (!store.ok()) std::abort();
  return std::move(store).value();
}

const std::vector<Backend>& Backends() {
  static const std::vector<Backend> b = {
      {"sqlite_memory", [](BenchDir&) { return OpenSqlite(":memory:"); }},
      {"sqlite_file", [](BenchDir& d) { return OpenSqlite(d.File()); }},
      {"etcd_3_members", [](BenchDir&) { return OpenEtcd(); }},
  };
  return b;
}

int g_run = 0;
std::string RunPrefix() { return "/bench/" + std::to_string(::getpid()) + "/" + std::to_string(++g_run) + "/"; }

void Check(const Status& st) {
  if (!st.ok()) {
    std::fprintf(stderr, "store_bench: %s\n", st.ToString().c_str());
    std::abort();
  }
}

void Put(benchmark::State& state, const Backend& b) {
  BenchDir dir;
  auto store = b.open(dir);
  const std::string p = RunPrefix();
  int64_t i = 0;
  for (auto _ : state) Check(store->Put(p + std::to_string(i++ % 1000), "value").status());
}

void Get(benchmark::State& state, const Backend& b) {
  BenchDir dir;
  auto store = b.open(dir);
  const std::string p = RunPrefix();
  for (int batch = 0; batch < 10; ++batch) {
    Txn txn;
    for (int i = batch * 100; i < (batch + 1) * 100; ++i)
      txn.success.push_back(Op::Put(p + std::to_string(i), "value"));
    Check(store->Commit(txn).status());
  }
  int64_t i = 0;
  for (auto _ : state) {
    auto r = store->Get(p + std::to_string(i++ % 1000));
    if (!r.ok() || !r->has_value()) std::abort();
  }
}

void CompareAndSwap(benchmark::State& state, const Backend& b) {
  BenchDir dir;
  auto store = b.open(dir);
  const std::string key = RunPrefix() + "counter";
  auto first = store->Put(key, "0");
  Check(first.status());
  int64_t rev = *first;
  for (auto _ : state) {
    auto r = store->CompareAndSwap(key, rev, "x");
    Check(r.status());
    rev = *r;
  }
}

void WatchLatency(benchmark::State& state, const Backend& b) {
  BenchDir dir;
  auto writer = b.open(dir);
  // The watcher is a second connection (SQLite in memory has only one).
  std::unique_ptr<Store> own_watcher = b.name == "sqlite_memory" ? nullptr : b.open(dir);
  Store& watcher = own_watcher ? *own_watcher : *writer;
  const std::string p = RunPrefix();
  auto start = writer->Put(p + "k", "0");
  Check(start.status());
  int64_t rev = *start;
  // Open the stream before timing.
  Check(watcher.Watch(p, rev, Duration(0)).status());
  int64_t i = 0;
  for (auto _ : state) {
    Check(writer->Put(p + "k", std::to_string(++i)).status());
    while (true) {
      auto w = watcher.Watch(p, rev, Duration(5000));
      Check(w.status());
      rev = w->revision;
      if (!w->events.empty()) break;
    }
  }
}

void GetPrefix(benchmark::State& state, const Backend& b) {
  BenchDir dir;
  auto store = b.open(dir);
  const std::string p = RunPrefix();
  const int64_t n = state.range(0);
  for (int e = 0; e < 10; ++e) {
    Txn txn;
    for (int64_t i = 0; i < n; ++i) {
      txn.success.push_back(Op::Put(p + "ep" + std::to_string(e) + "/" + std::to_string(i), "v"));
      if (txn.success.size() == 100) {
        Check(store->Commit(txn).status());
        txn.success.clear();
      }
    }
    if (!txn.success.empty()) Check(store->Commit(txn).status());
  }
  for (auto _ : state) {
    auto r = store->GetPrefix(p + "ep3/");
    if (!r.ok() || static_cast<int64_t>(r->size()) != n) std::abort();
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void Register() {
  // Each operation on every backend in turn, so the table reads side by side.
  struct Bench {
    const char* name;
    void (*fn)(benchmark::State&, const Backend&);
  } const benches[] = {
      {"Put", Put}, {"Get", Get}, {"Txn_CompareAndSwap", CompareAndSwap}, {"Watch_PutToEvent", WatchLatency}};
  for (const Bench& bench : benches) {
    for (const Backend& b : Backends()) {
      benchmark::RegisterBenchmark((std::string(bench.name) + "/" + b.name).c_str(), bench.fn, b)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    }
  }
  for (const Backend& b : Backends()) {
    benchmark::RegisterBenchmark(("GetPrefix/" + b.name).c_str(), GetPrefix, b)
        ->Arg(10)
        ->Arg(1000)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
}

}  // namespace
}  // namespace reactor

int main(int argc, char** argv) {
  reactor::EtcdCluster cluster;
  const std::string why = cluster.Start(3);
  if (!why.empty()) {
    std::fprintf(stderr, "store_bench: cannot start etcd: %s\n", why.c_str());
    return 1;
  }
  reactor::g_etcd = &cluster;
  reactor::Register();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
