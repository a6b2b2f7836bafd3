#!/bin/sh
# `sclc check` on the hostile input shapes of issue 15 (class 3), each at doubling sizes:
# the time per input byte must stay flat (linear cost). Prints a Markdown table (the one in
# docs/performance.md, "Hostile input shapes"). Not a test: nothing here is asserted.
#
#     bench/hostile.sh            # release build, then every shape
#     SCLC=path/to/sclc bench/hostile.sh
#
# Each run is `sclc check --color never FILE` (human format, diagnostics to /dev/null),
# best of three, so process start-up (about 1 ms) is included.
set -eu
cd "$(dirname "$0")/.."
if [ -z "${SCLC:-}" ]; then
    cargo build --release -p sclc >&2
    SCLC=target/release/sclc
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# A line of N bytes of printable garbage (fixed seed, no line end). Without brackets: with
# them the nesting limit stops the parser early, and the point is to have many errors on
# one line.
garbage() {
    awk -v n="$1" 'BEGIN { srand(7); for (i = 0; i < n; i++) { c = 33 + int(rand() * 94);
        if (c == 40 || c == 41 || c == 91 || c == 93 || c == 123 || c == 125) c = 97; printf "%c", c } }'
}
# N state declarations that nothing uses: N warnings.
warnings() {
    awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) printf "global g%d: u64;\n", i;
        print "policy p for spinlock {\n    on contended(l: lock) {\n        g0 += 1;\n    }\n}" }'
}
# Two names of N bytes one edit apart: a declaration and a use of the other.
names() {
    a=$(head -c "$1" /dev/zero | tr '\0' x)
    b="$(printf '%s' "$a" | cut -c2-)y"
    printf 'global %s: u64;\npolicy p for spinlock {\n    on contended(l: lock) {\n        %s += 1;\n    }\n}\n' "$a" "$b"
}
# A chain of N functions, each calling the next.
chain() {
    awk -v n="$1" 'BEGIN { print "global g: u64;";
        for (i = 0; i < n - 1; i++) printf "fn f%d(x: u64) -> u64 { return f%d(x); }\n", i, i + 1;
        printf "fn f%d(x: u64) -> u64 { return x + 1; }\n", n - 1;
        print "policy p for spinlock {\n    on contended(l: lock) {\n        g = f0(g);\n    }\n}" }'
}
# N pairs of a character no token starts with and a letter: the most lexical errors.
controls() {
    awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) printf "\001a" }'
}

# Best of three wall-clock times of `sclc check FILE`, in milliseconds.
best_ms() {
    best=""
    for _ in 1 2 3; do
        start=$(date +%s%N)
        "$SCLC" check --color never "$1" >/dev/null 2>&1 || true
        end=$(date +%s%N)
        t=$(( (end - start) / 1000 ))
        if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
    done
    awk -v us="$best" 'BEGIN { printf "%.1f", us / 1000 }'
}

echo "| shape | size | input | time | per MB of input |"
echo "|---|---|---|---|---|"
run() {
    shape=$1 gen=$2 label=$3
    shift 3
    for n in "$@"; do
        f="$dir/$gen-$n.scl"
        "$gen" "$n" >"$f"
        bytes=$(wc -c <"$f")
        ms=$(best_ms "$f")
        awk -v s="$shape" -v l="$label" -v n="$n" -v b="$bytes" -v ms="$ms" \
            'BEGIN { printf "| %s | %s %s | %.2f MB | %s ms | %.1f ms |\n", s, n, l, b / 1048576, ms, ms / (b / 1048576) }'
    done
}
run "one line of garbage" garbage bytes 1048576 2097152 4194304 8388608 15728640
run "unused state" warnings warnings 12500 25000 50000 100000 200000
run "two long names" names "bytes each" 131072 262144 524288 1048576 2097152
run "call chain" chain calls 5000 10000 20000 40000 80000
run "control characters" controls pairs 262144 524288 1048576 2097152 4194304
