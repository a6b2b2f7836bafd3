#!/usr/bin/env bash
# Live profiling overhead: sclc's contention profiler against an equivalent bpftrace script.
#
# On one contention storm (target/release/scl-storm: threads allocating and freeing 64 MiB
# blocks so that the mmap lock, an rwsem, contends, and threads writing into one pipe so
# that its mutex and wait-queue spinlocks contend), it measures in ONE run, in interleaved
# rounds, the storm's throughput (operations per second) with:
#
#   baseline    nothing attached
#   sclc        sclc run examples/contention_profiler.scl --interval 1s --format json
#               (the live view, as a user runs it: it reads the maps every second)
#   sclc-quiet  the same with --interval longer than the storm: only the in-kernel cost
#   bpftrace    bpftrace bench/contention.bt (the same policy in bpftrace; prints at exit)
#   sclc-record with --record only: sclc record -o target/overhead/record.trace (issue 18:
#               recording must cost no more per event than sclc run; bench/record-cost.sh
#               measures only that, without bpftrace)
#   sclc-alt    with --alt FILE only: sclc-quiet with that policy instead (an earlier
#               version of the profiler, say: `git show REV:examples/contention_profiler.scl`)
#
# The order of the modes rotates from round to round. Each profiler is attached (and has
# settled for a second) before the storm starts and is stopped with SIGINT after it ends,
# so the final summaries are not in the measured window. It reports the median throughput
# of each mode (total, mmap operations, pipe writes) with the range over the rounds, the
# overhead against the baseline median, and the ratio of sclc's overhead to bpftrace's.
# Then, once per profiler, with kernel.bpf_stats_enabled=1 (restored afterwards): the
# kernel-measured run time per program call, and the instructions after the verifier
# (`bpftool prog show`, the ids taken from the profilers' file descriptors).
#
# Usage: bench/overhead.sh [--rounds N] [--duration SECONDS] [--threads N] [--load L] [--alt FILE] [--record] [--no-build]
#   defaults: 5 rounds, 5 s storms, 8 storm threads, --load both (mmap and pipe; `pipe`
#   alone makes ten times more contention events); about (4 x rounds + 2) x (duration + 3) s.
# Output: a Markdown report on stdout and in target/overhead/report.md; raw numbers and
# logs in target/overhead/. See docs/performance.md ("Live profiling overhead").
#
# Needs: root, a kernel >= 5.19 with BTF (lock:contention_* tracepoints), tracefs mounted
# at /sys/kernel/tracing (bpftrace reads tracepoint formats there), cargo, bpftrace and
# bpftool. It installs nothing; on Debian/Ubuntu:
#     apt-get install -y bpftrace bpftool     (bpftool: linux-tools-common on Ubuntu)
#     mount -t tracefs nodev /sys/kernel/tracing
# The machine should be otherwise idle: the numbers are throughputs.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=5 duration=5 threads=8 load=both build=1 alt= record=
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --load) load=$2; shift 2 ;;
        --alt) alt=$2; shift 2 ;;
        --record) record=1; shift ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "overhead.sh: unknown argument \`$1\` (try --help)" >&2; exit 2 ;;
    esac
done

die() { echo "overhead.sh: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (BPF programs, bpftrace): run it with sudo"
command -v bpftrace >/dev/null || die "bpftrace is not installed: apt-get install -y bpftrace"
command -v bpftool >/dev/null || die "bpftool is not installed: apt-get install -y bpftool (Ubuntu: linux-tools-common)"
[ -e /sys/kernel/btf/vmlinux ] || die "the kernel has no BTF (/sys/kernel/btf/vmlinux)"
[ -d /sys/kernel/tracing/events/lock/contention_begin ] ||
    die "no lock:contention_begin in /sys/kernel/tracing (tracefs not mounted? mount -t tracefs nodev /sys/kernel/tracing; the tracepoint needs Linux >= 5.19)"

if [ "$build" = 1 ]; then
    cargo build --release -q -p sclc -p scl-bench --bin sclc --bin scl-storm
fi
[ -x target/release/sclc ] && [ -x target/release/scl-storm ] || die "build first: cargo build --release -p sclc -p scl-bench"

out=target/overhead
mkdir -p "$out/bin"
rm -f "$out"/*.log "$out"/*.json "$out"/*.txt
# Private copies: a build during the run must not swap the binaries between rounds.
cp target/release/sclc target/release/scl-storm "$out/bin/"
sclc=$out/bin/sclc storm=$out/bin/scl-storm
results=$out/results.tsv
printf 'round\tmode\tops_per_s\tmmap_ops_per_s\tpipe_ops_per_s\tops_per_cpu_s\tevents_per_s\n' >"$results"
profiler_pid=

stats_before=$(cat /proc/sys/kernel/bpf_stats_enabled)
cleanup() {
    if [ -n "$profiler_pid" ]; then kill -INT "$profiler_pid" 2>/dev/null || true; wait "$profiler_pid" 2>/dev/null || true; fi
    echo "$stats_before" >/proc/sys/kernel/bpf_stats_enabled
}
trap cleanup EXIT

# How many open file descriptors of process $1 point to $2 (e.g. anon_inode:bpf_link).
fds() { local n=0 f; for f in /proc/"$1"/fd/*; do [ "$(readlink "$f" 2>/dev/null)" = "$2" ] && n=$((n + 1)); done; echo $n; }
# The ids of the BPF programs process $1 holds.
prog_ids() { grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -un; }

# Starts profiler $1 (sclc, sclc-quiet, bpftrace) in the background, logging to $2; returns
# once its programs are attached, plus one second to settle.
start_profiler() {
    local mode=$1 log=$2 i
    case "$mode" in
        sclc) "$sclc" run examples/contention_profiler.scl --interval 1s --format json >"$log" 2>"$log.err" & ;;
        sclc-quiet) "$sclc" run examples/contention_profiler.scl --interval 1h --format json >"$log" 2>"$log.err" & ;;
        sclc-alt) "$sclc" run "$alt" --interval 1h --format json >"$log" 2>"$log.err" & ;;
        sclc-record) "$sclc" record -o "$out/record.trace" --format json >"$log" 2>"$log.err" & ;;
        bpftrace) BPFTRACE_MAP_KEYS_MAX=16384 bpftrace bench/contention.bt >"$log" 2>"$log.err" & ;;
    esac
    profiler_pid=$!
    for i in $(seq 200); do
        kill -0 "$profiler_pid" 2>/dev/null || die "$mode exited early: $(cat "$log.err")"
        case "$mode" in
            sclc*) [ "$(fds "$profiler_pid" anon_inode:bpf_link)" -ge 2 ] && break ;;
            # bpftrace 0.17 attaches tracepoints as perf events, after printing "Attaching".
            bpftrace) grep -q Attaching "$log" "$log.err" 2>/dev/null && [ "$(fds "$profiler_pid" 'anon_inode:[perf_event]')" -ge 2 ] && break ;;
        esac
        sleep 0.1
    done
    [ "$i" -lt 200 ] || die "$mode did not attach within 20 s: $(cat "$log.err")"
    sleep 1
}

# Stops the profiler (SIGINT: it prints its summary); sets $events to the contention events
# it counted. (Not in a subshell: it waits for its child.)
stop_profiler() {
    local mode=$1 log=$2
    kill -INT "$profiler_pid"
    wait "$profiler_pid" || die "$mode failed: $(cat "$log.err")"
    profiler_pid=
    case "$mode" in
        # A recorded wait is two events (its begin and its end).
        sclc-record) events=$(grep -o '"events":[0-9]*' "$log" | awk -F: '{s += $2} END {print int(s / 2)}') ;;
        sclc*) events=$(tail -n 1 "$log" | grep -o '"contentions":[0-9]*' | awk -F: '{s += $2} END {print s + 0}') ;;
        bpftrace) events=$(awk '/^@contentions\[/ {s += $2} END {print s + 0}' "$log") ;;
    esac
}

# Runs the storm; prints "ops mmap pipe" per second and ops per CPU-second.
run_storm() {
    local line
    line=$("$storm" --threads "$threads" --duration "$duration" --load "$load")
    echo "$line" >>"$out/storm.log"
    for k in ops_per_s mmap_ops_per_s pipe_ops_per_s ops_per_cpu_s; do
        echo "$line" | tr ' ' '\n' | sed -n "s/^$k=//p"
    done | tr '\n' ' '
}

modes=(baseline sclc sclc-quiet bpftrace)
if [ -n "$alt" ]; then
    [ -f "$alt" ] || die "--alt $alt: no such file"
    modes+=(sclc-alt)
fi
[ -n "$record" ] && modes+=(sclc-record)
echo "overhead.sh: $rounds rounds x ${#modes[@]} modes, $duration s storms, $threads threads, load $load ($(nproc) CPUs, $(uname -r))" >&2
for r in $(seq "$rounds"); do
    for j in $(seq 0 $((${#modes[@]} - 1))); do
        mode=${modes[$(((j + r - 1) % ${#modes[@]}))]}
        log=$out/$mode.$r.log
        if [ "$mode" = baseline ]; then
            read -r ops mm pp pc <<<"$(run_storm)"
            events=0
        else
            start_profiler "$mode" "$log"
            read -r ops mm pp pc <<<"$(run_storm)"
            stop_profiler "$mode" "$log"
            events=$(awk -v e="$events" -v d="$duration" 'BEGIN {printf "%.0f", e / (d + 1)}')
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$mode" "$ops" "$mm" "$pp" "$pc" "$events" >>"$results"
        printf '  round %s %-10s %10s ops/s (mmap %s, pipe %s), %s ops/CPU-s\n' "$r" "$mode" "$ops" "$mm" "$pp" "$pc" >&2
    done
done

# Per-call cost: one more storm per profiler with bpf_stats on, read before detaching.
echo 1 >/proc/sys/kernel/bpf_stats_enabled
costs=$out/costs.tsv
printf 'mode\tprogram\tinsns_xlated\tjited_bytes\tcalls\tns_per_call\trun_time_ms\n' >"$costs"
for mode in sclc-quiet bpftrace ${alt:+sclc-alt} ${record:+sclc-record}; do
    log=$out/$mode.stats.log
    start_profiler "$mode" "$log"
    run_storm >/dev/null
    for id in $(prog_ids "$profiler_pid"); do
        bpftool prog show id "$id" >"$out/prog.$id.txt" 2>/dev/null || continue
        bpftool prog dump xlated id "$id" >"$out/prog.$id.xlated.txt" 2>/dev/null || true
        awk -v mode="$mode" '
            NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "name") name = $(i + 1); if ($i == "run_time_ns") t = $(i + 1); if ($i == "run_cnt") c = $(i + 1) } }
            /xlated/ { for (i = 1; i <= NF; i++) { if ($i == "xlated") x = $(i + 1); if ($i == "jited") j = $(i + 1) } }
            END { sub("B", "", x); sub("B", "", j); if (c > 0) printf "%s\t%s\t%d\t%d\t%d\t%.0f\t%.0f\n", mode, name, x / 8, j, c, t / c, t / 1e6 }
        ' "$out/prog.$id.txt" >>"$costs"
    done
    stop_profiler "$mode" "$log"
done
echo "$stats_before" >/proc/sys/kernel/bpf_stats_enabled

# The report.
median() { sort -n | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
col() { awk -F'\t' -v m="$1" -v c="$2" '$2 == m {print $c}' "$results"; }
range() { col "$1" "$2" | sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%s-%s", lo, hi}'; }
{
    echo "## overhead.sh: $(date -u +%Y-%m-%d), $(uname -r), $(nproc) CPUs, $rounds rounds of $duration s, storm: $threads threads, load $load, $(bpftrace --version)"
    echo
    echo "| mode | total ops/s: median (range) | overhead | mmap ops/s | overhead | pipe writes/s | overhead | ops per CPU-second | overhead | contention events/s |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    declare -A base
    for c in 3 4 5 6; do base[$c]=$(col baseline $c | median); done
    for mode in "${modes[@]}"; do
        row="| $mode"
        for c in 3 4 5 6; do
            m=$(col "$mode" $c | median)
            o=$(awk -v m="$m" -v b="${base[$c]}" 'BEGIN {if (b > 0) printf "%+.1f%%", (b - m) / b * 100; else print "-"}')
            [ "$mode" = baseline ] && o="-"
            row="$row | $m ($(range "$mode" $c)) | $o"
        done
        ev=$(col "$mode" 7 | median)
        echo "$row | $ev |"
    done
    echo
    for c in 3 4 5 6; do
        name=$(head -1 "$results" | cut -f$c)
        [ "$(awk -v b="${base[$c]}" 'BEGIN {print (b > 0)}')" = 1 ] || continue
        awk -v b="${base[$c]}" -v s="$(col sclc $c | median)" -v q="$(col sclc-quiet $c | median)" -v t="$(col bpftrace $c | median)" -v n="$name" 'BEGIN {
            os = (b - s) / b * 100; oq = (b - q) / b * 100; ot = (b - t) / b * 100
            if (ot > 0) printf "%s: overhead sclc / bpftrace = %.2f, sclc-quiet / bpftrace = %.2f\n", n, os / ot, oq / ot
            else printf "%s: bpftrace shows no overhead (%+.1f%%); sclc %+.1f%%, sclc-quiet %+.1f%%\n", n, ot, os, oq }'
    done
    echo
    echo "One more storm per profiler with kernel.bpf_stats_enabled=1 (counted from attach to detach, $duration s storm + about 1.5 s):"
    echo
    echo "| profiler | program | instructions (xlated) | jited bytes | calls | ns per call (bpf_stats) | total run time |"
    echo "|---|---|---|---|---|---|---|"
    tail -n +2 "$costs" | awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s ms |\n", $1, $2, $3, $4, $5, $6, $7}'
} | tee "$out/report.md"
