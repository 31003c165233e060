// The access-log parser's cost (SPEC §11), and the generator of the access
// log that tests/bench/log_parser_bench.sh times against `wc -l` and a
// per-line regex parser in Python.
//
//   log_parser_bench                         Google Benchmark: per line, per file
//   log_parser_bench --generate FILE LINES   writes LINES lines in the agent's
//                                            format with realistic variety
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "agent/metrics/access_log_parser.h"
#include "agent/metrics/log_totals.h"

namespace reactor {
namespace {

// Traffic of a few endpoints with their backends: mostly 200s, some 3xx/4xx,
// ~1.5% 5xx, ~3% retried on another backend, a few internal redirects,
// client aborts with '-' upstream fields, nginx's own 503s (no instance: a
// foreign line) and an occasional garbage line.
class LogGenerator {
 public:
  explicit LogGenerator(uint32_t seed) : rng_(seed) {
    const char* names[] = {"web", "api", "static-files", "admin", "search_v2"};
    const int counts[] = {10, 8, 4, 2, 6};
    int port = 30000;
    for (int e = 0; e < 5; ++e) {
      Endpoint ep;
      ep.name = names[e];
      for (int b = 0; b < counts[e]; ++b) {
        ep.backends.push_back("127.0.0." + std::to_string(1 + b % 3) + ":" + std::to_string(port++));
      }
      endpoints_.push_back(ep);
    }
  }

  void Line(std::string* out) {
    msec_ += Uniform(0, 3);
    char head[64];
    std::snprintf(head, sizeof head, "%lld.%03lld|", static_cast<long long>(msec_ / 1000),
                  static_cast<long long>(msec_ % 1000));
    out->append(head);
    const int roll = Uniform(0, 9999);
    if (roll < 10) {  // garbage
      out->append("GET /favicon.ico HTTP/1.1 \"-\" \"curl/8.0\"\n");
      return;
    }
    // Zipf-ish: web gets most traffic.
    const int e = Pick({50, 25, 12, 5, 8});
    const Endpoint& ep = endpoints_[e];
    if (roll < 60) {  // no instance: nginx answers itself, outside the upstream
      out->append("-|503|190|0.000|-|-|-\n");
      return;
    }
    out->append("reactor_").append(ep.name).push_back('|');
    std::string addrs, statuses, times;
    int status = 200;
    double rt = RespTime();
    const std::string& b1 = ep.backends[Uniform(0, static_cast<int>(ep.backends.size()) - 1)];
    const std::string& b2 = ep.backends[Uniform(0, static_cast<int>(ep.backends.size()) - 1)];
    if (roll < 360) {  // retried after a failed connect or a timeout
      const bool timeout = Uniform(0, 3) == 0;
      addrs = b1 + ", " + b2;
      statuses = std::string(timeout ? "504" : "502") + ", 200";
      times = Fmt(timeout ? 5.0 : 0.001) + ", " + Fmt(rt);
    } else if (roll < 400) {  // internal redirect: two groups
      addrs = b1 + " : " + b2;
      statuses = "404 : 200";
      times = Fmt(0.002) + " : " + Fmt(rt);
    } else if (roll < 450) {  // client closed the connection
      status = 499;
      addrs = b1;
      statuses = "-";
      times = "-";
    } else {
      addrs = b1;
      const int s = Uniform(0, 999);
      status = s < 15 ? 500 + Uniform(0, 4) : s < 60 ? 404 : s < 90 ? 301 : s < 100 ? 304 : 200;
      statuses = std::to_string(status);
      times = Fmt(rt);
    }
    const int bytes = status == 499 ? 0 : Uniform(150, 120000);
    char mid[64];
    std::snprintf(mid, sizeof mid, "%d|%d|%s|", status, bytes, Fmt(rt + 0.001).c_str());
    out->append(mid).append(addrs).push_back('|');
    out->append(statuses).push_back('|');
    out->append(times).push_back('\n');
  }

 private:
  struct Endpoint {
    std::string name;
    std::vector<std::string> backends;
  };
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  int Pick(std::initializer_list<int> weights) {
    int total = 0;
    for (int w : weights) total += w;
    int r = Uniform(0, total - 1), i = 0;
    for (int w : weights) {
      if (r < w) return i;
      r -= w;
      ++i;
    }
    return 0;
  }
  double RespTime() { return std::lognormal_distribution<double>(-3.5, 1.0)(rng_); }
  static std::string Fmt(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", s);
    return buf;
  }

  std::mt19937 rng_;
  std::vector<Endpoint> endpoints_;
  long long msec_ = 1700000000000LL;
};

int Generate(const char* path, long lines) {
  FILE* f = std::fopen(path, "w");
  if (f == nullptr) {
    std::perror(path);
    return 1;
  }
  LogGenerator gen(42);
  std::string buf;
  for (long i = 0; i < lines; ++i) {
    gen.Line(&buf);
    if (buf.size() > (1 << 20)) {
      std::fwrite(buf.data(), 1, buf.size(), f);
      buf.clear();
    }
  }
  std::fwrite(buf.data(), 1, buf.size(), f);
  return std::fclose(f) == 0 ? 0 : 1;
}

std::vector<std::string> SampleLines(int n) {
  LogGenerator gen(7);
  std::vector<std::string> lines;
  for (int i = 0; i < n; ++i) {
    std::string l;
    gen.Line(&l);
    l.pop_back();
    lines.push_back(l);
  }
  return lines;
}

void BM_ParseLine(benchmark::State& state) {
  auto lines = SampleLines(4096);
  size_t i = 0, bytes = 0;
  LogRecord r;
  for (auto _ : state) {
    const std::string& l = lines[i++ & 4095];
    benchmark::DoNotOptimize(ParseLogLine(l, &r));
    bytes += l.size() + 1;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_ParseLine);

void BM_ParseAndAggregateLine(benchmark::State& state) {
  auto lines = SampleLines(4096);
  LogTotals totals;
  size_t i = 0;
  for (auto _ : state) totals.AddLine(lines[i++ & 4095]);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseAndAggregateLine);

void BM_ParseFile(benchmark::State& state) {
  char path[] = "/tmp/log_parser_bench.XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) std::abort();
  close(fd);
  if (Generate(path, state.range(0)) != 0) std::abort();
  for (auto _ : state) {
    LogTotals totals;
    if (!totals.AddFile(path).ok()) std::abort();
    benchmark::DoNotOptimize(totals.lines());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  unlink(path);
}
BENCHMARK(BM_ParseFile)->Arg(200000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace reactor

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "--generate") == 0) {
    return reactor::Generate(argv[2], std::atol(argv[3]));
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
