// SPDX-License-Identifier: GPL-2.0-only
/* examples/amp.scl, by hand: keep the lock on the big cores of a big/little machine. */
#include "scl_ctx.h"

const volatile u32 first_little_cpu = 4;
const volatile u64 little_mask = 0;
const volatile u64 little_backoff_ns = 2000;
const volatile u64 max_backoff_ns = 20000;
const volatile u64 max_wait_ns = 1000000;

static __always_inline bool little(u32 cpu)
{
	if (little_mask != 0)
		return cpu < 64 && ((little_mask >> cpu) & 1);
	return cpu >= first_little_cpu;
}

SEC("syscall")
int contended(void *ctx)
{
	struct scl_ctx *c = ctx;

	if (little(c->cpu))
		busy_wait(little_backoff_ns, max_backoff_ns);
	return 0;
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

	return !little(c->candidate.cpu);
}

char LICENSE[] SEC("license") = "GPL";
