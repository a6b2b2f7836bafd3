// SPDX-License-Identifier: GPL-2.0-only
/*
 * The rwsem, for governed locks: hooks around down_read/up_read/down_write/up_write, and
 * the reader bypass (BRAVO's fast path) driven by `bypass_acquire` / `bypass_release`.
 *
 * A reader that the policy admits enters without touching the rwsem's count. The module,
 * not the policy, keeps that safe, whatever the policy's programs do:
 *  - it counts the readers inside through the bypass per lock and records each reader the
 *    policy admitted (task, lock, whether it skipped the count), so that its up_read skips
 *    the count exactly when its down_read did; `bypass_release` is still called (the
 *    policy frees its slot, which an admitted reader holds even where the module sent it
 *    down the normal path), and where its answer differs from the record the record wins
 *    and the disagreement is counted;
 *  - a writer, once it holds the count, announces itself and waits until the bypassing
 *    readers have left; a reader that the policy admits while a writer is announced takes
 *    the normal path (the two sides use a full barrier each, so one always sees the other).
 * So writers exclude readers even under a policy that admits every reader, and unloading
 * the policy or removing the lock never leaves a reader that skipped the count to release
 * it.
 */
#define pr_fmt(fmt) "scl_hooks: " fmt

#include <linux/module.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include "internal.h"

/* Records of readers the policy admitted, in the (task, lock) table. */
#define SCL_ADMITTED_REFUSED	0	/* took the count: a writer was inside */
#define SCL_ADMITTED_BYPASSED	1	/* skipped the count */
#define SCL_ANNOUNCED_WRITER	2	/* a writer that announced itself (scl_writer_drain) */

static bool scl_bypass_acquire(struct scl_lock *gl, struct rw_semaphore *sem)
{
	struct scl_policy *p = scl_enter(gl, SCL_RWSEM);
	struct scl_ctx ctx;
	bool admit = false;

	if (!p)
		return false;
	if (p->progs[SCL_BYPASS_ACQUIRE] && p->progs[SCL_BYPASS_RELEASE]) {
		scl_ctx_init(&ctx, sem, SCL_RWSEM, SCL_F_READER);
		admit = scl_run(p, SCL_BYPASS_ACQUIRE, &ctx);
	}
	scl_leave();
	if (!admit)
		return false;
	scl_count(gl, SCL_STAT(bypass_admitted));
	atomic_inc(&gl->bypass_inside);
	smp_mb__after_atomic();
	if (atomic_read(&gl->writers) || !scl_tab_put(sem, SCL_ADMITTED_BYPASSED)) {
		atomic_dec(&gl->bypass_inside);
		scl_count(gl, SCL_STAT(bypass_refused));
		/* The policy holds a slot for this reader: its bypass_release will say yes. */
		scl_tab_put(sem, SCL_ADMITTED_REFUSED);
		return false;
	}
	scl_count(gl, SCL_STAT(bypassed));
	return true;
}

void scl_down_read(struct rw_semaphore *sem)
{
	struct scl_lock *gl = scl_governed(sem);

	scl_inflight_inc();
	might_sleep();
	scl_event(gl, SCL_RWSEM, SCL_TO_ACQUIRE, sem, SCL_F_READER);
	if (!gl || !scl_bypass_acquire(gl, sem)) {
		if (!down_read_trylock(sem)) {
			scl_count(gl, SCL_STAT(contended));
			scl_event(gl, SCL_RWSEM, SCL_CONTENDED, sem, SCL_F_READER);
			down_read(sem);	/* the kernel's */
		}
	}
	scl_count(gl, SCL_STAT(acquisitions));
	scl_event(gl, SCL_RWSEM, SCL_ACQUIRED, sem, SCL_F_READER);
	scl_inflight_dec();
}

void scl_up_read(struct rw_semaphore *sem)
{
	struct scl_lock *gl = scl_governed(sem);
	struct scl_policy *p;
	struct scl_ctx ctx;
	bool said = false, admitted, bypassed;
	u64 record = SCL_ADMITTED_REFUSED;

	scl_inflight_inc();
	scl_event(gl, SCL_RWSEM, SCL_TO_RELEASE, sem, SCL_F_READER);
	p = scl_enter(gl, SCL_RWSEM);
	if (p) {
		if (p->progs[SCL_BYPASS_RELEASE]) {
			scl_ctx_init(&ctx, sem, SCL_RWSEM, SCL_F_READER);
			said = scl_run(p, SCL_BYPASS_RELEASE, &ctx);
		}
		scl_leave();
	}
	admitted = gl && scl_tab_take(sem, &record);
	bypassed = admitted && record == SCL_ADMITTED_BYPASSED;
	/* A reader the policy admitted has its slot, bypassed or not: it should say yes. */
	if (p && p->progs[SCL_BYPASS_RELEASE] && said != admitted)
		scl_count(gl, SCL_STAT(bypass_disagreed));
	if (bypassed) {
		smp_mb__before_atomic();	/* the read section ends before the writer sees us go */
		atomic_dec(&gl->bypass_inside);
		scl_count(gl, SCL_STAT(bypass_released));
	} else {
		up_read(sem);	/* the kernel's */
	}
	scl_event(gl, SCL_RWSEM, SCL_RELEASED, sem, SCL_F_READER);
	scl_inflight_dec();
}

/* With the count held: announce the writer and wait out the readers inside by the bypass. */
static void scl_writer_drain(struct scl_lock *gl)
{
	int spins = 0;

	atomic_inc(&gl->writers);
	smp_mb__after_atomic();
	while (atomic_read_acquire(&gl->bypass_inside)) {
		if (++spins < 64)
			cpu_relax();
		else
			schedule_timeout_uninterruptible(1);
	}
}

void scl_down_write(struct rw_semaphore *sem)
{
	struct scl_lock *gl = scl_governed(sem);

	scl_inflight_inc();
	might_sleep();
	scl_event(gl, SCL_RWSEM, SCL_TO_ACQUIRE, sem, SCL_F_WRITER);
	if (!down_write_trylock(sem)) {
		scl_count(gl, SCL_STAT(contended));
		scl_event(gl, SCL_RWSEM, SCL_CONTENDED, sem, SCL_F_WRITER);
		down_write(sem);	/* the kernel's */
	}
	if (gl) {
		scl_writer_drain(gl);
		/* Without a record (a full table) the writer stays announced for good: bypass
		 * stops on this lock, which is the safe side. */
		scl_tab_put(sem, SCL_ANNOUNCED_WRITER);
	}
	scl_count(gl, SCL_STAT(acquisitions));
	scl_event(gl, SCL_RWSEM, SCL_ACQUIRED, sem, SCL_F_WRITER);
	scl_inflight_dec();
}

void scl_up_write(struct rw_semaphore *sem)
{
	struct scl_lock *gl = scl_governed(sem);
	u64 record;

	scl_inflight_inc();
	scl_event(gl, SCL_RWSEM, SCL_TO_RELEASE, sem, SCL_F_WRITER);
	/* Only a writer that announced itself withdraws (the lock may have become governed
	 * while it held it). */
	if (gl && scl_tab_take(sem, &record) && record == SCL_ANNOUNCED_WRITER)
		atomic_dec(&gl->writers);
	up_write(sem);	/* the kernel's */
	scl_event(gl, SCL_RWSEM, SCL_RELEASED, sem, SCL_F_WRITER);
	scl_inflight_dec();
}
