// SPDX-License-Identifier: GPL-2.0-only
/* examples/numa_grouping.scl, by hand: NUMA-aware hand-off (ShflLock / CNA style). */
#include "scl_ctx.h"

const volatile u32 max_batch = 64;

struct Batch {
	u32 node;
	u32 run;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, u64);
	__type(value, struct Batch);
} batch SEC(".maps");

SEC("syscall")
int acquired(void *ctx)
{
	struct scl_ctx *c = ctx;
	struct Batch zero = {};
	u64 lock = c->lock;
	struct Batch *b = lookup_or_init(&batch, &lock, &zero);
	u32 node = c->numa_node;

	if (!b)
		return 0;
	if (b->node == node) {
		b->run += 1;
	} else {
		b->node = node;
		b->run = 1;
	}
	return 0;
}

SEC("syscall")
int skip_reorder(void *ctx)
{
	struct scl_ctx *c = ctx;
	u64 lock = c->lock;
	struct Batch *b = bpf_map_lookup_elem(&batch, &lock);
	u32 run = b ? b->run : 0;

	return run >= max_batch;
}

SEC("syscall")
int should_reorder(void *ctx)
{
	struct scl_ctx *c = ctx;

	return c->shuffler.numa_node == c->candidate.numa_node;
}

char LICENSE[] SEC("license") = "GPL";
