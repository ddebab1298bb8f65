#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/: clang, AddressSanitizer + UndefinedBehaviorSanitizer) into
# build-fuzz/ and runs each for SECONDS (default 60), seeded from ../shared by fuzz/make_corpus.py.
# Prints one line per harness (executions, rate, coverage) and fails when a harness finds a crash,
# a leak, a timeout or an escaped exception; the input is saved in build-fuzz/findings/<target>/.
# Keep a fixed finding as a regression input: copy it to tests/fuzz_regress/<target>/.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (targets: safetensors gguf tokenizer jinja config dataset)
# With LOTA_FUZZ_OPTIONAL=1 (scripts/test.sh), a machine that cannot install clang skips the run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
SECONDS_EACH="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(safetensors gguf tokenizer jinja config dataset)
FUZZ_DIR="${LOTA_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"

if ! command -v clang++ >/dev/null 2>&1 || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a \
    >/dev/null 2>&1; then
    echo "fuzz: installing clang and its libFuzzer runtime"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang \
        libclang-rt-14-dev >/dev/null; }; then
        [ "${LOTA_FUZZ_OPTIONAL:-0}" = 1 ] && {
            echo "fuzz: SKIPPED: clang++ and libFuzzer (Debian: clang, libclang-rt-14-dev) are missing and cannot be" \
                 "installed here (apt-get failed); the parsers were not fuzzed"
            exit 0
        }
        echo "fuzz: clang++ and libFuzzer are missing and apt-get cannot install them (clang libclang-rt-14-dev)" >&2
        exit 1
    fi
fi
if [ ! -f "$FUZZ_DIR/build.ninja" ]; then
    launcher=(); command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    cmake -S "$ROOT/fuzz" -B "$FUZZ_DIR" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DLOTA_PYTHON="$LOTA_PYTHON" \
        "${launcher[@]}" >/dev/null
fi
cmake --build "$FUZZ_DIR" -- "${TARGETS[@]/#/fuzz_}"
"$LOTA_PYTHON" "$ROOT/fuzz/make_corpus.py" "$FUZZ_DIR/seeds" "$ROOT/../shared" >/dev/null

# Leaks are checked; LibTorch's own one-time allocations are not lota's.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LOTA_LOG=error
failed=()
for t in "${TARGETS[@]}"; do
    # Without ../shared a target may have no seeds: libFuzzer then starts from an empty input.
    mkdir -p "$FUZZ_DIR/corpus/$t" "$FUZZ_DIR/seeds/$t" "$FUZZ_DIR/findings/$t" "$FUZZ_DIR/logs"
    log="$FUZZ_DIR/logs/$t.log"
    # -timeout: one input running longer is a finding (templates stop at 10M steps, ~10 s);
    # -rss_limit_mb: the 64 MiB text limits leave ample room below it.
    dict=()
    case "$t" in
        jinja) dict=(-dict="$ROOT/fuzz/jinja.dict") ;;
        gguf) ;;
        *) dict=(-dict="$ROOT/fuzz/json.dict") ;;
    esac
    rc=0
    "$FUZZ_DIR/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=60 -rss_limit_mb=3072 -print_final_stats=1 \
        "${dict[@]}" -artifact_prefix="$FUZZ_DIR/findings/$t/" "$FUZZ_DIR/corpus/$t" "$FUZZ_DIR/seeds/$t" \
        >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    printf 'fuzz %-12s %10s executions  %6s exec/s  cov %6s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
        "$([ "$rc" -eq 0 ] && echo ok || echo "FINDING (exit $rc): see $log")"
    if [ "$rc" -ne 0 ]; then
        failed+=("$t")
        # CI keeps only what is printed: the report, and the input itself when it is small enough to paste.
        grep -m1 -A12 -E 'ERROR: |runtime error: |SUMMARY: ' "$log" | sed 's/^/    /' || tail -n 20 "$log"
        for f in "$FUZZ_DIR/findings/$t"/*; do
            [ -f "$f" ] && [ "$(stat -c %s "$f")" -le 8192 ] || continue
            echo "    input $(basename "$f") (base64; replay: base64 -d > x && $FUZZ_DIR/fuzz_$t x):"
            base64 -w 100 "$f" | sed 's/^/    /'
        done
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: findings in: ${failed[*]} (inputs under $FUZZ_DIR/findings/)"
    exit 1
fi
