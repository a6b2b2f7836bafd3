#!/usr/bin/env bash
# sclc run against perf lock contention and bpftrace on one contention storm.
#
# The storm is target/release/scl-storm (mmap rwsem, pipe mutex and spinlocks; see
# crates/scl-bench/src/storm.rs). In ONE run, in interleaved rounds whose order rotates,
# it measures the storm with:
#
#   baseline  nothing attached
#   sclc      sclc run examples/contention_profiler.scl --interval 1h --format json
#   perf      perf lock record -a (Debian's perf has no BPF skeletons, so no
#             `perf lock contention -b`: the record mode writes every event to a file and
#             `perf lock contention -i FILE` reports afterwards; the report step is timed
#             and measured separately)
#   bpftrace  bpftrace bench/contention.bt (the profiler written in bpftrace)
#
# and reports per tool, as medians over the rounds with ratios to sclc from the same run:
#   - storm throughput and overhead against the baseline (ops per CPU-second of the storm,
#     which counts the time the tracepoint programs run in its threads);
#   - overhead per event: the storm's extra CPU time per second divided by the events the
#     tool counted per second;
#   - attach time: from starting the tool to its programs or perf events being in place;
#   - memory: the tool's peak resident set (VmHWM) when it stops (perf: the recorder, and
#     the report step's maximum RSS from /usr/bin/time);
#   - events seen: in one more storm with all three attached at once (same storm, same
#     window up to the tools' start and stop order), the contentions each counted;
#   - per-call cost of the BPF programs (kernel.bpf_stats_enabled=1, restored afterwards),
#     one more storm each: sclc, sclc with a filter that keeps every event but pairs the
#     ends (`--cpu 0-LAST`), sclc with a filter that drops nearly every event (`--pid 1`),
#     and bpftrace (perf's record mode runs no BPF program); with --before REV, also the
#     example profiler as it was at git revision REV and as it is now, both attached to
#     the same storm, so both see the same events.
#
# Usage: bench/compare.sh [--rounds N] [--duration SECONDS] [--threads N] [--load both|pipe|mmap] [--before REV] [--no-build]
#   defaults: 3 rounds, 4 s storms, 4 threads, --load both.
# Output: Markdown on stdout and in target/compare/report.md; raw numbers in
# target/compare/results.tsv. See docs/performance.md ("sclc run, perf lock and bpftrace").
# Needs: root, Linux >= 5.19 with BTF, tracefs at /sys/kernel/tracing, cargo, perf
# (Debian: linux-perf), bpftrace, GNU time (/usr/bin/time). The machine should be quiet.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3 duration=4 threads=4 load=both build=1 before=
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --load) load=$2; shift 2 ;;
        --before) before=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown argument \`$1\` (try --help)" >&2; exit 2 ;;
    esac
done

die() { echo "compare.sh: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root"
for t in perf bpftrace /usr/bin/time; do command -v "$t" >/dev/null || die "$t is not installed (Debian: apt-get install -y linux-perf bpftrace time)"; done
[ -d /sys/kernel/tracing/events/lock/contention_begin ] || die "no lock:contention_begin in /sys/kernel/tracing"

if [ "$build" = 1 ]; then
    cargo build --release -q -p sclc -p scl-bench --bin sclc --bin scl-storm
fi
out=target/compare
mkdir -p "$out/bin"
rm -f "$out"/*.log "$out"/*.err "$out"/*.data "$out"/*.tsv "$out"/*.report
cp target/release/sclc target/release/scl-storm "$out/bin/"
sclc=$out/bin/sclc storm=$out/bin/scl-storm
ncpu=$(nproc)
results=$out/results.tsv
printf 'round\tmode\tops_per_s\tops_per_cpu_s\tevents\twindow_s\tattach_ms\tpeak_kib\treport_ms\treport_kib\n' >"$results"
pids=() signalled=0
stats_before=$(cat /proc/sys/kernel/bpf_stats_enabled)
signalled=0
declare -A peak
cleanup() {
    for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    echo "$stats_before" >/proc/sys/kernel/bpf_stats_enabled
}
trap cleanup EXIT

fds() { local n=0 f; for f in /proc/"$1"/fd/*; do [ "$(readlink "$f" 2>/dev/null)" = "$2" ] && n=$((n + 1)); done; echo $n; }
now_ms() { date +%s%3N; }

# Starts tool $1 logging to $2; sets $pid and $attach_ms (start to attached).
start_tool() {
    local mode=$1 log=$2 t0 i
    t0=$(now_ms)
    case "$mode" in
        sclc) "$sclc" run examples/contention_profiler.scl --interval 1h --format json >"$log" 2>"$log.err" & ;;
        sclc-cpus) "$sclc" run examples/contention_profiler.scl --interval 1h --format json --cpu "0-$((ncpu - 1))" >"$log" 2>"$log.err" & ;;
        sclc-pid1) "$sclc" run examples/contention_profiler.scl --interval 1h --format json --pid 1 >"$log" 2>"$log.err" & ;;
        perf) perf lock record -a -o "$log.data" >"$log" 2>"$log.err" & ;;
        bpftrace) BPFTRACE_MAP_KEYS_MAX=16384 bpftrace bench/contention.bt >"$log" 2>"$log.err" & ;;
    esac
    pid=$!
    pids+=("$pid")
    for i in $(seq 2000); do
        kill -0 "$pid" 2>/dev/null || die "$mode exited early: $(cat "$log.err")"
        case "$mode" in
            sclc*) [ "$(fds "$pid" anon_inode:bpf_link)" -ge 2 ] && break ;;
            perf) [ "$(fds "$pid" 'anon_inode:[perf_event]')" -ge $((2 * ncpu)) ] && break ;;
            bpftrace) grep -q Attaching "$log" "$log.err" 2>/dev/null && [ "$(fds "$pid" 'anon_inode:[perf_event]')" -ge 2 ] && break ;;
        esac
        sleep 0.01
    done
    attach_ms=$(($(now_ms) - t0))
}

# Stops tool $1 (pid $2, log $3): sets $events, $peak_kib, $report_ms, $report_kib.
stop_tool() {
    local mode=$1 p=$2 log=$3 t0
    peak_kib=${peak[$mode]:-$(awk '/^VmHWM:/ {print $2}' /proc/"$p"/status)}
    [ "$signalled" = 1 ] || kill -INT "$p"
    # perf record exits with the signal's status after SIGINT; its data file says whether it worked.
    wait "$p" || [ "$mode" = perf ] || die "$mode failed: $(cat "$log.err")"
    report_ms=0 report_kib=0
    case "$mode" in
        sclc*) events=$(tail -n 1 "$log" | { grep -o '"contentions":[0-9]*' || true; } | awk -F: '{s += $2} END {print s + 0}') ;;
        bpftrace) events=$(awk '/^@contentions\[/ {s += $2} END {print s + 0}' "$log") ;;
        perf)
            t0=$(now_ms)
            /usr/bin/time -f '%M' -o "$log.time" perf lock contention -i "$log.data" -E 100000000 >"$log.report" 2>&1 || die "perf lock contention -i failed: $(tail -3 "$log.report")"
            report_ms=$(($(now_ms) - t0))
            report_kib=$(tail -n 1 "$log.time")
            events=$(awk '$1 ~ /^[0-9]+$/ {s += $1} END {print s + 0}' "$log.report")
            ;;
    esac
}

run_storm() {
    local line
    line=$("$storm" --threads "$threads" --duration "$duration" --load "$load")
    echo "$line" >>"$out/storm.log"
    for k in ops_per_s ops_per_cpu_s; do echo "$line" | tr ' ' '\n' | sed -n "s/^$k=//p"; done | tr '\n' ' '
}

modes=(baseline sclc perf bpftrace)
echo "compare.sh: $rounds rounds x ${#modes[@]} modes, $duration s storms, $threads threads, load $load ($ncpu CPUs, $(uname -r))" >&2
for r in $(seq "$rounds"); do
    for j in $(seq 0 $((${#modes[@]} - 1))); do
        mode=${modes[$(((j + r - 1) % ${#modes[@]}))]}
        log=$out/$mode.$r.log
        events=0 window=0 attach_ms=0 peak_kib=0 report_ms=0 report_kib=0
        if [ "$mode" = baseline ]; then
            read -r ops pc <<<"$(run_storm)"
        else
            start_tool "$mode" "$log"
            sleep 1
            w0=$(now_ms)
            read -r ops pc <<<"$(run_storm)"
            window=$(awk -v a="$w0" -v b="$(now_ms)" 'BEGIN {printf "%.3f", (b - a + 1000) / 1000}')
            stop_tool "$mode" "$pid" "$log"
            rm -f "$log.data"
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$mode" "$ops" "$pc" "$events" "$window" "$attach_ms" "$peak_kib" "$report_ms" "$report_kib" >>"$results"
        printf '  round %s %-9s %10s ops/s, %s ops/CPU-s, %s events, attach %s ms, peak %s KiB\n' "$r" "$mode" "$ops" "$pc" "$events" "$attach_ms" "$peak_kib" >&2
    done
done

# Events seen: all three attached to one storm. sclc attaches last, so its window is the
# shortest; all three are stopped by one kill.
together=$out/together.tsv
printf 'tool\tevents\n' >"$together"
declare -A tpid
for mode in bpftrace perf sclc; do start_tool "$mode" "$out/together.$mode.log"; tpid[$mode]=$pid; done
sleep 1
run_storm >/dev/null
for mode in bpftrace perf sclc; do peak[$mode]=$(awk '/^VmHWM:/ {print $2}' /proc/"${tpid[$mode]}"/status); done
kill -INT "${tpid[sclc]}" "${tpid[perf]}" "${tpid[bpftrace]}"
signalled=1
for mode in sclc perf bpftrace; do
    stop_tool "$mode" "${tpid[$mode]}" "$out/together.$mode.log"
    printf '%s\t%s\n' "$mode" "$events" >>"$together"
done
rm -f "$out"/together.perf.log.data
pids=() signalled=0

# Per-call cost, with bpf_stats on.
echo 1 >/proc/sys/kernel/bpf_stats_enabled
costs=$out/costs.tsv
printf 'tool\tprogram\tinsns_xlated\tcalls\tns_per_call\n' >"$costs"
for mode in sclc sclc-cpus sclc-pid1 bpftrace; do
    log=$out/$mode.stats.log
    start_tool "$mode" "$log"
    run_storm >/dev/null
    for id in $(grep -h '^prog_id:' /proc/"$pid"/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -un); do
        bpftool prog show id "$id" 2>/dev/null | awk -v mode="$mode" '
            NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "name") name = $(i + 1); if ($i == "run_time_ns") t = $(i + 1); if ($i == "run_cnt") c = $(i + 1) } }
            /xlated/ { for (i = 1; i <= NF; i++) if ($i == "xlated") x = $(i + 1) }
            END { sub("B", "", x); if (c > 0) printf "%s\t%s\t%d\t%d\t%.0f\n", mode, name, x / 8, c, t / c }' >>"$costs"
    done
    stop_tool "$mode" "$pid" "$log"
done
if [ -n "$before" ]; then
    git show "$before:examples/contention_profiler.scl" >"$out/profiler-before.scl" || die "no examples/contention_profiler.scl at $before"
    "$sclc" run "$out/profiler-before.scl" --interval 1h --format json >"$out/before.log" 2>"$out/before.log.err" & p_before=$!
    "$sclc" run examples/contention_profiler.scl --interval 1h --format json >"$out/now.log" 2>"$out/now.log.err" & p_now=$!
    pids+=("$p_before" "$p_now")
    for i in $(seq 2000); do [ "$(fds "$p_before" anon_inode:bpf_link)" -ge 2 ] && [ "$(fds "$p_now" anon_inode:bpf_link)" -ge 2 ] && break; sleep 0.01; done
    run_storm >/dev/null
    for pair in "before-$before:$p_before" "now:$p_now"; do
        for id in $(grep -h '^prog_id:' /proc/"${pair##*:}"/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -un); do
            bpftool prog show id "$id" 2>/dev/null | awk -v mode="${pair%:*}" '
                NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "name") name = $(i + 1); if ($i == "run_time_ns") t = $(i + 1); if ($i == "run_cnt") c = $(i + 1) } }
                /xlated/ { for (i = 1; i <= NF; i++) if ($i == "xlated") x = $(i + 1) }
                END { sub("B", "", x); if (c > 0) printf "%s\t%s\t%d\t%d\t%.0f\n", mode, name, x / 8, c, t / c }' >>"$out/before.tsv"
        done
    done
    kill -INT "$p_before" "$p_now"; wait "$p_before" "$p_now" || true
fi
echo "$stats_before" >/proc/sys/kernel/bpf_stats_enabled
pids=() signalled=0

median() { sort -n | awk '{v[NR] = $1} END {if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
col() { awk -F'\t' -v m="$1" -v c="$2" '$2 == m {print $c}' "$results"; }
{
    echo "## compare.sh: $(date -u +%Y-%m-%d), $(uname -r), $ncpu CPUs, $rounds rounds of $duration s, storm: $threads threads, load $load; $(perf version), $(bpftrace --version)"
    echo
    echo "| tool | storm ops per CPU-s (median) | overhead | events/s | ns per event | attach | peak memory | report step |"
    echo "|---|---|---|---|---|---|---|---|"
    b=$(col baseline 4 | median) bo=$(col baseline 3 | median)
    declare -A nspe att mem
    for mode in "${modes[@]}"; do
        p=$(col "$mode" 4 | median) o=$(col "$mode" 3 | median)
        ev=$(awk -F'\t' -v m="$mode" '$2 == m && $6 > 0 {print $5 / $6}' "$results" | median)
        nspe[$mode]=$(awk -v b="$b" -v p="$p" -v o="$o" -v e="$ev" 'BEGIN {if (e > 0 && p > 0) printf "%.0f", o * (1 / p - 1 / b) / e * 1e9; else print 0}')
        att[$mode]=$(col "$mode" 7 | median) mem[$mode]=$(col "$mode" 8 | median)
        if [ "$mode" = baseline ]; then
            echo "| baseline | $b | - | - | - | - | - | - |"
            continue
        fi
        rep="-"
        [ "$mode" = perf ] && rep="$(col perf 9 | median) ms, $(awk -v k="$(col perf 10 | median)" 'BEGIN {printf "%.1f", k / 1024}') MiB"
        printf '| %s | %s | %s | %.0f | %s | %s ms | %.1f MiB | %s |\n' "$mode" "$p" \
            "$(awk -v b="$b" -v p="$p" 'BEGIN {printf "%+.1f%%", (b - p) / b * 100}')" "$ev" "${nspe[$mode]}" "${att[$mode]}" \
            "$(awk -v k="${mem[$mode]}" 'BEGIN {print k / 1024}')" "$rep"
    done
    echo
    for mode in perf bpftrace; do
        awk -v t="$mode" -v s="${nspe[sclc]}" -v x="${nspe[$mode]}" -v sa="${att[sclc]}" -v xa="${att[$mode]}" -v sm="${mem[sclc]}" -v xm="${mem[$mode]}" 'BEGIN {
            printf "%s / sclc: ns per event %s, attach time %s, peak memory %s\n", t,
                (s > 0 ? sprintf("%.2f", x / s) : "-"), (sa > 0 ? sprintf("%.2f", xa / sa) : "-"), (sm > 0 ? sprintf("%.2f", xm / sm) : "-") }'
    done
    echo
    echo "Events seen, all three attached to one more storm at once:"
    echo
    echo "| tool | contentions counted | / sclc |"
    echo "|---|---|---|"
    s=$(awk -F'\t' '$1 == "sclc" {print $2}' "$together")
    tail -n +2 "$together" | awk -F'\t' -v s="$s" '{printf "| %s | %s | %s |\n", $1, $2, (s > 0 ? sprintf("%.4f", $2 / s) : "-")}'
    echo
    echo "Per-call cost of the programs (bpf_stats, one more $duration s storm each; sclc-cpus: --cpu 0-$((ncpu - 1)), every event kept, ends paired; sclc-pid1: --pid 1, nearly every event dropped by the guard):"
    echo
    echo "| tool | program | instructions (xlated) | calls | ns per call | / sclc |"
    echo "|---|---|---|---|---|---|"
    tail -n +2 "$costs" | awk -F'\t' '
        { row[NR] = $0; if ($1 == "sclc") base[$2] = $5 }
        END { for (i = 1; i <= NR; i++) { split(row[i], f, "\t"); k = f[2]; if (k ~ /^contention_beg/) k = "contended"; r = (k in base && base[k] > 0) ? sprintf("%.2f", f[5] / base[k]) : "-"; printf "| %s | %s | %s | %s | %s | %s |\n", f[1], f[2], f[3], f[4], f[5], r } }'
    if [ -n "$before" ]; then
        echo
        echo "The example profiler at $before and now, both attached to one more storm (the same events; bpf_stats):"
        echo
        echo "| version | program | instructions (xlated) | calls | ns per call | now / before |"
        echo "|---|---|---|---|---|---|"
        awk -F'\t' '{ row[NR] = $0; if ($1 ~ /^before/) b[$2] = $5 }
            END { for (i = 1; i <= NR; i++) { split(row[i], f, "\t"); r = (f[1] == "now" && b[f[2]] > 0) ? sprintf("%.3f", f[5] / b[f[2]]) : "-"; printf "| %s | %s | %s | %s | %s | %s |\n", f[1], f[2], f[3], f[4], f[5], r } }' "$out/before.tsv"
    fi
} | tee "$out/report.md"
