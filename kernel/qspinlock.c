// SPDX-License-Identifier: GPL-2.0-only
/*
 * The queued spinlock's slow path for governed locks, with ShflLock-style shuffling.
 *
 * It keeps the kernel's protocol to the bit: the lock word with its locked byte, pending
 * byte and tail, and the MCS queue of the kernel's own per-CPU queue nodes (`qnodes`, with
 * their nesting count). So a governed lock may have waiters in the kernel's code and in
 * ours at once (while a lock becomes governed), and an interrupt that takes an ungoverned
 * spinlock on top of us nests on the same CPU's nodes as it always does.
 *
 * What it adds: the policy's hooks, and the shuffle round. When a waiter reaches the head
 * of the MCS queue (it will take the lock next), it becomes the shuffler: it asks
 * `skip_reorder` once, then walks the waiters queued behind it and moves each one that
 * `should_reorder` approves next to itself (behind the ones moved before, keeping their
 * order), as ShflLock does. Only the head changes `next` links, and only links that are
 * not NULL: a NULL link belongs to the tail, which a newcomer may be joining, so the tail
 * moves only by a compare-and-swap of the lock word's tail back to the waiter before it,
 * which fails (and changes nothing) if a newcomer got there first. Waiters spin on their
 * own node's `locked` word and read their `next` link only once they are the head, so the
 * moves are invisible to them.
 *
 * Hooks run on a spinlock only in this slow path: the fast path is inlined into every
 * caller and the unlock is a store, so `to_release`/`released` never run on spinlocks
 * and `to_acquire`/`acquired` run for the acquisitions that reached the slow path.
 */
#define pr_fmt(fmt) "scl_hooks: " fmt

#include <linux/module.h>
#include <linux/jump_label.h>
#include <linux/tracepoint-defs.h>
#include <asm/qspinlock.h>
#include "internal.h"

/* The kernel's private struct mcs_spinlock and struct qnode (checked at load). */
struct scl_mcs {
	struct scl_mcs *next;
	int locked;
	int count;
};

struct scl_qnode {
	struct scl_mcs mcs;
	long reserved[2];	/* the paravirt slow path's; unused by the native one */
};

#define SCL_MAX_NODES	4

/*
 * What the shuffler needs to know of a waiter. One per nesting level and CPU; while a
 * queue node is ours its reserved words hold a pointer to it and that pointer's
 * complement, so that a node of the kernel's own code is never taken for one of ours.
 */
struct scl_qwaiter {
	struct scl_mcs *node;
	u32 cpu, tid, prio;
	u32 tail;		/* the node's encoding in the lock word's tail */
	u64 wait_start;
};
static DEFINE_PER_CPU(struct scl_qwaiter[SCL_MAX_NODES], scl_qwaiters);

static struct scl_qnode __percpu *scl_qnodes;
static struct static_key *scl_virt_key;

/* The contention tracepoints, so that profilers keep seeing governed spinlocks. */
static struct tracepoint *scl_tp_begin, *scl_tp_end;
static void (*scl_trace_begin)(void *data, void *lock, unsigned int flags);
static void (*scl_trace_end)(void *data, void *lock, int ret);
#define SCL_LCB_F_SPIN	1

static_assert(_Q_PENDING_BITS == 8, "the module supports the byte-wide pending field only");
#define _Q_LOCKED_PENDING_MASK	(_Q_LOCKED_MASK | _Q_PENDING_MASK)

static __always_inline u32 scl_encode_tail(int cpu, int idx)
{
	return ((cpu + 1) << _Q_TAIL_CPU_OFFSET) | (idx << _Q_TAIL_IDX_OFFSET);
}

static __always_inline struct scl_mcs *scl_decode_tail(u32 tail)
{
	int cpu = (tail >> _Q_TAIL_CPU_OFFSET) - 1;
	int idx = (tail & _Q_TAIL_IDX_MASK) >> _Q_TAIL_IDX_OFFSET;

	return &(per_cpu_ptr(scl_qnodes, cpu) + idx)->mcs;
}

static __always_inline u32 scl_xchg_tail(struct qspinlock *lock, u32 tail)
{
	return (u32)xchg_relaxed(&lock->tail, tail >> _Q_TAIL_OFFSET) << _Q_TAIL_OFFSET;
}

static struct scl_qwaiter *scl_qwaiter_of(struct scl_mcs *node)
{
	struct scl_qnode *qn = container_of(node, struct scl_qnode, mcs);
	struct scl_qwaiter *w = (void *)READ_ONCE(qn->reserved[0]);

	if (!w || READ_ONCE(qn->reserved[1]) != ~(long)w || READ_ONCE(w->node) != node)
		return NULL;
	return w;
}

static void scl_waiter_ctx(struct scl_waiter *out, const struct scl_qwaiter *w)
{
	out->cpu = w->cpu;
	out->numa_node = cpu_to_node(w->cpu);
	out->tid = w->tid;
	out->prio = w->prio;
	out->wait_start = w->wait_start;
	out->data = 0;
}

/*
 * Moves the tail waiter `cur` (behind `prev`) out of the tail: the lock word's tail goes
 * back to `prev`, unless a newcomer has just queued behind `cur`, in which case nothing
 * changes and false is returned. On success `cur` is out of the queue and `prev` is its
 * tail; newcomers link behind `prev`.
 */
static bool scl_qspin_untail(struct qspinlock *lock, struct scl_mcs *prev, u32 prev_tail,
			     struct scl_mcs *cur, u32 cur_tail)
{
	u16 old = cur_tail >> _Q_TAIL_OFFSET;

	WRITE_ONCE(prev->next, NULL);
	smp_mb();
	if (cmpxchg(&lock->tail, old, (u16)(prev_tail >> _Q_TAIL_OFFSET)) == old)
		return true;
	WRITE_ONCE(prev->next, cur);
	return false;
}

/* One shuffle round by the queue head `node` (see the top of the file). */
static void scl_qspin_shuffle(struct scl_lock *gl, struct qspinlock *lock,
			      struct scl_mcs *node, struct scl_qwaiter *me)
{
	struct scl_round r = { .node = cpu_to_node(me->cpu) };
	struct scl_mcs *insert = node, *prev = node, *cur, *first;
	struct scl_qwaiter *w;
	struct scl_policy *p;
	struct scl_ctx ctx;
	bool reorder = false;
	int n;

	cur = READ_ONCE(node->next);
	if (!cur)
		return;
	p = scl_enter(gl, SCL_SPINLOCK);
	if (p && p->progs[SCL_SHOULD_REORDER]) {
		scl_ctx_init(&ctx, lock, SCL_SPINLOCK, 0);
		scl_waiter_ctx(&ctx.shuffler, me);
		reorder = !(p->progs[SCL_SKIP_REORDER] && scl_run(p, SCL_SKIP_REORDER, &ctx));
	}
	for (n = 0; cur && n < SCL_MAX_WALK; n++) {
		struct scl_mcs *next = READ_ONCE(cur->next);

		w = scl_qwaiter_of(cur);
		if (!w)
			break;	/* a waiter in the kernel's own code: leave the rest as it is */
		scl_round_see(&r, cpu_to_node(w->cpu));
		if (!next) {
			/* The tail: a newcomer may be joining behind it, so it moves only by
			 * giving the lock word's tail back to the waiter before it. */
			struct scl_qwaiter *pw = prev == node ? me : scl_qwaiter_of(prev);

			if (reorder && prev != insert && pw) {
				scl_waiter_ctx(&ctx.candidate, w);
				if (scl_run(p, SCL_SHOULD_REORDER, &ctx) &&
				    scl_qspin_untail(lock, prev, pw->tail, cur, w->tail)) {
					WRITE_ONCE(cur->next, READ_ONCE(insert->next));
					WRITE_ONCE(insert->next, cur);
					scl_count(gl, SCL_STAT(moved));
				}
			}
			break;
		}
		if (reorder) {
			scl_waiter_ctx(&ctx.candidate, w);
			if (scl_run(p, SCL_SHOULD_REORDER, &ctx)) {
				if (prev != insert) {
					WRITE_ONCE(prev->next, next);
					WRITE_ONCE(cur->next, READ_ONCE(insert->next));
					WRITE_ONCE(insert->next, cur);
					scl_count(gl, SCL_STAT(moved));
					insert = cur;
					cur = next;
					continue;
				}
				insert = cur;
			}
		}
		prev = cur;
		cur = next;
	}
	if (p)
		scl_leave();
	first = READ_ONCE(node->next);
	w = first ? scl_qwaiter_of(first) : NULL;
	scl_round_end(gl, &r, w, w ? cpu_to_node(w->cpu) : 0);
}

/* The kernel's test-and-set fallback when running on a hypervisor without PV spinlocks. */
static bool scl_virt_spin_lock(struct qspinlock *lock)
{
	int val;

	if (!scl_virt_key || !static_key_enabled(scl_virt_key))
		return false;
	for (;;) {
		val = atomic_read(&lock->val);
		if (!val && atomic_try_cmpxchg(&lock->val, &val, _Q_LOCKED_VAL))
			return true;
		cpu_relax();
	}
}

/* The replacement of native_queued_spin_lock_slowpath(lock, val) for governed locks. */
void notrace scl_qspin_slowpath(struct qspinlock *lock, u32 val)
{
	struct scl_lock *gl = scl_governed(lock);
	struct scl_mcs *prev, *next, *node;
	struct scl_qwaiter *me = NULL;
	struct scl_qnode *qn = NULL;
	u32 old, tail;
	int idx, cpu;

	scl_inflight_inc();
	scl_count(gl, SCL_STAT(acquisitions));
	scl_count(gl, SCL_STAT(contended));
	if (scl_tp_begin && static_key_enabled(&scl_tp_begin->key))
		scl_trace_begin(NULL, lock, SCL_LCB_F_SPIN);
	scl_event(gl, SCL_SPINLOCK, SCL_TO_ACQUIRE, lock, 0);
	scl_event(gl, SCL_SPINLOCK, SCL_CONTENDED, lock, 0);

	if (scl_virt_spin_lock(lock))
		goto out;

	/* A pending-to-locked hand-over in progress: wait a moment for it (as the kernel). */
	if (val == _Q_PENDING_VAL) {
		int cnt = 1;

		val = atomic_cond_read_relaxed(&lock->val, (VAL != _Q_PENDING_VAL) || !cnt--);
	}
	if (val & ~_Q_LOCKED_MASK)
		goto queue;

	/* Only the owner: become the pending waiter instead of queueing. */
	val = queued_fetch_set_pending_acquire(lock);
	if (unlikely(val & ~_Q_LOCKED_MASK)) {
		if (!(val & _Q_PENDING_MASK))
			WRITE_ONCE(lock->pending, 0);
		goto queue;
	}
	if (val & _Q_LOCKED_MASK)
		smp_cond_load_acquire(&lock->locked, !VAL);
	WRITE_ONCE(lock->locked_pending, _Q_LOCKED_VAL);
	goto out;

queue:
	cpu = smp_processor_id();
	qn = this_cpu_ptr(scl_qnodes);
	idx = qn->mcs.count++;
	tail = scl_encode_tail(cpu, idx);
	if (unlikely(idx >= SCL_MAX_NODES)) {
		/* Nested more than four deep (NMIs): spin on the word, as the kernel does. */
		while (!queued_spin_trylock(lock))
			cpu_relax();
		goto release;
	}
	qn += idx;
	node = &qn->mcs;
	barrier();
	node->locked = 0;
	node->next = NULL;
	me = this_cpu_ptr(&scl_qwaiters[idx]);
	me->node = node;
	me->cpu = cpu;
	me->tid = current->pid;
	me->prio = current->prio;
	me->tail = tail;
	me->wait_start = ktime_get_mono_fast_ns();	/* the clock of now() */
	WRITE_ONCE(qn->reserved[0], (long)me);
	WRITE_ONCE(qn->reserved[1], ~(long)me);

	if (queued_spin_trylock(lock))
		goto release;

	/* Publish the node's initialisation before the tail points at it. */
	smp_wmb();
	old = scl_xchg_tail(lock, tail);
	if (old & _Q_TAIL_MASK) {
		prev = scl_decode_tail(old);
		WRITE_ONCE(prev->next, node);
		smp_cond_load_acquire(&node->locked, VAL);
	}

	/* The head of the queue: shuffle the waiters behind us while the owner holds it. */
	if (gl)
		scl_qspin_shuffle(gl, lock, node, me);

	val = atomic_cond_read_acquire(&lock->val, !(VAL & _Q_LOCKED_PENDING_MASK));

	/* Last in the queue: take the lock and clear the tail in one go. */
	if ((val & _Q_TAIL_MASK) == tail) {
		if (atomic_try_cmpxchg_relaxed(&lock->val, &val, _Q_LOCKED_VAL))
			goto release;
	}
	WRITE_ONCE(lock->locked, _Q_LOCKED_VAL);
	next = smp_cond_load_relaxed(&node->next, (VAL));
	smp_store_release(&next->locked, 1);

release:
	if (me) {
		WRITE_ONCE(qn->reserved[0], 0);
		WRITE_ONCE(qn->reserved[1], 0);
		me->node = NULL;
	}
	__this_cpu_dec(scl_qnodes->mcs.count);
out:
	scl_event(gl, SCL_SPINLOCK, SCL_ACQUIRED, lock, 0);
	if (scl_tp_end && static_key_enabled(&scl_tp_end->key))
		scl_trace_end(NULL, lock, 0);
	scl_inflight_dec();
}

int scl_qspin_init(void)
{
	unsigned long qnodes = scl_kallsyms_lookup_name("qnodes");
	int err;

	if (!qnodes) {
		pr_err("the queued spinlock's qnodes are not in kallsyms\n");
		return -ENOENT;
	}
	err = scl_btf_check_size("qnode", sizeof(struct scl_qnode)) ?:
	      scl_btf_check_member("qnode", "mcs", offsetof(struct scl_qnode, mcs)) ?:
	      scl_btf_check_size("mcs_spinlock", sizeof(struct scl_mcs)) ?:
	      scl_btf_check_member("mcs_spinlock", "next", offsetof(struct scl_mcs, next)) ?:
	      scl_btf_check_member("mcs_spinlock", "locked", offsetof(struct scl_mcs, locked)) ?:
	      scl_btf_check_member("mcs_spinlock", "count", offsetof(struct scl_mcs, count));
	if (err)
		return err;
	scl_qnodes = (struct scl_qnode __percpu *)qnodes;
	scl_virt_key = (void *)scl_kallsyms_lookup_name("virt_spin_lock_key");
	scl_tp_begin = (void *)scl_kallsyms_lookup_name("__tracepoint_contention_begin");
	scl_tp_end = (void *)scl_kallsyms_lookup_name("__tracepoint_contention_end");
	scl_trace_begin = (void *)scl_kallsyms_lookup_name("__traceiter_contention_begin");
	scl_trace_end = (void *)scl_kallsyms_lookup_name("__traceiter_contention_end");
	if (!scl_trace_begin || !scl_trace_end)
		scl_tp_begin = scl_tp_end = NULL;
	return 0;
}
