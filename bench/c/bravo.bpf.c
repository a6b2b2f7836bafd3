// SPDX-License-Identifier: GPL-2.0-only
/* examples/bravo.scl, by hand: BRAVO reader bias for rwsems. */
#include "scl_ctx.h"

#define NR_SLOTS 128
#define DRAIN_ROUNDS 8
#define SLEEP_LIMIT_NS 10000000ULL	/* sclc's clamp of sleep() */

const volatile u64 inhibit_factor = 9;
const volatile u64 drain_poll_ns = 1000000;

struct Bias {
	u32 rbias;
	u64 inhibit_until;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u64);
	__type(value, struct Bias);
} biases SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_SLOTS);
	__type(key, u32);
	__type(value, u64);
} slot_lock SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_SLOTS);
	__type(key, u32);
	__type(value, u32);
} slot_tid SEC(".maps");

static __always_inline u32 slot(struct scl_ctx *c)
{
	u64 h = ((u64)c->tid * 0x9e3779b9) ^ (c->lock >> 4);

	return h % NR_SLOTS;
}

struct scan {
	u64 addr;
	u32 found;
};

static long find_reader(u32 index, void *data)
{
	struct scan *s = data;
	u32 i = index;
	u64 *v = bpf_map_lookup_elem(&slot_lock, &i);

	if ((v ? *v : 0) != s->addr)
		return 0;
	s->found = 1;
	return 1;
}

/*
 * Is a bypassing reader of `addr` still in its slot? The SCL source counts them with a
 * 128-iteration loop; in C inside drain()'s 8 rounds that makes the verifier give up
 * ("program is too large": the count is precise on every path), so a kernel engineer
 * scans with a bpf_loop callback, verified once, that stops at the first reader found.
 */
static __always_inline bool reader_inside(u64 addr)
{
	struct scan s = { .addr = addr, .found = 0 };

	bpf_loop(NR_SLOTS, find_reader, &s, 0);
	return s.found;
}

static __always_inline void drain(u64 addr)
{
	for (int round = 0; round < DRAIN_ROUNDS; round++) {
		if (!reader_inside(addr))
			return;
		busy_wait(drain_poll_ns, SLEEP_LIMIT_NS);
	}
}

SEC("syscall")
int bypass_acquire(void *ctx)
{
	struct scl_ctx *c = ctx;
	struct Bias *b;
	u64 *s, lock;
	u32 i, tid;

	if (!(c->flags & SCL_F_READER))
		return 0;
	lock = c->lock;
	b = bpf_map_lookup_elem(&biases, &lock);
	if (!b || b->rbias == 0)
		return 0;
	i = slot(c);
	s = bpf_map_lookup_elem(&slot_lock, &i);
	if (!s)
		return 0;
	if (__sync_val_compare_and_swap(s, 0, c->lock) != 0)
		return 0;
	/* The CAS is a full barrier: a revoking writer sees our slot or we see it here. */
	if (b->rbias != 0) {
		tid = c->tid;
		bpf_map_update_elem(&slot_tid, &i, &tid, BPF_ANY);
		return 1;
	}
	*s = 0;
	return 0;
}

SEC("syscall")
int bypass_release(void *ctx)
{
	struct scl_ctx *c = ctx;
	u64 *l, zero64 = 0;
	u32 *t, zero32 = 0;
	u32 i;

	if (!(c->flags & SCL_F_READER))
		return 0;
	i = slot(c);
	l = bpf_map_lookup_elem(&slot_lock, &i);
	if ((l ? *l : 0) != c->lock)
		return 0;
	t = bpf_map_lookup_elem(&slot_tid, &i);
	if ((t ? *t : 0) != c->tid)
		return 0;
	bpf_map_update_elem(&slot_tid, &i, &zero32, BPF_ANY);
	bpf_map_update_elem(&slot_lock, &i, &zero64, BPF_ANY);
	return 1;
}

SEC("syscall")
int acquired(void *ctx)
{
	struct scl_ctx *c = ctx;
	u64 lock = c->lock;
	struct Bias *b = bpf_map_lookup_elem(&biases, &lock);

	if (c->flags & SCL_F_READER) {
		/* A reader holds the lock, so no writer does: the bias may be armed. */
		if (b) {
			if (b->rbias == 0 && bpf_ktime_get_ns() >= b->inhibit_until)
				b->rbias = 1;
		} else {
			struct Bias nb = { .rbias = 1, .inhibit_until = 0 };

			bpf_map_update_elem(&biases, &lock, &nb, BPF_ANY);
		}
		return 0;
	}
	/* A writer holds the lock: revoke the bias and wait out the bypassing readers. */
	if (b && __sync_val_compare_and_swap(&b->rbias, 1, 0) == 1) {
		u64 start = bpf_ktime_get_ns(), t;

		drain(c->lock);
		t = bpf_ktime_get_ns();
		b->inhibit_until = t + (t - start) * inhibit_factor;
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
