#!/usr/bin/env bash
# What `sclc record` costs per lock event, against `sclc run` with the example profiler,
# measured in ONE run on the same storm (issue 18: recording must cost no more per event
# than `sclc run` does).
#
# With kernel.bpf_stats_enabled=1 (restored afterwards), in interleaved rounds (the order
# rotates), each mode is attached (and settled for a second), then the storm
# (scl-storm: mmap rwsem, pipe mutex, wait-queue spinlocks) runs for --duration seconds,
# then the kernel's run_time_ns and run_cnt of each program of the mode are read before it
# is stopped with SIGINT:
#
#   run          sclc run examples/contention_profiler.scl --interval 1h (stacks on: the
#                profiler as shipped)
#   run-nostack  the same with --set stacks=false (no kernel stack walk)
#   record       sclc record -o target/record-cost/storm.trace
#
# It reports, per mode, the median over rounds of the ns per program call (both programs'
# run time over both programs' calls: one call per lock event), each program's median,
# the storm's throughput, and the ratio of record's ns per event to each run mode's. It
# also reports what record wrote (events, lost, bytes per event) in the last round.
#
# Usage: bench/record-cost.sh [--rounds N] [--duration SECONDS] [--threads N] [--sclc PATH] [--no-build]
#   defaults: 5 rounds, 3 s storms, 8 storm threads, target/debug/sclc (the programs'
#   in-kernel cost does not depend on how sclc itself was built).
# Output: Markdown on stdout and in target/record-cost/report.md, raw numbers in
# target/record-cost/. See docs/performance.md ("Recording cost").
# Needs: root, a kernel >= 5.19 with BTF, bpftool, cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=5 duration=3 threads=8 build=1 sclc_bin=target/debug/sclc
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --sclc) sclc_bin=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "record-cost.sh: unknown argument \`$1\` (try --help)" >&2; exit 2 ;;
    esac
done
die() { echo "record-cost.sh: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root"
command -v bpftool >/dev/null || die "bpftool is not installed"
if [ "$build" = 1 ]; then
    cargo build -q -p sclc -p scl-bench --bin sclc --bin scl-storm
fi
storm_bin=$(dirname "$sclc_bin")/scl-storm
[ -x "$storm_bin" ] || storm_bin=target/debug/scl-storm
[ -x "$sclc_bin" ] && [ -x "$storm_bin" ] || die "build first: cargo build -p sclc -p scl-bench"

out=target/record-cost
mkdir -p "$out/bin"
rm -f "$out"/*.log "$out"/*.tsv "$out"/*.trace
cp "$sclc_bin" "$out/bin/sclc"; cp "$storm_bin" "$out/bin/scl-storm"
sclc=$out/bin/sclc storm=$out/bin/scl-storm
results=$out/results.tsv
printf 'round\tmode\tprogram\tcalls\trun_time_ns\tops_per_s\n' >"$results"
pid=
stats_before=$(cat /proc/sys/kernel/bpf_stats_enabled)
cleanup() {
    if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    echo "$stats_before" >/proc/sys/kernel/bpf_stats_enabled
}
trap cleanup EXIT
echo 1 >/proc/sys/kernel/bpf_stats_enabled

fds() { local n=0 f; for f in /proc/"$1"/fd/*; do [ "$(readlink "$f" 2>/dev/null)" = "$2" ] && n=$((n + 1)); done; echo $n; }
prog_ids() { grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -un; }

modes="run run-nostack record"
for r in $(seq "$rounds"); do
    # Rotate the order from round to round.
    set -- $modes
    k=$(( (r - 1) % $# ))
    order=$(echo $modes $modes | tr ' ' '\n' | tail -n +$((k + 1)) | head -n $# | tr '\n' ' ')
    for mode in $order; do
        log=$out/$mode.$r.log
        case "$mode" in
            run) "$sclc" run examples/contention_profiler.scl --interval 1h --format json >"$log" 2>"$log.err" & ;;
            run-nostack) "$sclc" run examples/contention_profiler.scl --set stacks=false --interval 1h --format json >"$log" 2>"$log.err" & ;;
            record) "$sclc" record -o "$out/storm.trace" --format json >"$log" 2>"$log.err" & ;;
        esac
        pid=$!
        for i in $(seq 200); do
            kill -0 "$pid" 2>/dev/null || die "$mode exited early: $(cat "$log.err")"
            [ "$(fds "$pid" anon_inode:bpf_link)" -ge 2 ] && break
            sleep 0.1
        done
        sleep 1
        ops=$("$storm" --threads "$threads" --duration "$duration" | tr ' ' '\n' | awk -F= '$1 == "ops_per_s" {print $2}')
        for id in $(prog_ids "$pid"); do
            bpftool prog show id "$id" | awk -v r="$r" -v mode="$mode" -v ops="$ops" '
                NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "name") name = $(i + 1); if ($i == "run_time_ns") t = $(i + 1); if ($i == "run_cnt") c = $(i + 1) } }
                END { if (c > 0) printf "%s\t%s\t%s\t%d\t%d\t%s\n", r, mode, name, c, t, ops }' >>"$results"
        done
        kill -INT "$pid"; wait "$pid" || die "$mode failed: $(cat "$log.err")"
        pid=
        echo "  round $r $mode: $ops ops/s" >&2
    done
done
echo "$stats_before" >/proc/sys/kernel/bpf_stats_enabled

median() { sort -n | awk '{v[NR] = $1} END {if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# ns per event of mode $1 in each round: both programs' run time over their calls.
per_event() { awk -F'\t' -v m="$1" 'NR > 1 && $2 == m { t[$1] += $5; c[$1] += $4 } END { for (r in t) if (c[r] > 0) printf "%.1f\n", t[r] / c[r] }' "$results"; }
per_prog() { awk -F'\t' -v m="$1" -v p="$2" 'NR > 1 && $2 == m && $3 == p && $4 > 0 { printf "%.1f\n", $5 / $4 }' "$results"; }
events_per_s() { awk -F'\t' -v m="$1" -v d="$duration" 'NR > 1 && $2 == m { c[$1] += $4 } END { for (r in c) printf "%.0f\n", c[r] / (d + 1) }' "$results"; }
ops_of() { awk -F'\t' -v m="$1" 'NR > 1 && $2 == m && !seen[$1]++ { print $6 }' "$results"; }
{
    echo "sclc at $(git rev-parse --short HEAD 2>/dev/null || echo '?'); $(uname -r); $(nproc) CPUs; $rounds rounds of $duration s storms with $threads threads; kernel.bpf_stats_enabled=1."
    echo
    echo "| mode | ns per event (median over rounds) | contended ns/call | contention_end ns/call | events/s seen | storm ops/s |"
    echo "|---|---|---|---|---|---|"
    for m in $modes; do
        printf '| %s | %s | %s | %s | %s | %s |\n' "$m" "$(per_event $m | median)" "$(per_prog $m contended | median)" "$(per_prog $m contention_end | median)" "$(events_per_s $m | median)" "$(ops_of $m | median)"
    done
    rec=$(per_event record | median) run=$(per_event run | median) nost=$(per_event run-nostack | median)
    echo
    echo "Ratio of record's ns per event to run's: **$(awk -v a="$rec" -v b="$run" 'BEGIN {printf "%.2f", a / b}')** (profiler with stacks), **$(awk -v a="$rec" -v b="$nost" 'BEGIN {printf "%.2f", a / b}')** (profiler with --set stacks=false)."
    echo
    last=$(ls -t "$out"/record.*.log | head -1)
    echo "Last recording: $(jq -r '"\(.events) events, \(.lost) lost (\(.lost_ring_full) ring buffer full, \(.lost_recursion) recursion), \(.bytes_per_event | . * 10 | round / 10) bytes per event"' "$last" 2>/dev/null || cat "$last")"
} | tee "$out/report.md"
