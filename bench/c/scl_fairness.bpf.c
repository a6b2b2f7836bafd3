// SPDX-License-Identifier: GPL-2.0-only
/* examples/scl_fairness.scl, by hand: threads over their share of lock time back off. */
#include "scl_ctx.h"

const volatile u64 window_ns = 10000000;
const volatile u64 share_ns = 2000000;
const volatile u64 max_backoff_ns = 50000;

struct Account {
	u32 depth;
	u64 hold_start;
	u64 window_start;
	u64 used;
	u64 banned_until;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, struct Account);
} acct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, u64);
} usage SEC(".maps");

static __always_inline struct Account *account(struct scl_ctx *c)
{
	struct Account zero = {};
	u32 tid = c->tid;

	return lookup_or_init(&acct, &tid, &zero);
}

SEC("syscall")
int to_acquire(void *ctx)
{
	struct Account *a = account(ctx);
	u64 t = bpf_ktime_get_ns();

	if (a && t < a->banned_until)
		busy_wait(a->banned_until - t, max_backoff_ns);
	return 0;
}

SEC("syscall")
int acquired(void *ctx)
{
	struct Account *a = account(ctx);

	if (!a)
		return 0;
	if (a->depth == 0)
		a->hold_start = bpf_ktime_get_ns();
	a->depth += 1;
	return 0;
}

SEC("syscall")
int released(void *ctx)
{
	struct scl_ctx *c = ctx;
	struct Account *a = account(c);
	u32 tid;
	u64 t;

	if (!a || a->depth == 0)
		return 0;
	a->depth -= 1;
	if (a->depth != 0)
		return 0;
	t = bpf_ktime_get_ns();
	if (t - a->window_start >= window_ns) {
		a->window_start = t;
		a->used = 0;
	}
	a->used += t - a->hold_start;
	if (a->used > share_ns)
		a->banned_until = a->window_start + window_ns;
	tid = c->tid;
	bpf_map_update_elem(&usage, &tid, &a->used, BPF_ANY);
	return 0;
}

static __always_inline u64 usage_of(u32 tid)
{
	u64 *v = bpf_map_lookup_elem(&usage, &tid);

	return v ? *v : 0;
}

SEC("syscall")
int should_reorder(void *ctx)
{
	struct scl_ctx *c = ctx;

	return usage_of(c->candidate.tid) < usage_of(c->shuffler.tid);
}

char LICENSE[] SEC("license") = "GPL";
