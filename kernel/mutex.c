// SPDX-License-Identifier: GPL-2.0-only
/*
 * The mutex, for governed locks: hooks around the kernel's mutex_lock and mutex_unlock,
 * and a policy-ordered hand-off at a contended unlock.
 *
 * mutex_lock runs `to_acquire`, tries the kernel's fast path (one cmpxchg of the owner
 * word), and on failure runs `contended` and calls the kernel's mutex_lock, which queues
 * the task on `wait_list` as always; `acquired` runs once it holds the lock.
 *
 * mutex_unlock with waiters queued does what the kernel does when a waiter has asked for a
 * hand-off, always: under `wait_lock` the first waiter (the shuffler) gets one shuffle
 * round (`skip_reorder`, then `should_reorder` per waiter behind it, approved ones moved
 * next to it in order), then the owner word is set to that waiter with the PICKUP flag
 * and the waiter is woken; the kernel's own wait loop picks the lock up. The stock mutex
 * instead lets the releaser and spinning newcomers re-take the lock, so a queue order
 * would mean little. With no policy loaded the same hand-off runs in FIFO order: that is
 * the baseline the guest tests compare against. Without waiters, the kernel's unlock runs.
 */
#define pr_fmt(fmt) "scl_hooks: " fmt

#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched/task.h>
#include "internal.h"

/* kernel/locking/mutex.c and mutex.h: private, stable since 4.10, checked at load. */
#define MUTEX_FLAG_WAITERS	0x01
#define MUTEX_FLAG_HANDOFF	0x02
#define MUTEX_FLAG_PICKUP	0x04
#define MUTEX_FLAGS		0x07

struct scl_mutex_waiter {
	struct list_head list;
#ifdef SCL_LAYOUT_SKEW
	/* Only for the test that a module built for another layout is refused at load. */
	char skew[SCL_LAYOUT_SKEW];
#endif
	struct task_struct *task;
};

static u64 scl_wait_start(struct task_struct *t, const void *lock)
{
	u64 start;

	return scl_tab_get(t, lock, &start) ? start : 0;
}

static u32 scl_task_node(struct task_struct *t)
{
	return cpu_to_node(task_cpu(t));
}

/* One shuffle round of `wait_list`; wait_lock is held. */
static void scl_mutex_shuffle(struct scl_lock *gl, struct mutex *lock)
{
	struct scl_mutex_waiter *shuf, *w, *tmp;
	struct list_head *insert;
	struct scl_policy *p;
	struct scl_round r = { };
	struct scl_ctx ctx;
	bool reorder = false;
	int n = 0;

	if (list_is_singular(&lock->wait_list))
		return;
	shuf = list_first_entry(&lock->wait_list, struct scl_mutex_waiter, list);
	r.node = scl_task_node(shuf->task);
	p = scl_enter(gl, SCL_MUTEX);
	if (p && p->progs[SCL_SHOULD_REORDER]) {
		scl_ctx_init(&ctx, lock, SCL_MUTEX, 0);
		scl_waiter_of(&ctx.shuffler, shuf->task, scl_wait_start(shuf->task, lock));
		reorder = !(p->progs[SCL_SKIP_REORDER] && scl_run(p, SCL_SKIP_REORDER, &ctx));
	}
	insert = &shuf->list;
	w = list_next_entry(shuf, list);
	list_for_each_entry_safe_from(w, tmp, &lock->wait_list, list) {
		if (n++ == SCL_MAX_WALK)
			break;
		scl_round_see(&r, scl_task_node(w->task));
		if (!reorder)
			continue;
		scl_waiter_of(&ctx.candidate, w->task, scl_wait_start(w->task, lock));
		if (!scl_run(p, SCL_SHOULD_REORDER, &ctx))
			continue;
		if (w->list.prev != insert) {
			list_move(&w->list, insert);
			scl_count(gl, SCL_STAT(moved));
		}
		insert = &w->list;
	}
	if (p)
		scl_leave();
	w = list_next_entry(shuf, list);
	scl_round_end(gl, &r, true, scl_task_node(w->task));
}

/* Hands a contended mutex to its first waiter after a shuffle round; false: no waiter. */
static bool scl_mutex_handoff(struct scl_lock *gl, struct mutex *lock)
{
	struct scl_mutex_waiter *first;
	struct task_struct *next;
	unsigned long owner, new;

	if (!(atomic_long_read(&lock->owner) & MUTEX_FLAG_WAITERS))
		return false;
	raw_spin_lock(&lock->wait_lock);
	if (list_empty(&lock->wait_list)) {
		raw_spin_unlock(&lock->wait_lock);
		return false;
	}
	scl_mutex_shuffle(gl, lock);
	first = list_first_entry(&lock->wait_list, struct scl_mutex_waiter, list);
	next = first->task;
	get_task_struct(next);
	owner = atomic_long_read(&lock->owner);
	do {
		WARN_ON_ONCE((owner & ~MUTEX_FLAGS) != (unsigned long)current);
		new = (owner & MUTEX_FLAG_WAITERS) | (unsigned long)next | MUTEX_FLAG_PICKUP;
	} while (!atomic_long_try_cmpxchg_release(&lock->owner, &owner, new));
	raw_spin_unlock(&lock->wait_lock);
	wake_up_process(next);
	put_task_struct(next);
	scl_count(gl, SCL_STAT(handoffs));
	return true;
}

void scl_mutex_lock(struct mutex *lock)
{
	struct scl_lock *gl = scl_governed(lock);
	unsigned long zero = 0;

	scl_inflight_inc();
	might_sleep();
	scl_event(gl, SCL_MUTEX, SCL_TO_ACQUIRE, lock, 0);
	if (!atomic_long_try_cmpxchg_acquire(&lock->owner, &zero, (unsigned long)current)) {
		/* The shuffler reads when a waiter started waiting from this record. */
		bool tracked = scl_tab_put(lock, ktime_get_mono_fast_ns());

		scl_count(gl, SCL_STAT(contended));
		scl_event(gl, SCL_MUTEX, SCL_CONTENDED, lock, 0);
		mutex_lock(lock);	/* the kernel's: our calls are never redirected */
		if (tracked)
			scl_tab_take(lock, NULL);
	}
	scl_count(gl, SCL_STAT(acquisitions));
	scl_event(gl, SCL_MUTEX, SCL_ACQUIRED, lock, 0);
	scl_inflight_dec();
}

void scl_mutex_unlock(struct mutex *lock)
{
	struct scl_lock *gl = scl_governed(lock);

	scl_inflight_inc();
	scl_event(gl, SCL_MUTEX, SCL_TO_RELEASE, lock, 0);
	if (!gl || !scl_mutex_handoff(gl, lock))
		mutex_unlock(lock);
	scl_event(gl, SCL_MUTEX, SCL_RELEASED, lock, 0);
	scl_inflight_dec();
}

int scl_mutex_init(void)
{
	return scl_btf_check_member("mutex_waiter", "list", offsetof(struct scl_mutex_waiter, list)) ?:
	       scl_btf_check_member("mutex_waiter", "task", offsetof(struct scl_mutex_waiter, task)) ?:
	       scl_btf_check_member("mutex", "owner", offsetof(struct mutex, owner)) ?:
	       scl_btf_check_member("mutex", "wait_lock", offsetof(struct mutex, wait_lock)) ?:
	       scl_btf_check_member("mutex", "wait_list", offsetof(struct mutex, wait_list));
}
