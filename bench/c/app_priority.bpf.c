// SPDX-License-Identifier: GPL-2.0-only
/* examples/app_priority.scl, by hand: latency-critical threads named by the application. */
#include "scl_ctx.h"

const volatile u64 max_wait_ns = 500000;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, u8);
} latency_critical SEC(".maps");

static __always_inline bool critical(u32 tid)
{
	u8 *v = bpf_map_lookup_elem(&latency_critical, &tid);

	return v && *v != 0;
}

SEC("syscall")
int skip_reorder(void *ctx)
{
	struct scl_ctx *c = ctx;

	return elapsed_since(c->shuffler.wait_start) >= max_wait_ns;
}

SEC("syscall")
int should_reorder(void *ctx)
{
	struct scl_ctx *c = ctx;

	return critical(c->candidate.tid) && !critical(c->shuffler.tid);
}

char LICENSE[] SEC("license") = "GPL";
