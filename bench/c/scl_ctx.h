/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What every hand-written baseline policy of the bench shares: the 128-byte hook context
 * of the syncord target (docs/abi.md, design §5), the create-zeroed-on-miss lookup of
 * per-lock and per-thread state, and the bounded busy wait SCL's back_off()/sleep() are.
 *
 * Written as a kernel engineer would with libbpf: clang -O2 -g -target bpf -mcpu=v3.
 */
#ifndef SCL_CTX_H
#define SCL_CTX_H

#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

typedef __u8 u8;
typedef __u32 u32;
typedef __u64 u64;
typedef _Bool bool;
#define true 1
#define false 0

struct scl_waiter {
	u32 cpu;
	u32 numa_node;
	u32 tid;
	u32 prio;
	u64 wait_start;
	u64 data;
};

struct scl_ctx {
	u64 lock;
	u32 kind;		/* 0 spinlock, 1 mutex, 2 rwsem */
	u32 flags;		/* bit0 reader, bit1 writer, bit2 trylock */
	u32 cpu;
	u32 numa_node;
	u32 tid;
	u32 tgid;
	struct scl_waiter shuffler;
	struct scl_waiter candidate;
	u8 reserved[32];
};

#define SCL_F_READER 1

/* The entry of `key` in an LRU hash, created zeroed if missing; NULL if that failed. */
static __always_inline void *lookup_or_init(void *map, const void *key, const void *zero)
{
	void *v = bpf_map_lookup_elem(map, key);

	if (v)
		return v;
	bpf_map_update_elem(map, key, zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

/* bpf_loop callback: stop once the deadline in *data has passed. */
static long wait_until(u32 index, void *data)
{
	return bpf_ktime_get_ns() >= *(u64 *)data;
}

/* Busy-waits min(ns, limit) nanoseconds, at most 2^20 polls of the clock. */
static __always_inline void busy_wait(u64 ns, u64 limit)
{
	u64 deadline;

	if (ns > limit)
		ns = limit;
	deadline = bpf_ktime_get_ns() + ns;
	bpf_loop(1 << 20, wait_until, &deadline, 0);
}

/* Nanoseconds since `t`, 0 if `t` is in the future. */
static __always_inline u64 elapsed_since(u64 t)
{
	u64 now = bpf_ktime_get_ns();

	return t >= now ? 0 : now - t;
}

#endif
