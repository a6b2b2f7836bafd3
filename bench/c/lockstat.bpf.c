// SPDX-License-Identifier: GPL-2.0-only
/* examples/lockstat.scl, by hand: lock_stat-style wait and hold times per lock. */
#include "scl_ctx.h"

struct LockStat {
	u64 acquisitions;
	u64 contentions;
	u64 wait_total_ns;
	u64 wait_max_ns;
	u64 hold_total_ns;
	u64 hold_max_ns;
	u64 hold_start;
};

struct Pending {
	u64 wait_start;
	bool contended;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, u64);
	__type(value, struct LockStat);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, struct Pending);
} pending SEC(".maps");

static __always_inline struct LockStat *stats_of(struct scl_ctx *c)
{
	struct LockStat zero = {};
	u64 lock = c->lock;

	return lookup_or_init(&stats, &lock, &zero);
}

static __always_inline struct Pending *pending_of(struct scl_ctx *c)
{
	struct Pending zero = {};
	u32 tid = c->tid;

	return lookup_or_init(&pending, &tid, &zero);
}

SEC("syscall")
int to_acquire(void *ctx)
{
	struct Pending *p = pending_of(ctx);

	if (!p)
		return 0;
	p->wait_start = bpf_ktime_get_ns();
	p->contended = false;
	return 0;
}

SEC("syscall")
int contended(void *ctx)
{
	struct Pending *p = pending_of(ctx);
	struct LockStat *s;

	if (!p)
		return 0;
	p->contended = true;
	s = stats_of(ctx);
	if (!s)
		return 0;
	__sync_fetch_and_add(&s->contentions, 1);
	return 0;
}

SEC("syscall")
int acquired(void *ctx)
{
	struct scl_ctx *c = ctx;
	struct Pending *p = pending_of(c);
	struct LockStat *s;
	u64 t;

	if (!p)
		return 0;
	s = stats_of(c);
	if (!s)
		return 0;
	t = bpf_ktime_get_ns();
	__sync_fetch_and_add(&s->acquisitions, 1);
	if (p->contended && p->wait_start != 0) {
		u64 wait = t - p->wait_start;

		__sync_fetch_and_add(&s->wait_total_ns, wait);
		if (wait > s->wait_max_ns)
			s->wait_max_ns = wait;
	}
	p->wait_start = 0;
	p->contended = false;
	if (!(c->flags & SCL_F_READER))
		s->hold_start = t;
	return 0;
}

SEC("syscall")
int released(void *ctx)
{
	struct scl_ctx *c = ctx;
	struct LockStat *s;
	u64 hold;

	if (c->flags & SCL_F_READER)
		return 0;
	s = stats_of(c);
	if (!s || s->hold_start == 0)
		return 0;
	hold = bpf_ktime_get_ns() - s->hold_start;
	s->hold_start = 0;
	s->hold_total_ns += hold;
	if (hold > s->hold_max_ns)
		s->hold_max_ns = hold;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
