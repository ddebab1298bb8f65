# shellcheck shell=bash
# Sourced by bench/run_*.sh: option parsing, the build's programs, and the synthetic Llama models the
# benchmarks share. Each script's header comment is its --help text.
#
# Conventions of every run script:
#   bench/run_<what>.sh [--option VALUE ...] [BUILD_DIR [WORK_DIR [...]]]
#   BUILD_DIR (default: build) holds the lota build (`LOTA_BUILD_DIR=BUILD_DIR scripts/build.sh TARGETS`);
#   results go to WORK_DIR/<what>/ (default WORK_DIR: runs/bench); generated models go to WORK_DIR/models/
#   and are reused by every script given the same WORK_DIR.

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

bench_die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# The leading comment block of the running script, without the shebang and the '# ' prefixes.
bench_usage() {
    awk 'NR == 1 && /^#!/ { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
    exit "${1:-0}"
}

# bench_parse "$@": `--name VALUE` sets opt_name (dashes become underscores; only names the script gave a
# default, so a misspelt option is an error); everything else is appended to ARGS.
bench_parse() {
    ARGS=()
    while [ $# -gt 0 ]; do
        case "$1" in
            -h|--help) bench_usage 0 ;;
            --*)
                local name="opt_${1#--}"
                name="${name//-/_}"
                declare -p "$name" >/dev/null 2>&1 || bench_die "unknown option $1 (see --help)"
                [ $# -ge 2 ] || bench_die "option $1 needs a value"
                printf -v "$name" '%s' "$2"
                shift 2 ;;
            *) ARGS+=("$1"); shift ;;
        esac
    done
}

# bench_setup NAME BUILD_DIR WORK_DIR: the runtime paths of the build (scripts/env.sh), then BUILD, WORK,
# MODELS (WORK/models) and OUT (WORK/NAME, created) as absolute paths; PY is the Python with torch.
# shellcheck disable=SC2034  # the variables are for the run scripts
bench_setup() {
    local name=$1 build=${2:-build} work=${3:-runs/bench}
    # shellcheck source=../scripts/env.sh
    source "$BENCH_ROOT/scripts/env.sh"
    BUILD="$(cd "$build" 2>/dev/null && pwd)" || bench_die "no build directory $build"
    mkdir -p "$work/$name" "$work/models"
    WORK="$(cd "$work" && pwd)"
    MODELS="$WORK/models"
    OUT="$WORK/$name"
    PY="${opt_python:-$LOTA_PYTHON}"
    LOTA="$BUILD/lota"
    T0=$SECONDS
}

# bench_need PROGRAM...: each must be in the build.
bench_need() {
    local p target
    for p in "$@"; do
        target=$p
        [ "$p" = lota ] && target=lota_cli
        [ -x "$BUILD/$p" ] || bench_die "no $BUILD/$p: build it with LOTA_BUILD_DIR=$BUILD scripts/build.sh $target"
    done
}

bench_stamp() { echo "[$((SECONDS - T0)) s] $*" >&2; }

# Model shapes by name: "8b" is Llama-3.1-8B (8.0 B parameters), "70b" Llama-3.3-70B (70.6 B), "tiny" a
# 4-layer model for a CPU check. The vocabulary comes from the tokenizer (Llama-3.1's: 128 256 rows).
bench_shape() {
    case "$1" in
        8b) SHAPE=(--hidden 4096 --layers 32 --heads 32 --kv-heads 8 --intermediate 14336) ;;
        70b) SHAPE=(--hidden 8192 --layers 80 --heads 64 --kv-heads 8 --intermediate 28672) ;;
        tiny) SHAPE=(--hidden 256 --layers 4 --heads 4 --kv-heads 2 --intermediate 768) ;;
        *) bench_die "unknown --shape $1 (8b, 70b or tiny)" ;;
    esac
}

# bench_make_model DIR TOKENIZER_DIR: a random bf16 Llama of SHAPE (seed 0, llama3 RoPE scaling) unless DIR
# already holds one.
bench_make_model() {
    [ -f "$1/config.json" ] && return 0
    [ -f "$2/tokenizer.json" ] || bench_die "no tokenizer.json in $2 (see --tokenizer)"
    bench_stamp "lota init -> $1"
    "$LOTA" init --arch llama --out "$1" --seed 0 "${SHAPE[@]}" --rope-scaling llama3 --tokenizer "$2" --out-dtype bf16 >&2
}

# bench_init_quantized DIR BITS GROUP DEVICE TOKENIZER_DIR: a random Llama of SHAPE (seed 0, llama3 RoPE scaling)
# with RTN codes written layer by layer by `lota init` on DEVICE (the same codes as `lota init` then
# `lota quantize --method rtn` on that device; CPU and CUDA draw different values), unless DIR holds one.
bench_init_quantized() {
    local dir=$1 bits=$2 group=$3 device=$4 tok=$5
    [ -f "$dir/config.json" ] && return 0
    [ -f "$tok/tokenizer.json" ] || bench_die "no tokenizer.json in $tok (see --tokenizer)"
    bench_stamp "lota init --bits $bits --group-size $group --device $device -> $dir"
    "$LOTA" init --arch llama --out "$dir" --seed 0 "${SHAPE[@]}" --rope-scaling llama3 --tokenizer "$tok" \
        --out-dtype bf16 --bits "$bits" --group-size "$group" --device "$device" >&2 || bench_die "lota init failed"
}

# bench_quantize SRC DST ARGS...: `lota quantize --model SRC --out DST ARGS` unless DST exists.
bench_quantize() {
    local src=$1 dst=$2
    shift 2
    [ -f "$dst/config.json" ] && return 0
    bench_stamp "lota quantize $* -> $dst"
    "$LOTA" quantize --model "$src" --out "$dst" "$@" >&2
}

# bench_smollm2 SOURCE: sets SMOL to an f32 HF directory of SmolLM2-135M-Instruct. SOURCE is such a
# directory, a .gguf file (imported in f32 into MODELS/smollm2-f32), or empty (the GGUF that
# scripts/fetch_smollm2.sh downloads).
bench_smollm2() {
    local src=$1
    if [ -n "$src" ] && [ -f "$src/config.json" ]; then
        SMOL="$(cd "$src" && pwd)"
        return 0
    fi
    SMOL="$MODELS/smollm2-f32"
    [ -f "$SMOL/config.json" ] && return 0
    if [ -z "$src" ]; then
        src="$("$BENCH_ROOT/scripts/fetch_smollm2.sh")" || bench_die "no SmolLM2: pass a model directory or .gguf file"
    fi
    [ -f "$src" ] || bench_die "no SmolLM2 model directory or GGUF file at $src"
    bench_stamp "lota import $src -> $SMOL"
    "$LOTA" import --gguf "$src" --out "$SMOL" --out-dtype f32 >&2
}

# bench_words_text TOKENIZER_JSON OUT SEQ WINDOWS: OUT gets random single-token words of the tokenizer that
# tokenize to exactly WINDOWS windows of SEQ tokens (training text whose every micro-batch is full).
bench_words_text() {
    "$PY" - "$@" <<'EOF'
import random, re, sys
from tokenizers import Tokenizer
tok_path, out, seq, windows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
target = seq * windows
rng = random.Random(0)
tok = Tokenizer.from_file(tok_path)
pool = sorted(t[1:] for t in tok.get_vocab() if re.fullmatch("\u0120[a-z]{3,9}", t))
words = [rng.choice(pool) for _ in range(target + 16)]
for _ in range(8):
    n = len(tok.encode(" ".join(words), add_special_tokens=True).ids)
    if n == target:
        break
    if n > target:
        del words[len(words) - (n - target):]
    else:
        words += [rng.choice(pool) for _ in range(target - n)]
open(out, "w").write(" ".join(words) + "\n")
print(f"text: {len(words)} words, {n} tokens (target {target} = {windows} x {seq})", file=sys.stderr)
EOF
}

# bench_smi_start FILE / bench_smi_stop: on CUDA (opt_device), device memory as the driver sees it (CUDA
# context + caching allocator) sampled every 100 ms into FILE; stop before reading FILE.
SMI_PID=""
bench_smi_start() {
    : > "$1"
    if [ "${opt_device:-cuda}" = cuda ] && command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 100 > "$1" 2>/dev/null &
        SMI_PID=$!
    fi
}
bench_smi_stop() {
    if [ -n "$SMI_PID" ]; then kill "$SMI_PID" 2>/dev/null || true; wait "$SMI_PID" 2>/dev/null || true; fi
    SMI_PID=""
}

# bench_json_num KEY FILE: a number from a one-line JSON object.
bench_json_num() { sed -nE "s/.*\"$1\": *(-?[0-9.eE+-]+).*/\1/p" "$2" | tail -n 1; }
