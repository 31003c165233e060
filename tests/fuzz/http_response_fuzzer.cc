// libFuzzer target for the health prober's response parsing
// (agent/health/http_response_parser.h) and the connection state machine
// that consumes it (agent/health/probe_session.h): any bytes from a server,
// cut into reads anywhere, no crash, and the outcome does not depend on how
// the bytes were cut.
//
// Input: the first byte seeds the read sizes, the rest is what the server sent.
// Build: CXX=clang++-14 cmake -DREACTOR_FUZZ=ON ...; run:
//   http_response_fuzzer -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "agent/health/http_response_parser.h"
#include "agent/health/probe_session.h"

namespace {

using namespace reactor;

#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

struct Verdict {
  HttpResponseParser::Progress progress = HttpResponseParser::Progress::kIncomplete;
  size_t consumed = 0;  // bytes fed until the verdict
  int status = 0;
  bool keep_alive = false;
};

// Feeds `data` in pieces of the sizes `seed` picks, then the end of stream.
Verdict Parse(const uint8_t* data, size_t size, uint32_t seed, bool eof) {
  HttpResponseParser p;
  Verdict v;
  size_t off = 0;
  while (off < size) {
    seed = seed * 1103515245u + 12345u;
    size_t piece = 1 + (seed >> 16) % 64;
    if (piece > size - off) piece = size - off;
    v.progress = p.Feed(reinterpret_cast<const char*>(data) + off, piece);
    off += piece;
    if (v.progress != HttpResponseParser::Progress::kIncomplete) break;
  }
  v.consumed = off;
  if (v.progress == HttpResponseParser::Progress::kIncomplete && eof) v.progress = p.FeedEof();
  if (v.progress == HttpResponseParser::Progress::kComplete) {
    v.status = p.status();
    v.keep_alive = p.keep_alive();
    // Interim answers are skipped, so the final one is never 1xx but 101.
    FUZZ_CHECK(v.status >= 0 && v.status <= 999);
    FUZZ_CHECK(v.status < 100 || v.status >= 200 || v.status == 101);
  }
  if (v.progress == HttpResponseParser::Progress::kError) FUZZ_CHECK(p.error() != nullptr && p.error()[0] != 0);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint32_t seed = data[0];
  ++data;
  --size;

  // Whole and cut in pieces: a complete answer is complete either way, with
  // the same status. (Where an error is first seen may differ, and a
  // keep-alive verdict depends on bytes after the end arriving in the same
  // read, so those are not compared.)
  const Verdict whole = Parse(data, size, 0, true);
  const Verdict cut = Parse(data, size, seed, true);
  if (whole.progress == HttpResponseParser::Progress::kComplete &&
      cut.progress == HttpResponseParser::Progress::kComplete) {
    FUZZ_CHECK(whole.status == cut.status);
  }
  Verdict one_by_one;
  {
    HttpResponseParser p;
    for (size_t i = 0; i < size; ++i) {
      one_by_one.progress = p.Feed(reinterpret_cast<const char*>(data) + i, 1);
      if (one_by_one.progress != HttpResponseParser::Progress::kIncomplete) {
        if (one_by_one.progress == HttpResponseParser::Progress::kComplete) one_by_one.status = p.status();
        break;
      }
    }
  }
  if (one_by_one.progress == HttpResponseParser::Progress::kComplete &&
      whole.progress == HttpResponseParser::Progress::kComplete) {
    FUZZ_CHECK(one_by_one.status == whole.status);
  }

  // The same bytes through a session on a kept-alive connection: the check
  // finishes at most once, and a kept connection only after a complete answer.
  ProbeSession s;
  s.Begin(ProbeKind::kHttp);
  s.Connected(0);
  int finished = 0;
  size_t off = 0;
  uint32_t r = seed;
  while (off < size && s.checking()) {
    r = r * 1103515245u + 12345u;
    size_t piece = 1 + (r >> 16) % 64;
    if (piece > size - off) piece = size - off;
    ProbeSession::Action a = s.Received(reinterpret_cast<const char*>(data) + off, piece);
    off += piece;
    if (a.finished) {
      ++finished;
      FUZZ_CHECK(!a.result.empty());
      FUZZ_CHECK(a.what == ProbeSession::Action::kClose || a.what == ProbeSession::Action::kNothing);
      FUZZ_CHECK((a.what == ProbeSession::Action::kNothing) == (s.state() == ProbeSession::State::kIdle));
    }
  }
  if (s.checking()) {
    ProbeSession::Action a = s.PeerClosed(0);
    FUZZ_CHECK(a.finished);  // on a fresh connection, the close always decides
    ++finished;
  }
  FUZZ_CHECK(finished <= 1);
  FUZZ_CHECK(!s.checking());
  ProbeSession::Action late = s.TimedOut(1000);
  FUZZ_CHECK(!late.finished);
  return 0;
}
