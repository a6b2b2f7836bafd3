#!/usr/bin/env bash
# Tries a lock policy on a real kernel without risking your machine: boots a throwaway
# qemu guest with Debian's kernel, loads kernel/'s lock-hook module and the policy, runs a
# storm of kernel threads on a module-owned lock with no policy (the baseline) and with
# the policy, and prints the metrics side by side.
#
#   tests/kernel-reality/run.sh POLICY.scl [--lock mutex|spinlock|rwsem] [--set NAME=VALUE]...
#       [--format table|json] [--mark MAP [--mark-app]] [--little-from CPU] [--dump MAP]
#       [--duration MS] [--threads N] [--cs-sleep US] [--think-sleep US] [--record TRACE]
#       [--verify-all]
#       [--record-module TRACE]
#
#   --lock         the kind of lock the storm hammers (default: mutex)
#   --set          a config value of the policy (repeatable)
#   --mark MAP     mark half the storm threads in MAP (tid -> 1), e.g. latency_critical
#   --mark-app     mark them as an application does: examples/apps/mark_critical.c, built
#                  on app_priority's generated C interface (`sclc build --emit c-header`)
#   --little-from  report CPUs from this one up as little cores (policies such as amp)
#   --dump MAP     include the policy's map MAP as it was after its run (JSON only)
#   --duration     milliseconds per storm run (default 1500)
#   --threads N    storm threads (default: 2 per CPU, 1 per CPU on the spinlock)
#   --cs-sleep US  writers sleep US microseconds in the critical section instead of spinning
#                  (mutex, rwsem): the waiters queue even when TCG runs one vCPU at a time
#   --think-sleep US  threads sleep a random 0..US microseconds between acquisitions
#   --record TRACE one more run with no policy, recorded in the guest by `sclc record` on
#                  the stock contention tracepoints; the trace file is written to TRACE and
#                  the run is reported as "recorded" (JSON), with the kernel's own counts of
#                  the tracepoints' events on the lock during it
#   --verify-all   before the storm, load every example and every run test (tests/run) for
#                  each kernel target it names into the guest's verifier (`sclc build
#                  --verify`): the host's newer kernel accepts what Debian's 6.1 may refuse
#                  (ISA v4 instructions, helpers, verifier limits); reported as "verify"
#   --record-module TRACE  one more run with no policy, recorded by `sclc record --module`
#                  (the lock's full hook set in the module); its trace is written to TRACE,
#                  the run reported as "module_recorded" (JSON) with what the recorder left
#                  behind, and what a recording killed with SIGKILL leaves and how it goes
#
# Needs root, qemu-system-x86, busybox-static, cpio and Debian's linux-headers-amd64 (its
# kernel image is fetched and cached by version under $SCL_GUEST_CACHE, default
# /var/cache/sclc-guest). $SCLC names the sclc binary (default: target/release/sclc, built
# if missing). The guest runs under TCG: its behaviour is faithful, its timing is not, so
# compare decisions and ratios, never nanoseconds.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

usage() { sed -n '2,42p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "run.sh: error: $*" >&2; exit 2; }

policy="" kind=mutex format=table mark="" mark_app="" little="" dump="" duration=1500 threads="" cs_sleep="" think_sleep="" record="" verify_all="" record_module="" sets=()
while [ $# -gt 0 ]; do
	case "$1" in
	--lock) kind=${2:?}; shift 2 ;;
	--set) sets+=("--set" "${2:?}"); shift 2 ;;
	--format) format=${2:?}; shift 2 ;;
	--mark) mark=${2:?}; shift 2 ;;
	--mark-app) mark_app=1; shift ;;
	--little-from) little=${2:?}; shift 2 ;;
	--dump) dump=${2:?}; shift 2 ;;
	--duration) duration=${2:?}; shift 2 ;;
	--record) record=${2:?}; shift 2 ;;
	--verify-all) verify_all=1; shift ;;
	--record-module) record_module=${2:?}; shift 2 ;;
	--threads) threads=${2:?}; shift 2 ;;
	--cs-sleep) cs_sleep=${2:?}; shift 2 ;;
	--think-sleep) think_sleep=${2:?}; shift 2 ;;
	-h|--help) usage ;;
	-*) echo "run.sh: unknown option $1" >&2; usage ;;
	*) [ -z "$policy" ] || usage; policy=$1; shift ;;
	esac
done
[ -n "$policy" ] || usage
[ -z "$mark_app" ] || [ -n "$mark" ] || die "--mark-app marks the threads of --mark MAP: give both"
[ -f "$policy" ] || die "no policy file $policy"
case "$kind" in mutex|spinlock|rwsem) ;; *) die "--lock is mutex, spinlock or rwsem, not $kind" ;; esac
case "$format" in table|json) ;; *) die "--format is table or json" ;; esac
case "$duration" in ''|*[!0-9]*) die "--duration is milliseconds" ;; esac
case "$threads" in *[!0-9]*) die "--threads is a number" ;; esac
case "$cs_sleep$think_sleep" in *[!0-9]*) die "--cs-sleep and --think-sleep are microseconds" ;; esac
[ -z "$cs_sleep" ] || [ "$kind" != spinlock ] || die "--cs-sleep: nothing sleeps under a spinlock"
[ "$(id -u)" = 0 ] || die "run as root (the guest's kernel image is cached under /var/cache)"
for tool in qemu-system-x86_64 cpio gzip busybox make; do
	command -v "$tool" > /dev/null || die "$tool is missing: apt-get install -y qemu-system-x86 busybox-static cpio make"
done
name=$(basename "$policy" .scl | tr -c 'A-Za-z0-9_\n-' '_')

# The kernel: the version linux-image-amd64 stands for, its image cached by version.
kver=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 2> /dev/null | grep -o 'linux-headers-[0-9][^ ,]*' | head -1 | sed 's/^linux-headers-//')
[ -n "$kver" ] || die "linux-headers-amd64 is not installed: apt-get install -y linux-headers-amd64"
kdir=/usr/src/linux-headers-$kver
[ -d "$kdir" ] || die "$kdir is missing: apt-get install -y linux-headers-$kver"
cache=${SCL_GUEST_CACHE:-/var/cache/sclc-guest}/$kver
if [ ! -s "$cache/vmlinux" ]; then
	mkdir -p "$cache"
	tmp=$(mktemp -d)
	if [ -f "/boot/vmlinuz-$kver" ]; then
		cp "/boot/vmlinuz-$kver" "$tmp/vmlinuz"
	else
		(cd "$tmp" && apt-get download "linux-image-$kver" > /dev/null) || die "cannot fetch linux-image-$kver (apt-get update first?)"
		dpkg-deb --fsys-tarfile "$tmp"/linux-image-*.deb | tar -x -C "$tmp" "./boot/vmlinuz-$kver"
		mv "$tmp/boot/vmlinuz-$kver" "$tmp/vmlinuz"
	fi
	# The uncompressed kernel boots through its PVH entry, twice as fast as the bzImage.
	off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$tmp/vmlinuz" | head -1 | cut -d: -f1)
	[ -n "$off" ] || die "no xz payload in the kernel image of $kver"
	tail -c +$((off + 1)) "$tmp/vmlinuz" | xz -dc > "$tmp/vmlinux" 2> /dev/null || true
	[ -s "$tmp/vmlinux" ] || die "cannot decompress the kernel image of $kver"
	mv "$tmp/vmlinux" "$cache/vmlinux"
	rm -rf "$tmp"
fi

sclc=${SCLC:-$repo/target/release/sclc}
if [ ! -x "$sclc" ]; then
	(cd "$repo" && cargo build --release -p sclc >&2) || die "cannot build sclc"
fi

work=$(mktemp -d /tmp/scl-guest.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The modules, built out of tree against the guest kernel's headers.
cp -r "$repo/kernel" "$work/kernel"
cp -r "$here/storm" "$work/storm"
make -s -C "$work/kernel" KDIR="$kdir" > "$work/build.log" 2>&1 || { cat "$work/build.log" >&2; die "kernel/ does not build against $kver"; }
make -s -C "$work/storm" KDIR="$kdir" SCL_KERNEL_DIR="$work/kernel" > "$work/build.log" 2>&1 || { cat "$work/build.log" >&2; die "the storm module does not build"; }
# The same module built for a layout this kernel does not have: it must refuse to load.
cp -r "$repo/kernel" "$work/skewed"
make -s -C "$work/skewed" KDIR="$kdir" KCFLAGS=-DSCL_LAYOUT_SKEW=8 > "$work/build.log" 2>&1 || { cat "$work/build.log" >&2; die "the skewed module does not build"; }

# The initramfs: busybox, sclc with its libraries, the modules, the policy, the scenario.
root=$work/root
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,scl}
cp "$(command -v busybox)" "$root/bin/busybox"
objcopy --strip-debug "$sclc" "$root/bin/sclc" 2> /dev/null || cp "$sclc" "$root/bin/sclc"
for lib in $(ldd "$sclc" | grep -o '/[^ ]*'); do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
if [ -n "$mark_app" ]; then
	# The application of examples/apps/, built on the policy's generated C interface.
	mkdir -p "$work/app"
	"$sclc" build "$policy" --emit c-header -o "$work/app/app_priority.h" || die "cannot generate the C interface of $policy"
	cp "$repo/examples/apps/mark_critical.c" "$work/app/"
	cc -O2 -Wall -o "$work/app/mark_critical" "$work/app/mark_critical.c" -lbpf > "$work/build.log" 2>&1 \
		|| { cat "$work/build.log" >&2; die "examples/apps/mark_critical.c does not build on $policy's interface (it is app_priority's)"; }
	cp "$work/app/mark_critical" "$root/bin/"
	for lib in $(ldd "$work/app/mark_critical" | grep -o '/[^ ]*'); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
fi
cp "$here/guest-init.sh" "$root/init"
cp "$work/kernel/scl_hooks.ko" "$work/storm/scl_storm.ko" "$root/scl/"
cp "$work/skewed/scl_hooks.ko" "$root/scl/scl_hooks_skewed.ko"
cp "$policy" "$root/scl/policy.scl"
# --verify-all: the policies (their imports are the stdlib sclc carries), and the list of what to load,
# one `FILE TARGET` line each: the targets a file's header names (`// targets:` for
# examples, `// target:` for run tests, whose default is syncord), the kernel ones only
# (sim runs in user space); an example without a header gets sclc's default target.
if [ -n "$verify_all" ]; then
	mkdir -p "$root/scl/verify/examples" "$root/scl/verify/tests/run"
	cp "$repo"/examples/*.scl "$root/scl/verify/examples/"
	cp "$repo"/tests/run/*.scl "$root/scl/verify/tests/run/"
	for f in "$repo"/examples/*.scl "$repo"/tests/run/*.scl; do
		rel=${f#"$repo"/}
		targets=$(grep -m1 -E '^// targets?:' "$f" | sed -E 's|^// targets?:||' | tr ',' ' ' || true)
		if [ -z "$targets" ]; then
			case "$rel" in tests/run/*) targets=syncord ;; *) targets=default ;; esac
		fi
		for t in $targets; do
			[ "$t" = sim ] || echo "$rel $t"
		done
	done > "$root/scl/verify/list"
fi
{
	printf 'NAME=%q\nKIND=%q\nDURATION_MS=%q\nMARK_MAP=%q\nMARK_APP=%q\nLITTLE_FROM=%q\nDUMP_MAP=%q\n' \
		"$name" "$kind" "$duration" "$mark" "$mark_app" "$little" "$dump"
	printf 'SETS=%q\n' "${sets[*]:-}"
	printf 'THREADS=%q\n' "$threads"
	printf 'CS_SLEEP=%q\nTHINK_SLEEP=%q\n' "$cs_sleep" "$think_sleep"
	printf 'RECORD=%q\n' "$([ -n "$record" ] && echo 1)"
	printf 'RECORD_MODULE=%q\n' "$([ -n "$record_module" ] && echo 1)"
} > "$root/scl/config"
(cd "$root" && find . | cpio -o -H newc 2> /dev/null | gzip -1) > "$work/initrd.gz"

# 4 vCPUs on 2 sockets, one NUMA node each. Without the hypervisor CPUID bit the kernel
# keeps the queued spinlock (with it, virt_spin_lock turns contended spinlocks into
# test-and-set) and the MCS queue forms.
# no_timer_check: under TCG on a loaded host the kernel's check that the IO-APIC timer
# ticks can time out and panic at boot ("IO-APIC + timer doesn't work"); the tick works.
timeout ${SCL_GUEST_TIMEOUT:-300} qemu-system-x86_64 \
	-accel tcg,thread=multi -cpu max,-hypervisor -m 1G \
	-smp 4,sockets=2,cores=2 \
	-object memory-backend-ram,id=m0,size=512M -numa node,nodeid=0,cpus=0-1,memdev=m0 \
	-object memory-backend-ram,id=m1,size=512M -numa node,nodeid=1,cpus=2-3,memdev=m1 \
	-kernel "$cache/vmlinux" -initrd "$work/initrd.gz" \
	-append "console=ttyS0 loglevel=4 panic=-1 nokaslr no_timer_check" \
	-display none -monitor none -nic none -no-reboot \
	-serial "file:$work/console.log" -serial "file:$work/out.log" \
	> "$work/qemu.log" 2>&1 || true
# The serial line turns each newline into CR LF.
touch "$work/out.log"
out=$work/out.txt
tr -d '\r' < "$work/out.log" > "$out"

grep -q '^SCL-DONE' "$out" || {
	tail -40 "$work/console.log" >&2
	die "the guest did not finish the scenario$(grep '^SCL-FAIL' "$out" | sed 's/^SCL-FAIL/:/' | head -1)"
}
if grep -q '^SCL-FAIL' "$out"; then
	grep '^SCL-FAIL' "$out" >&2
	die "the scenario failed in the guest"
fi
# Any warning, bug or splat of the guest kernel fails the run.
splats=$(grep -hE 'WARNING:|BUG:|Oops|general protection|lockdep|possible recursive locking|INFO: task .* blocked|soft lockup|Call Trace' \
	"$work/console.log" <(grep '^SCL-DMESG' "$out") || true)
clean=true
[ -z "$splats" ] || clean=false

runs=$(grep '^SCL-RUN ' "$out" | sed 's/^SCL-RUN //' || true)
baseline=$(sed -n 1p <<< "$runs")
with_policy=$(sed -n 2p <<< "$runs")
after=$(sed -n 3p <<< "$runs")
# A trace a recording in the guest sent as base64 lines tagged TAG, written to DEST
# (OPTION names the run.sh option in errors).
take_trace() {	# TAG DEST OPTION
	{ grep "^$1 " "$out" || true; } | sed "s/^$1 //" | base64 -d > "$work/$1.sclt" \
		|| die "$3: the trace did not come out of the guest whole (bad base64)"
	[ -s "$work/$1.sclt" ] || die "$3: the guest sent an empty trace"
	cp "$work/$1.sclt" "$2" || die "$3: cannot write $2"
}
recorded=$({ grep '^SCL-REC ' "$out" || true; } | sed 's/^SCL-REC //' | head -1)
if [ -n "$record" ]; then
	[ -n "$recorded" ] || die "--record: the guest reported no recorded run"
	take_trace SCL-TRACE "$record" --record
fi
module_recorded=$({ grep '^SCL-MREC ' "$out" || true; } | sed 's/^SCL-MREC //' | head -1)
if [ -n "$record_module" ]; then
	[ -n "$module_recorded" ] || die "--record-module: the guest reported no recorded run"
	take_trace SCL-MTRACE "$record_module" --record-module
fi
ls_json=$({ grep '^SCL-LS ' "$out" || true; } | sed 's/^SCL-LS //' | head -1)
map_json=$({ grep '^SCL-MAP ' "$out" || true; } | sed 's/^SCL-MAP //' | head -1)
check() { { grep "^SCL-CHECK $1 " "$out" || true; } | head -1 | cut -d' ' -f3; }
check_line() { { grep "^SCL-CHECK $1 " "$out" || true; } | head -1 | cut -d' ' -f4-; }
json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr -d '\n\r\t')"; }

if [ "$format" = json ]; then
	printf '{"policy":%s,"file":%s,"lock":"%s","kernel":"%s","guest":{"cpus":4,"nodes":2,"accel":"tcg"},' \
		"$(json_str "$name")" "$(json_str "$policy")" "$kind" "$kver"
	if [ -n "$record" ]; then
		printf '"recorded":%s,"record":{"trace":%s,"trace_bytes":%s,"tracepoint_begin":%s,"tracepoint_end":%s,"summary":%s},' \
			"$recorded" "$(json_str "$record")" "$(stat -c %s "$record")" "$(check tracepoint_begin | grep . || echo null)" "$(check tracepoint_end | grep . || echo null)" \
			"$({ grep '^SCL-RECORD {' "$out" || true; } | head -1 | sed 's/^SCL-RECORD //' | grep . || echo null)"
	fi
	if [ -n "$verify_all" ]; then
		failed=$({ grep '^SCL-VERIFY fail ' "$out" || true; } | sed 's/^SCL-VERIFY fail //' | while read -r l; do json_str "$l"; echo; done | paste -sd, -)
		printf '"verify":{"listed":%s,"ok":%s,"failed":[%s]},' "$(wc -l < "$root/scl/verify/list")" \
			"$({ grep -c '^SCL-VERIFY ok ' "$out" || true; })" "$failed"
	fi
	if [ -n "$record_module" ]; then
		printf '"module_recorded":%s,"module_record":{"trace":%s,"summary":%s,"left":%s,"killed_left":%s,"killed_in_ls":%s,"killed_unloaded":%s,"killed_cleaned":%s},' \
			"$module_recorded" "$(json_str "$record_module")" \
			"$({ grep '^SCL-MRECORD {' "$out" || true; } | head -1 | sed 's/^SCL-MRECORD //' | grep . || echo null)" \
			"$(json_str "$(check mrec_left) $(check_line mrec_left)")" \
			"$(json_str "$(check mkill_left) $(check_line mkill_left)")" \
			"$([ "$(check mkill_ls)" = yes ] && echo true || echo false)" \
			"$(json_str "$(check mkill_unloaded) $(check_line mkill_unloaded)")" \
			"$(json_str "$(check mkill_cleaned) $(check_line mkill_cleaned)")"
	fi
	printf '"runs":[%s,%s],"after_unload":%s,"sclc_ls":%s,"map":%s,' "$with_policy" "$baseline" "${after:-null}" "${ls_json:-null}" "${map_json:-null}"
	printf '"checks":{"guest_log_clean":%s,"splats":%s,"unloaded_policy":%s,"unloaded_locks":%s,"sleepable_refused":%s,"sleepable_error":%s,"module_removed":%s,"module_removed_detail":%s,"marked_by":%s,"marked_entries":%s,"bad_layout_refused":%s,"bad_layout_error":%s}}\n' \
		"$clean" "$(json_str "$splats")" "$(json_str "$(check unloaded_policy)")" "${check_unloaded:-$(check unloaded_locks)}" \
		"$([ "$(check sleepable_refused)" = yes ] && echo true || echo false)" "$(json_str "$(check_line sleepable_refused)")" \
		"$([ "$(check module_removed)" = yes ] && echo true || echo false)" "$(json_str "$(check_line module_removed)")" \
		"$(json_str "$(check marked_by)")" "$(check_line marked_by | grep -o '^[0-9]*' || echo null)" \
		"$([ "$(check bad_layout_refused)" = yes ] && echo true || echo false)" "$(json_str "$(check_line bad_layout_refused)")"
else
	num() { { grep -o "\"$2\":[0-9.a-z]*" <<< "$1" || true; } | head -1 | cut -d: -f2; }
	obj() { { grep -o "\"$2\":{[^}]*}" <<< "$1" || true; } | head -1; }
	pct() { { grep -o "\"$2\":{[^}]*}" <<< "$1" || true; } | head -1 | { grep -o "\"$3\":[0-9]*" || true; } | cut -d: -f2; }
	row() {
		printf '%-28s %16s %16s %16s\n' "$1" "$2" "$3" "$4"
	}
	echo "policy $name on a $kind, Linux $kver in a 4-CPU, 2-node guest (TCG: compare ratios, not times)"
	row "" "$name" "baseline (FIFO)" "after unload"
	for k in acquisitions handoffs local_handoff_ratio exclusion_violations; do
		row "$k" "$(num "$with_policy" $k)" "$(num "$baseline" $k)" "$(num "$after" $k)"
	done
	for k in rounds mixed to_shuffler_node to_shuffler_node_ratio; do
		row "reorder $k" "$(num "$with_policy" $k)" "$(num "$baseline" $k)" "$(num "$after" $k)"
	done
	for k in admitted bypassed refused released disagreed; do
		row "bypass $k" "$(num "$(obj "$with_policy" bypass)" $k)" "$(num "$(obj "$baseline" bypass)" $k)" "$(num "$(obj "$after" bypass)" $k)"
	done
	for h in to_acquire contended acquired to_release released should_reorder skip_reorder bypass_acquire bypass_release; do
		n=$(num "$(obj "$with_policy" hook_calls)" "$h")
		[ "${n:-0}" = 0 ] || row "calls of $h" "$n" "-" "-"
	done
	for c in all marked unmarked big little node0 node1; do
		p=$(pct "$with_policy" "$c" p50)
		[ -n "$p" ] || continue
		row "wait p50/p99 ns: $c" "$p/$(pct "$with_policy" "$c" p99)" "$(pct "$baseline" "$c" p50)/$(pct "$baseline" "$c" p99)" "$(pct "$after" "$c" p50)/$(pct "$after" "$c" p99)"
	done
	if [ -n "$record" ]; then
		echo "recorded run (no policy, sclc record attached): $(num "$recorded" acquisitions) acquisitions, $(num "$(obj "$recorded" module)" contended) contended; the kernel counted $(check tracepoint_begin) contention_begin and $(check tracepoint_end) contention_end events on the lock; trace: $record ($(stat -c %s "$record") bytes)"
	fi
	echo "guest log clean: $clean; unload restored the kernel's code: policy $(check unloaded_policy), $(check unloaded_locks) locks governed; sleepable programs refused: $(check sleepable_refused); a module built for another layout refused: $(check bad_layout_refused); module removed: $(check module_removed)"
	[ -z "$splats" ] || printf 'guest kernel splats:\n%s\n' "$splats"
fi
$clean
