/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * scl_hooks: runs the lock policies that `sclc load --target syncord` pins, inside the
 * kernel's own mutex, queued-spinlock and rwsem code, for an opt-in set of locks.
 *
 * The contract with the policies is docs/abi.md of the sclc repository: the 128-byte
 * context below and the pin layout /sys/fs/bpf/scl/NAME/prog_HOOK.
 */
#ifndef SCL_HOOKS_H
#define SCL_HOOKS_H

#include <linux/types.h>
#include <linux/atomic.h>
#include <linux/build_bug.h>

/* The hooks of the catalogue, in the order of docs/hooks.md. */
enum scl_hook {
	SCL_TO_ACQUIRE,
	SCL_CONTENDED,
	SCL_ACQUIRED,
	SCL_TO_RELEASE,
	SCL_RELEASED,
	SCL_ENABLE_FASTPATH,
	SCL_SHOULD_REORDER,
	SCL_SKIP_REORDER,
	SCL_BYPASS_ACQUIRE,
	SCL_BYPASS_RELEASE,
	SCL_NR_HOOKS,
};

/* docs/abi.md §1: `kind`. */
enum scl_kind {
	SCL_SPINLOCK = 0,
	SCL_MUTEX = 1,
	SCL_RWSEM = 2,
	SCL_NR_KINDS,
};

/* docs/abi.md §1: `flags`. */
#define SCL_F_READER	(1U << 0)
#define SCL_F_WRITER	(1U << 1)
#define SCL_F_TRYLOCK	(1U << 2)

struct scl_waiter {
	u32 cpu, numa_node, tid, prio;
	u64 wait_start, data;
};

struct scl_ctx {
	u64 lock;
	u32 kind, flags, cpu, numa_node, tid, tgid;
	struct scl_waiter shuffler, candidate;
	u8 reserved[32];
};
static_assert(sizeof(struct scl_waiter) == 32);
static_assert(sizeof(struct scl_ctx) == 128);

/*
 * What the module counts for one governed lock. A "round" is one shuffle round: the
 * waiter that gets the lock next (the shuffler) looks at the waiters queued behind it.
 * A round is "mixed" when those waiters come from the shuffler's NUMA node and from
 * another one, so that the order after the round is a real choice; "to_shuffler_node"
 * counts the mixed rounds after which the waiter right behind the shuffler is on the
 * shuffler's node. Rounds are counted the same way with no policy loaded (FIFO).
 */
struct scl_lock_stats {
	u64 acquisitions;	/* through the hooked entry points */
	u64 contended;		/* acquisitions that had to wait */
	u64 handoffs;		/* mutex: unlocks that handed the lock to a waiter */
	u64 rounds, mixed, to_shuffler_node, moved;
	u64 bypass_admitted;	/* bypass_acquire said yes */
	u64 bypassed;		/* readers that entered without the counter */
	u64 bypass_refused;	/* admitted, but a writer was active: normal path */
	u64 bypass_released;	/* bypassed readers that left */
	u64 bypass_disagreed;	/* bypass_release disagreed with the module's record */
	u64 nested;		/* hooks skipped: a hook was already running on this CPU */
	u64 slept;		/* handlers' `sleep_after` requests the task slept for */
	u64 slept_ns;		/* ...and how long they asked for in all */
	u64 sleep_skipped;	/* requests where the caller could not sleep (not preemptible) */
};

/* For test modules: a snapshot of a governed lock's counters; -ENOENT if not governed. */
int scl_hooks_lock_stats(const void *lock, struct scl_lock_stats *out);
/* Calls of each hook since the policy was activated. */
void scl_hooks_hook_calls(u64 out[SCL_NR_HOOKS]);
/* Each hook's name in the catalogue, by enum scl_hook. */
extern const char *const scl_hook_names[SCL_NR_HOOKS];
/* The active policy's name ("" when none). */
void scl_hooks_policy_name(char *buf, size_t len);

#endif
