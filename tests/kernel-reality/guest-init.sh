#!/bin/busybox sh
# /init of the throwaway guest of tests/kernel-reality/run.sh. It runs one policy on a
# storm of kernel threads and writes its findings, one tagged line each, to the second
# serial port (/dev/ttyS1), which the host reads after the guest powers off:
#   SCL-RUN {json}      one storm run (baseline, policy, after unload)
#   SCL-LS {json}       `sclc ls --format json` while the policy ran
#   SCL-MAP {json}      `sclc map NAME dump MAP --format json` after the policy's run
#   SCL-CHECK key value a check of the module's behaviour
#   SCL-REC {json}      with RECORD=1: the extra no-policy run `sclc record` recorded
#   SCL-RECORD {json}   with RECORD=1: `sclc record`'s summary
#   SCL-TRACE base64    with RECORD=1: the trace file of that run, one base64 line each
#   SCL-VERIFY ok|fail FILE TARGET [why]  with --verify-all: one policy loaded (or refused)
#                       by this kernel's verifier
#   SCL-MREC {json}     with RECORD_MODULE=1: the run `sclc record --module` recorded
#   SCL-MRECORD {json}  with RECORD_MODULE=1: its summary
#   SCL-MTRACE base64   with RECORD_MODULE=1: its trace file
#   SCL-FAIL message    the scenario could not go on
#   SCL-DONE            the scenario ended
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t bpf bpf /sys/fs/bpf
. /scl/config
OUT=/dev/ttyS1
say() { echo "$*" > $OUT; }
finish() {
	say "SCL-DONE"
	dmesg > /tmp/dmesg
	while read -r l; do say "SCL-DMESG $l"; done < /tmp/dmesg
	sync
	poweroff -f
}
fail() { say "SCL-FAIL $*"; finish; }
storm() {	# LABEL [EXTRA...]: one run, fields separated by tabs
	line="$1	$DURATION_MS"
	shift
	for x in "$@"; do line="$line	$x"; done
	printf '%s\n' "$line" > /sys/kernel/scl_storm/run || fail "storm run '$line' failed"
	say "${TAG:-SCL-RUN} $(cat /sys/kernel/scl_storm/result)"
}

# --verify-all: every example and run test, loaded into this kernel's verifier.
if [ -f /scl/verify/list ]; then
	cd /scl/verify
	while read -r f t; do
		flag="--target=$t"
		[ "$t" = default ] && flag=""
		if sclc build $flag --verify --color never -o /tmp/verify.o "$f" > /tmp/verify.log 2>&1; then
			say "SCL-VERIFY ok $f $t"
		else
			say "SCL-VERIFY fail $f $t $(grep -m3 -E 'error|refused|invalid' /tmp/verify.log | tr '\n' ' ' | cut -c1-400)"
		fi
	done < list
	rm -f /tmp/verify.o
	cd /
fi

# A module built for a layout this kernel does not have refuses to load, saying which.
if insmod /scl/scl_hooks_skewed.ko 2> /dev/null; then
	say "SCL-CHECK bad_layout_refused no"
	rmmod scl_hooks
else
	say "SCL-CHECK bad_layout_refused yes $(dmesg | grep 'scl_hooks:' | grep -m1 'mutex_waiter')"
fi
insmod /scl/scl_hooks.ko || fail "insmod scl_hooks.ko: $(dmesg | grep scl_hooks | tail -3)"
insmod /scl/scl_storm.ko kind="$KIND" ${THREADS:+threads=$THREADS} ${CS_SLEEP:+cs_sleep_us=$CS_SLEEP} ${THINK_SLEEP:+think_sleep_us=$THINK_SLEEP} || fail "insmod scl_storm.ko"
addr=$(cat /sys/kernel/scl_storm/lock)

# Thread classes, the same in every run: with --mark, half the threads are marked, in a
# checkerboard over CPUs and rounds (thread i runs on CPU i % ncpu), so that each CPU that
# has two threads has one of each and both nodes have marked threads; with --little-from,
# CPUs from there up are little.
ncpu=$(grep -c '^processor' /proc/cpuinfo)
marked=""
i=0
while read -r tid cpu node; do
	[ $(((i % ncpu + i / ncpu) % 2)) -eq 0 ] && marked="${marked:+$marked,}$tid"
	i=$((i + 1))
done < /sys/kernel/scl_storm/threads
classes=""
[ -n "$MARK_MAP" ] && classes="marked=$marked"
[ -n "$LITTLE_FROM" ] && classes="$classes${classes:+	}little_from=$LITTLE_FROM"

# The baseline: the same patched lock, governed, with no policy (FIFO hand-off).
echo "+$addr" > /sys/kernel/scl_hooks/locks || fail "cannot govern $addr: $(cat /sys/kernel/scl_hooks/error)"
storm "baseline (FIFO)" $classes

# With RECORD=1, one more run with no policy, recorded by `sclc record` on the stock
# contention tracepoints (a separate run, so the baseline above is not slowed by the
# recorder). The kernel's own event counts on the same tracepoints (a hist trigger per
# event, this lock only) check that the governed lock fires them as the stock one does,
# and that the recorder lost nothing. The trace leaves on the serial port in base64.
if [ "$RECORD" = 1 ]; then
	T=/sys/kernel/tracing
	mount -t tracefs tracefs $T 2> /dev/null
	for e in begin end; do
		echo "hist:keys=lock_addr.hex" > $T/events/lock/contention_$e/trigger \
			|| fail "cannot set a hist trigger on lock:contention_$e"
	done
	/bin/sclc record -o /tmp/trace.sclt --lock "$addr" --duration 600s --max-events 2000000 --format json \
		> /tmp/record.out 2> /tmp/record.err &
	rec=$!
	# Attached once it holds its links (tp_btf programs: two bpf_link fds).
	i=0
	while [ "$(ls -l /proc/$rec/fd 2> /dev/null | grep -c 'anon_inode:bpf_link')" -lt 2 ]; do
		kill -0 $rec 2> /dev/null || fail "sclc record exited before attaching: $(tr '\n' ' ' < /tmp/record.err)"
		i=$((i + 1))
		[ $i -lt 1200 ] || fail "sclc record did not attach in 120 s"
		usleep 100000
	done
	# The recorder yields to the storm (nice 19, every thread of it): under TCG its wake-ups
	# for the ring buffer otherwise take turns from the storm's threads on their CPUs.
	for t in /proc/$rec/task/*; do renice -n 19 -p "${t##*/}" > /dev/null; done
	TAG=SCL-REC storm "recorded (FIFO)" $classes
	kill -TERM $rec
	wait $rec || fail "sclc record: $(tr '\n' ' ' < /tmp/record.err)"
	for e in begin end; do
		n=$(grep -i "lock_addr: ${addr#0x} " $T/events/lock/contention_$e/hist | grep -o 'hitcount: *[0-9]*' | grep -o '[0-9]*$')
		say "SCL-CHECK tracepoint_$e ${n:-0}"
		echo "!hist:keys=lock_addr.hex" > $T/events/lock/contention_$e/trigger
	done
	say "SCL-RECORD $(cat /tmp/record.out /tmp/record.err | grep -m1 '^{')"
	base64 /tmp/trace.sclt | sed 's/^/SCL-TRACE /' > $OUT
fi
echo clear > /sys/kernel/scl_hooks/locks

# With RECORD_MODULE=1, one more run with no policy, recorded by `sclc record --module`: the
# module recorder governs the storm's lock (by its symbol) and records its full hook set.
# The storm's result carries the module's own counters for the run (acquisitions,
# contended), which the host compares with the trace. Afterwards nothing may be left
# active, governed or pinned. Then a recording killed with SIGKILL: its deployment stays
# (whole, active), `sclc ls` shows it, `sclc unload` removes it, and the next recording
# removes another such one by itself.
mrec_wait_active() {	# PID: until the module runs sclc-record-PID on its lock (activated first, then governed)
	i=0
	until [ "$(cat /sys/kernel/scl_hooks/policy)" = "sclc-record-$1" ] && [ -n "$(cat /sys/kernel/scl_hooks/locks)" ]; do
		kill -0 "$1" 2> /dev/null || fail "sclc record --module exited before it was active: $(tr '\n' ' ' < /tmp/mrecord.err)"
		i=$((i + 1))
		[ $i -lt 1200 ] || fail "sclc record --module was not active in 120 s"
		usleep 100000
	done
}
mrec_left() {	# what a recorder left: the active policy, governed locks, pinned recorders
	p=$(cat /sys/kernel/scl_hooks/policy)
	echo "${p:--} $(wc -l < /sys/kernel/scl_hooks/locks) $(ls /sys/fs/bpf/scl 2> /dev/null | grep -c '^sclc-record-')"
}
if [ "$RECORD_MODULE" = 1 ]; then
	/bin/sclc record --module --lock "storm_$KIND" -o /tmp/mtrace.sclt --duration 600s --format json \
		> /tmp/mrecord.out 2> /tmp/mrecord.err &
	rec=$!
	mrec_wait_active $rec
	TAG=SCL-MREC storm "module-recorded (FIFO)" $classes
	kill -TERM $rec
	wait $rec || fail "sclc record --module: $(tr '\n' ' ' < /tmp/mrecord.err)"
	say "SCL-CHECK mrec_left $(mrec_left)"
	say "SCL-MRECORD $(grep -m1 '^{' /tmp/mrecord.out)"
	base64 /tmp/mtrace.sclt | sed 's/^/SCL-MTRACE /' > $OUT
	# Killed: the deployment stays whole and active until removed.
	/bin/sclc record --module --lock "storm_$KIND" -o /tmp/killed.sclt > /dev/null 2> /tmp/mrecord.err &
	rec=$!
	mrec_wait_active $rec
	kill -KILL $rec
	wait $rec
	say "SCL-CHECK mkill_left $(mrec_left)"
	/bin/sclc ls --format json | grep -q "\"sclc-record-$rec\"" && say "SCL-CHECK mkill_ls yes" || say "SCL-CHECK mkill_ls no"
	/bin/sclc unload "sclc-record-$rec" > /tmp/unload 2>&1 || fail "sclc unload sclc-record-$rec: $(tr '\n' ' ' < /tmp/unload)"
	say "SCL-CHECK mkill_unloaded $(mrec_left)"
	/bin/sclc record --module --lock "storm_$KIND" -o /tmp/killed.sclt > /dev/null 2> /tmp/mrecord.err &
	rec=$!
	mrec_wait_active $rec
	kill -KILL $rec
	wait $rec
	/bin/sclc record --module --lock "storm_$KIND" -o /tmp/next.sclt --duration 1s > /dev/null 2> /tmp/next.err \
		|| fail "sclc record --module after a killed one: $(tr '\n' ' ' < /tmp/next.err)"
	grep -q "removed \`sclc-record-$rec\`" /tmp/next.err && say "SCL-CHECK mkill_cleaned yes $(mrec_left)" \
		|| say "SCL-CHECK mkill_cleaned no $(mrec_left) $(tr '\n' ' ' < /tmp/next.err)"
	echo clear > /sys/kernel/scl_hooks/locks
fi

# The policy, loaded as a user would, governing the storm's lock by its symbol.
/bin/sclc load --target syncord /scl/policy.scl --pin "$NAME" --lock "storm_$KIND" $SETS --color never > /tmp/load 2>&1 \
	|| fail "sclc load: $(tr '\n' ' ' < /tmp/load)"
# The application-informed part: mark threads in a map, from a shell or from a C program.
if [ -n "$MARK_APP" ]; then
	/bin/mark_critical "$NAME" $(echo "$marked" | tr ',' ' ') > /tmp/mark 2>&1 || fail "mark_critical: $(cat /tmp/mark)"
	say "SCL-CHECK marked_by app $(/bin/sclc map "$NAME" dump "$MARK_MAP" | wc -l)"
elif [ -n "$MARK_MAP" ]; then
	for tid in $(echo "$marked" | tr ',' ' '); do
		/bin/sclc map "$NAME" set "$MARK_MAP" "$tid" 1 > /dev/null || fail "sclc map set $MARK_MAP $tid"
	done
	say "SCL-CHECK marked_by sclc $(/bin/sclc map "$NAME" dump "$MARK_MAP" | wc -l)"
fi
storm "$NAME" $classes
say "SCL-LS $(/bin/sclc ls --format json)"
[ -n "$DUMP_MAP" ] && say "SCL-MAP $(/bin/sclc map "$NAME" dump "$DUMP_MAP" --format json)"
/bin/sclc unload "$NAME" > /dev/null || fail "sclc unload"
active=$(cat /sys/kernel/scl_hooks/policy)
say "SCL-CHECK unloaded_policy ${active:--}"
say "SCL-CHECK unloaded_locks $(cat /sys/kernel/scl_hooks/locks | wc -l)"
storm "after unload" $classes

# Programs the module must refuse: loaded sleepable (sim objects keep libbpf's default).
if /bin/sclc load --target sim /scl/policy.scl --pin sleepy $SETS > /dev/null 2>&1; then
	if echo "sleepy spinlock,mutex,rwsem" > /sys/kernel/scl_hooks/policy 2> /dev/null; then
		say "SCL-CHECK sleepable_refused no"
		echo - > /sys/kernel/scl_hooks/policy
	else
		say "SCL-CHECK sleepable_refused yes $(cat /sys/kernel/scl_hooks/error)"
	fi
	/bin/sclc unload sleepy > /dev/null
fi

# Removing the module leaves nothing behind.
rmmod scl_storm || fail "rmmod scl_storm"
if rmmod scl_hooks 2> /tmp/rmmod; then
	if [ -e /sys/kernel/scl_hooks ] || grep -q '^scl_hooks ' /proc/modules; then
		say "SCL-CHECK module_removed no: still there: $(ls /sys/kernel/scl_hooks 2>&1 | tr '\n' ' ') $(grep scl_hooks /proc/modules)"
	else
		say "SCL-CHECK module_removed yes"
	fi
else
	say "SCL-CHECK module_removed no: $(cat /tmp/rmmod) $(grep scl_hooks /proc/modules) policy=$(cat /sys/kernel/scl_hooks/policy) locks=$(cat /sys/kernel/scl_hooks/locks)"
fi
finish
