#!/usr/bin/env bash
# Builds reactor and runs every test: the format check (clang-format-14) and
# clang-tidy-14 over agent/ and rules/, unit tests under ASan+UBSan and TSan,
# the rules fuzzer for a bounded time, then the normal build's unit, component
# and integration tests (real nginx, processes and wrk on loopback) via ctest.
#
# Usage: tests/run.sh            (from anywhere; builds in build/, build-asan/, build-fuzz/)
# Env:   REACTOR_FUZZ_SECONDS    (default 30 per fuzzer), JOBS (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
FUZZ_SECONDS=${REACTOR_FUZZ_SECONDS:-30}
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)

stage() { printf '\n==== %s ====\n' "$*"; }

# The C++ sources: git's list in a clone, every .h/.cc outside build trees otherwise.
cxx_sources() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files '*.h' '*.cc'
  else
    find agent rules tests -name '*.h' -o -name '*.cc' | sort
  fi
}

stage "format check (clang-format-14, .clang-format)"
command -v clang-format-14 >/dev/null || { echo "clang-format-14 is missing (packaging/install-deps.sh)" >&2; exit 1; }
# Any file that differs from what clang-format-14 -i would write fails the run.
mapfile -t sources < <(cxx_sources)
((${#sources[@]} > 0)) || { echo "no C++ sources found from $PWD" >&2; exit 1; }
clang-format-14 --dry-run -Werror "${sources[@]}"
echo "${#sources[@]} files formatted"

stage "clang-tidy-14 over agent/ and rules/ (.clang-tidy, warnings are errors)"
command -v run-clang-tidy-14 >/dev/null || { echo "run-clang-tidy-14 is missing (clang-tidy-14)" >&2; exit 1; }
# The normal build's configure writes build/compile_commands.json (CMAKE_EXPORT_COMPILE_COMMANDS).
cmake -S . -B build "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREACTOR_WERROR=ON >/dev/null
[[ -f build/compile_commands.json ]] || { echo "build/compile_commands.json was not written" >&2; exit 1; }
# run-clang-tidy exits non-zero on any finding (WarningsAsErrors '*').
root_re=$(printf '%s' "$PWD" | sed 's/[][\\.*^$+?(){}|]/\\&/g')
run-clang-tidy-14 -j"$JOBS" -quiet -p build "^$root_re/(agent|rules)/.*\\.cc\$" >build/clang-tidy.log 2>&1 || {
  grep -E 'warning:|error:' -A3 build/clang-tidy.log >&2 || tail -n 40 build/clang-tidy.log >&2
  echo "clang-tidy found problems (full output: build/clang-tidy.log)" >&2
  exit 1
}
# A regex that matched nothing would lint nothing and pass: count the files.
expected=$(cxx_sources | grep -cE '^(agent|rules)/.*\.cc$')
linted=$(grep -cE '^clang-tidy-14 .*/(agent|rules)/.*\.cc$' build/clang-tidy.log || true)
if ((linted < expected)); then
  echo "clang-tidy linted $linted files of agent/ and rules/, expected $expected" >&2
  exit 1
fi
echo "clang-tidy: no findings in $linted files"

stage "unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan "${GEN[@]}" -DCMAKE_BUILD_TYPE=Debug -DREACTOR_SANITIZE=ON -DREACTOR_BENCH=OFF \
  -DREACTOR_WERROR=ON >/dev/null
cmake --build build-asan -j"$JOBS" --target reactor_unit_tests
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ./build-asan/bin/reactor_unit_tests --gtest_brief=1

stage "unit and component tests under ThreadSanitizer"
# The agent's loop, API pool, health checker, stop worker and launch threads
# share state; any data race TSan reports fails the run.
cmake -S . -B build-tsan "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREACTOR_TSAN=ON -DREACTOR_BENCH=OFF >/dev/null
cmake --build build-tsan -j"$JOBS" --target reactor_unit_tests reactor_component_tests
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ./build-tsan/bin/reactor_unit_tests --gtest_brief=1
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ./build-tsan/bin/reactor_component_tests --gtest_brief=1

stage "fuzzing the rule parser for ${FUZZ_SECONDS}s (libFuzzer, clang)"
CXX=clang++-14 cmake -S . -B build-fuzz "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREACTOR_FUZZ=ON \
  -DREACTOR_BENCH=OFF >/dev/null
fuzzers=()
for src in tests/fuzz/*_fuzzer.cc; do fuzzers+=("$(basename "$src" .cc)"); done
cmake --build build-fuzz -j"$JOBS" --target "${fuzzers[@]}"
for f in "${fuzzers[@]}"; do
  corpus_seed="tests/fuzz/${f%_fuzzer}_corpus"
  work=$(mktemp -d)
  [[ -d $corpus_seed ]] && cp -r "$corpus_seed/." "$work/"
  # Any crash, leak, sanitizer report or hang (-timeout per input) fails the run.
  ./build-fuzz/bin/"$f" "$work" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="build-fuzz/$f-" 2>&1 | tail -n 12
  rm -rf "$work"
done

stage "build (warnings are errors) and run unit, component and integration tests"
cmake -S . -B build "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREACTOR_WERROR=ON >/dev/null
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure --timeout 900
