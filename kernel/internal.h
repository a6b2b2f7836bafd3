/* SPDX-License-Identifier: GPL-2.0-only */
/* Shared between the files of scl_hooks; not an interface. */
#ifndef SCL_INTERNAL_H
#define SCL_INTERNAL_H

#include <linux/bpf.h>
#include <linux/delay.h>
#include <linux/filter.h>
#include <linux/ftrace.h>
#include <linux/percpu.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/topology.h>
#include "scl_hooks.h"

#define SCL_MAX_LOCKS	64	/* governed locks at once */
#define SCL_MAX_WALK	64	/* candidates one shuffle round looks at */
#define SCL_NAME_MAX	64	/* a deployment name, as sclc's pin names */

/* One governed lock: its address and its counters. Slots are never freed. */
struct scl_lock {
	void *addr;		/* NULL: free slot */
	struct scl_lock_counters {
		atomic64_t v[sizeof(struct scl_lock_stats) / sizeof(u64)];
	} c;
	atomic_t writers;	/* rwsem: writers inside (they drain bypassed readers) */
	atomic_t bypass_inside;	/* rwsem: readers inside without the counter */
};

/* Index of a counter of struct scl_lock_stats, for the atomic copy in scl_lock. */
#define SCL_STAT(field) (offsetof(struct scl_lock_stats, field) / sizeof(u64))
static inline void scl_count(struct scl_lock *gl, unsigned int idx)
{
	if (gl)
		atomic64_inc(&gl->c.v[idx]);
}

/* The most a handler's `sleep_after` calls ask for in all (sclc's SLEEP_AFTER_LIMIT_NS). */
#define SCL_SLEEP_LIMIT_NS	1000000000U

/* The active policy: its programs by hook, the lock kinds of its `for` list. */
struct scl_policy {
	char name[SCL_NAME_MAX + 1];
	u32 kinds;			/* BIT(enum scl_kind) */
	struct bpf_prog *progs[SCL_NR_HOOKS];
	struct rcu_head rcu;
};

extern struct scl_lock scl_locks[SCL_MAX_LOCKS];
extern struct static_key_false scl_have_locks;
extern struct scl_policy __rcu *scl_active;
extern atomic64_t scl_hook_calls[SCL_NR_HOOKS];
DECLARE_PER_CPU(int, scl_depth);
DECLARE_PER_CPU(long, scl_inflight);

/* The governed lock at `addr`, or NULL. Lock-free: slots only change address under
 * scl_config_mutex, and a reader that misses a change just treats the lock as it was. */
static __always_inline struct scl_lock *scl_governed(const void *addr)
{
	int i;

	if (!static_branch_unlikely(&scl_have_locks))
		return NULL;
	for (i = 0; i < SCL_MAX_LOCKS; i++)
		if (READ_ONCE(scl_locks[i].addr) == addr)
			return &scl_locks[i];
	return NULL;
}

/*
 * Entering policy code: no hooks in NMI or where RCU is not watching, none while another
 * hook runs on this CPU (map helpers take locks, interrupts take locks), preemption off and
 * inside an RCU read section so that the policy cannot be freed under us. Returns the
 * active policy if it applies to `kind`, else NULL (and nothing to undo).
 */
static inline struct scl_policy *scl_enter(struct scl_lock *gl, enum scl_kind kind)
{
	struct scl_policy *p;

	/* Not in NMI, and not where RCU is not watching (the idle loop's locks): the
	 * policy's lifetime rests on RCU. */
	if (!gl || in_nmi() || !rcu_is_watching())
		return NULL;	/* no longer governed (removed under us), NMI, or RCU idle */
	preempt_disable();
	if (__this_cpu_inc_return(scl_depth) != 1) {
		scl_count(gl, SCL_STAT(nested));
		goto out;
	}
	rcu_read_lock();
	p = rcu_dereference(scl_active);
	if (p && (p->kinds & BIT(kind)))
		return p;
	rcu_read_unlock();
out:
	__this_cpu_dec(scl_depth);
	preempt_enable();
	return NULL;
}

static inline void scl_leave(void)
{
	rcu_read_unlock();
	__this_cpu_dec(scl_depth);
	preempt_enable();
}

static inline u32 scl_run(struct scl_policy *p, enum scl_hook h, struct scl_ctx *ctx)
{
	atomic64_inc(&scl_hook_calls[h]);
	return bpf_prog_run(p->progs[h], ctx);
}

/* The context for the calling task. */
static inline void scl_ctx_init(struct scl_ctx *ctx, const void *lock, enum scl_kind kind,
				u32 flags)
{
	unsigned int cpu = raw_smp_processor_id();

	memset(ctx, 0, sizeof(*ctx));
	ctx->lock = (unsigned long)lock;
	ctx->kind = kind;
	ctx->flags = flags;
	ctx->cpu = cpu;
	ctx->numa_node = cpu_to_node(cpu);
	ctx->tid = current->pid;
	ctx->tgid = current->tgid;
}

static inline void scl_waiter_of(struct scl_waiter *w, struct task_struct *t, u64 wait_start)
{
	unsigned int cpu = task_cpu(t);

	w->cpu = cpu;
	w->numa_node = cpu_to_node(cpu);
	w->tid = t->pid;
	w->prio = t->prio;
	w->wait_start = wait_start;
	w->data = 0;
}

/* Runs a hook without waiters (to_acquire, contended, acquired, to_release, released). */
static inline void scl_event(struct scl_lock *gl, enum scl_kind kind, enum scl_hook h,
			     const void *lock, u32 flags)
{
	struct scl_policy *p = scl_enter(gl, kind);
	struct scl_ctx ctx;

	u32 sleep_ns = 0;

	if (!p)
		return;
	if (p->progs[h]) {
		scl_ctx_init(&ctx, lock, kind, flags);
		sleep_ns = scl_run(p, h, &ctx);
	}
	scl_leave();
	/*
	 * A hook without a decision returns the sleep its handler asked for (`sleep_after`, docs/
	 * abi.md §4); sclc allows it only where the hook may sleep, a mutex's or an rwsem's.
	 * The task sleeps here, outside the policy's RCU section and the nesting guard, at
	 * microsecond granularity. A caller that cannot sleep (a mutex released with
	 * preemption off, which the kernel allows) skips it, and the skip is counted.
	 */
	if (sleep_ns && kind != SCL_SPINLOCK) {
		sleep_ns = min(sleep_ns, SCL_SLEEP_LIMIT_NS);
		if (!preemptible()) {
			scl_count(gl, SCL_STAT(sleep_skipped));
			return;
		}
		fsleep(DIV_ROUND_UP(sleep_ns, NSEC_PER_USEC));
		scl_count(gl, SCL_STAT(slept));
		atomic64_add(sleep_ns, &gl->c.v[SCL_STAT(slept_ns)]);
	}
}

/* Tasks in a hooked entry point: module exit waits for them to leave our code. */
static inline void scl_inflight_inc(void) { this_cpu_inc(scl_inflight); }
static inline void scl_inflight_dec(void) { this_cpu_dec(scl_inflight); }

/*
 * A small table of (task, lock) -> value: when a mutex waiter started to wait, which
 * rwsem readers entered without the counter. Claimed by cmpxchg, bounded probing; a full
 * table is reported to the caller, who then takes the safe path.
 */
bool scl_tab_put(const void *lock, u64 value);
bool scl_tab_get(struct task_struct *t, const void *lock, u64 *value);
bool scl_tab_take(const void *lock, u64 *value);

/* Symbols the kernel does not export, resolved at load time. */
extern unsigned long (*scl_kallsyms_lookup_name)(const char *name);

/* Per lock kind: set-up (resolve, check layouts) and the replacement entry points. */
int scl_qspin_init(void);
void scl_qspin_slowpath(struct qspinlock *lock, u32 val);
int scl_mutex_init(void);
void scl_mutex_lock(struct mutex *lock);
void scl_mutex_unlock(struct mutex *lock);
void scl_down_read(struct rw_semaphore *sem);
void scl_up_read(struct rw_semaphore *sem);
void scl_down_write(struct rw_semaphore *sem);
void scl_up_write(struct rw_semaphore *sem);

/* Layout checks against the running kernel's BTF. */
int scl_btf_check_member(const char *st, const char *member, u32 byte_offset);
int scl_btf_check_size(const char *st, u32 size);

/* Decision accounting for a shuffle round (both queues). */
struct scl_round {
	u32 node;		/* the shuffler's NUMA node */
	bool same, other;	/* candidates seen on that node / on another */
};
static inline void scl_round_see(struct scl_round *r, u32 node)
{
	if (node == r->node)
		r->same = true;
	else
		r->other = true;
}
static inline void scl_round_end(struct scl_lock *gl, struct scl_round *r, bool have_next,
				 u32 next_node)
{
	scl_count(gl, SCL_STAT(rounds));
	if (r->same && r->other && have_next) {
		scl_count(gl, SCL_STAT(mixed));
		if (next_node == r->node)
			scl_count(gl, SCL_STAT(to_shuffler_node));
	}
}

#endif
