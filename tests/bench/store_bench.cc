// The SQLite store's cost per operation, on a file in a temporary directory
// (WAL, synchronous = NORMAL) and in memory.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "agent/store/sqlite_store.h"

namespace reactor {
namespace {

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

std::unique_ptr<SqliteStore> OpenOrDie(const std::string& path) {
  auto store = SqliteStore::Open(path, SystemClock::Get());
  if (!store.ok()) std::abort();
  return std::move(store).value();
}

// Arg: 0 = in memory, 1 = file.
void BM_Put(benchmark::State& state) {
  BenchDir dir;
  auto store = OpenOrDie(state.range(0) ? dir.File() : ":memory:");
  int64_t i = 0;
  for (auto _ : state) {
    auto r = store->Put("/reactor/bench/" + std::to_string(i++ % 1000), "value");
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_Put)->Arg(0)->Arg(1);

void BM_Get(benchmark::State& state) {
  BenchDir dir;
  auto store = OpenOrDie(state.range(0) ? dir.File() : ":memory:");
  for (int i = 0; i < 1000; ++i) store->Put("/reactor/bench/" + std::to_string(i), "value");
  int64_t i = 0;
  for (auto _ : state) {
    auto r = store->Get("/reactor/bench/" + std::to_string(i++ % 1000));
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_Get)->Arg(0)->Arg(1);

void BM_CompareAndSwap(benchmark::State& state) {
  BenchDir dir;
  auto store = OpenOrDie(state.range(0) ? dir.File() : ":memory:");
  int64_t rev = *store->Put("/reactor/bench/counter", "0");
  for (auto _ : state) {
    auto r = store->CompareAndSwap("/reactor/bench/counter", rev, "x");
    if (!r.ok()) std::abort();
    rev = *r;
  }
}
BENCHMARK(BM_CompareAndSwap)->Arg(0)->Arg(1);

// Range: keys under the prefix (of 10x as many in the store).
void BM_GetPrefix(benchmark::State& state) {
  BenchDir dir;
  auto store = OpenOrDie(dir.File());
  const int64_t n = state.range(0);
  Txn txn;
  for (int e = 0; e < 10; ++e) {
    for (int64_t i = 0; i < n; ++i) {
      txn.success.push_back(Op::Put("/reactor/instances/ep" + std::to_string(e) + "/" + std::to_string(i), "v"));
    }
  }
  store->Commit(txn);
  for (auto _ : state) {
    auto r = store->GetPrefix("/reactor/instances/ep3/");
    if (!r.ok() || static_cast<int64_t>(r->size()) != n) std::abort();
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_GetPrefix)->Arg(10)->Arg(1000);

}  // namespace
}  // namespace reactor

BENCHMARK_MAIN();
