// SPDX-License-Identifier: GPL-2.0-only
/*
 * scl_storm: a lock storm for the guest tests of kernel/ (tests/kernel-reality).
 *
 * It owns one mutex, one spinlock and one rwsem, and a set of kernel threads pinned
 * round-robin to the CPUs that hammer the one chosen at load time (`kind=`). Each run
 * measures, per thread, how long each acquisition waited (a log-linear histogram), and
 * for the lock: acquisitions, hand-offs (the holder changed from one thread to another)
 * and how many of them stayed on the previous holder's NUMA node, and whether any
 * critical section ever overlapped one it must exclude. It reads scl_hooks' counters for
 * the lock before and after, so a run reports exactly what the module decided during it.
 * With `cs_sleep_us=`, writers sleep in the critical section instead of spinning, so the
 * others queue behind a mutex or rwsem even when TCG does not run the vCPUs together; with
 * `think_sleep_us=`, threads sleep a random while between acquisitions, so they queue in a
 * new order each time.
 *
 *   /sys/kernel/scl_storm/lock      the lock's address (for `sclc load --lock`)
 *   /sys/kernel/scl_storm/threads   "tid cpu node" per thread
 *   /sys/kernel/scl_storm/run       write "LABEL MS [marked=TID,...] [little_from=CPU]"
 *   /sys/kernel/scl_storm/result    the last run, one JSON object
 */
#define pr_fmt(fmt) "scl_storm: " fmt

#include <linux/module.h>
#include <linux/kthread.h>
#include <linux/delay.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/slab.h>
#include <linux/wait.h>
#include <linux/completion.h>
#include <linux/random.h>
#include "scl_hooks.h"	/* kernel/scl_hooks.h: -I in the Makefile */

static char *kind = "mutex";
module_param(kind, charp, 0444);
static int threads;
module_param(threads, int, 0444);
MODULE_PARM_DESC(threads, "threads (default: 2 per CPU, 1 per CPU for the spinlock)");
static int cs_ns = 3000;
module_param(cs_ns, int, 0444);
static int think_ns = 1000;
module_param(think_ns, int, 0444);
static int cs_sleep_us;
module_param(cs_sleep_us, int, 0444);
static int think_sleep_us;
module_param(think_sleep_us, int, 0444);
MODULE_PARM_DESC(think_sleep_us, "after think_ns, sleep a random 0..think_sleep_us (uniform), so the waiters queue in a new order each time instead of keeping one cycle");
MODULE_PARM_DESC(cs_sleep_us, "mutex/rwsem writers: sleep this long in the critical section instead of spinning cs_ns (0: spin); the waiters queue whether or not the vCPUs run together");
static int read_pct = 90;
module_param(read_pct, int, 0444);
MODULE_PARM_DESC(read_pct, "rwsem: share of acquisitions that read");

static DEFINE_MUTEX(storm_mutex);
static DEFINE_SPINLOCK(storm_spinlock);
static DECLARE_RWSEM(storm_rwsem);

enum { K_SPIN, K_MUTEX, K_RWSEM } storm_kind;

#define NR_BUCKETS (64 * 8)	/* log2 buckets, 8 linear sub-buckets each */

struct storm_thread {
	struct task_struct *task;
	int cpu, node, tid;
	bool marked, little;
	u64 acquisitions, reads;
	u64 wait_max;
	u32 hist[NR_BUCKETS];
};

static struct storm_thread *st;
static int nr;
static DECLARE_WAIT_QUEUE_HEAD(storm_wq);
static unsigned long storm_gen;	/* bumped to start a run */
static u64 storm_deadline;
static atomic_t storm_running;
static DECLARE_COMPLETION(storm_done);
static DEFINE_MUTEX(storm_ctl);

/* Shared state, written only inside the critical section. */
static int last_cpu = -1;
static u64 handoffs, local_handoffs;
static atomic_t excl_inside, readers_inside;
static atomic64_t violations;

static char *result;
#define RESULT_SIZE PAGE_SIZE

static int bucket_of(u64 ns)
{
	int lg, sub;

	if (ns < 8)
		return ns;
	lg = fls64(ns) - 1;		/* >= 3 */
	sub = (ns >> (lg - 3)) & 7;
	return min(lg * 8 + sub, NR_BUCKETS - 1);
}

static u64 bucket_value(int b)
{
	int lg = b / 8, sub = b % 8;

	if (b < 8)
		return b;
	return (8ULL + sub) << (lg - 3);
}

static void critical_section(struct storm_thread *t, bool reader)
{
	if (reader) {
		atomic_inc(&readers_inside);
		if (atomic_read(&excl_inside))
			atomic64_inc(&violations);
		ndelay(cs_ns);
		atomic_dec(&readers_inside);
		return;
	}
	if (atomic_inc_return(&excl_inside) != 1 || atomic_read(&readers_inside))
		atomic64_inc(&violations);
	if (last_cpu != t->cpu) {
		if (last_cpu >= 0) {
			handoffs++;
			if (cpu_to_node(last_cpu) == t->node)
				local_handoffs++;
		}
		last_cpu = t->cpu;
	}
	if (cs_sleep_us)
		usleep_range(cs_sleep_us, cs_sleep_us + cs_sleep_us / 4 + 1);
	else
		ndelay(cs_ns);
	atomic_dec(&excl_inside);
}

static int storm_fn(void *arg)
{
	struct storm_thread *t = arg;
	unsigned long seen = 0;

	while (!kthread_should_stop()) {
		wait_event_interruptible(storm_wq, READ_ONCE(storm_gen) != seen || kthread_should_stop());
		if (kthread_should_stop())
			break;
		seen = READ_ONCE(storm_gen);
		while (ktime_get_ns() < READ_ONCE(storm_deadline)) {
			bool reader = storm_kind == K_RWSEM && get_random_u32_below(100) < read_pct;
			u64 t0 = ktime_get_ns(), w;

			switch (storm_kind) {
			case K_SPIN:
				spin_lock(&storm_spinlock);
				w = ktime_get_ns() - t0;
				critical_section(t, false);
				spin_unlock(&storm_spinlock);
				break;
			case K_MUTEX:
				mutex_lock(&storm_mutex);
				w = ktime_get_ns() - t0;
				critical_section(t, false);
				mutex_unlock(&storm_mutex);
				break;
			default:
				if (reader) {
					down_read(&storm_rwsem);
					w = ktime_get_ns() - t0;
					critical_section(t, true);
					up_read(&storm_rwsem);
					t->reads++;
				} else {
					down_write(&storm_rwsem);
					w = ktime_get_ns() - t0;
					critical_section(t, false);
					up_write(&storm_rwsem);
				}
			}
			t->acquisitions++;
			t->hist[bucket_of(w)]++;
			t->wait_max = max(t->wait_max, w);
			ndelay(think_ns);
			if (think_sleep_us) {
				u32 us = get_random_u32_below(think_sleep_us + 1);

				if (us)
					usleep_range(us, us + 1);
			}
			cond_resched();
		}
		if (atomic_dec_and_test(&storm_running))
			complete(&storm_done);
	}
	return 0;
}

/* Percentiles of the merged histograms of the threads that `pick` selects. */
struct pct { u64 count, p50, p90, p99, max; };

static void percentiles(bool (*pick)(struct storm_thread *, long), long arg, struct pct *out)
{
	static u64 merged[NR_BUCKETS];
	u64 seen = 0, want;
	int i, b;

	memset(out, 0, sizeof(*out));
	memset(merged, 0, sizeof(merged));
	for (i = 0; i < nr; i++) {
		if (!pick(&st[i], arg))
			continue;
		for (b = 0; b < NR_BUCKETS; b++)
			merged[b] += st[i].hist[b];
		out->count += st[i].acquisitions;
		out->max = max(out->max, st[i].wait_max);
	}
	if (!out->count)
		return;
	for (b = 0; b < NR_BUCKETS; b++) {
		seen += merged[b];
		want = out->count;
		if (!out->p50 && seen * 100 >= want * 50)
			out->p50 = bucket_value(b);
		if (!out->p90 && seen * 100 >= want * 90)
			out->p90 = bucket_value(b);
		if (!out->p99 && seen * 100 >= want * 99)
			out->p99 = bucket_value(b);
	}
}

static bool pick_all(struct storm_thread *t, long a) { return true; }
static bool pick_marked(struct storm_thread *t, long a) { return t->marked == a; }
static bool pick_little(struct storm_thread *t, long a) { return t->little == a; }
static bool pick_node(struct storm_thread *t, long a) { return t->node == a; }

static int emit_pct(char *buf, int n, const char *name, bool (*pick)(struct storm_thread *, long),
		    long arg, bool *first)
{
	struct pct p;

	percentiles(pick, arg, &p);
	if (!p.count)
		return n;
	n += scnprintf(buf + n, RESULT_SIZE - n,
		       "%s\"%s\":{\"count\":%llu,\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"max\":%llu}",
		       *first ? "" : ",", name, p.count, p.p50, p.p90, p.p99, p.max);
	*first = false;
	return n;
}

/* n/d with four decimals, or null. */
static int emit_ratio(char *buf, int n, u64 num, u64 den)
{
	if (!den)
		return n + scnprintf(buf + n, RESULT_SIZE - n, "null");
	return n + scnprintf(buf + n, RESULT_SIZE - n, "%llu.%04llu", num / den,
			     div64_u64((num % den) * 10000, den));
}

static void *lock_addr(void)
{
	switch (storm_kind) {
	case K_SPIN: return &storm_spinlock;
	case K_MUTEX: return &storm_mutex;
	default: return &storm_rwsem;
	}
}

static void build_result(const char *label, int ms, const struct scl_lock_stats *s0,
			 const struct scl_lock_stats *s1, bool governed, const u64 *h0, const u64 *h1,
			 bool any_marked, bool any_little)
{
	char *b = result, policy[65];
	u64 acq = 0, reads = 0;
	bool first = true;
	int n = 0, i, node;

	for (i = 0; i < nr; i++) {
		acq += st[i].acquisitions;
		reads += st[i].reads;
	}
	scl_hooks_policy_name(policy, sizeof(policy));
	n += scnprintf(b + n, RESULT_SIZE - n,
		       "{\"policy\":\"%s\",\"active_policy\":\"%s\",\"lock\":\"%s\",\"governed\":%s,\"duration_ms\":%d,\"threads\":%d,\"acquisitions\":%llu,\"reads\":%llu,\"handoffs\":%llu,\"local_handoffs\":%llu,\"local_handoff_ratio\":",
		       label, policy, kind, governed ? "true" : "false", ms, nr, acq, reads, handoffs,
		       local_handoffs);
	n = emit_ratio(b, n, local_handoffs, handoffs);
	n += scnprintf(b + n, RESULT_SIZE - n, ",\"exclusion_violations\":%lld",
		       atomic64_read(&violations));
#define D(f) (s1->f - s0->f)
	n += scnprintf(b + n, RESULT_SIZE - n,
		       ",\"module\":{\"acquisitions\":%llu,\"contended\":%llu,\"handoffs\":%llu,\"moved\":%llu,\"nested\":%llu,\"slept\":%llu,\"slept_ns\":%llu,\"sleep_skipped\":%llu}",
		       D(acquisitions), D(contended), D(handoffs), D(moved), D(nested), D(slept), D(slept_ns),
		       D(sleep_skipped));
	n += scnprintf(b + n, RESULT_SIZE - n,
		       ",\"reorder_decisions\":{\"rounds\":%llu,\"mixed\":%llu,\"to_shuffler_node\":%llu,\"to_shuffler_node_ratio\":",
		       D(rounds), D(mixed), D(to_shuffler_node));
	n = emit_ratio(b, n, D(to_shuffler_node), D(mixed));
	n += scnprintf(b + n, RESULT_SIZE - n,
		       "},\"bypass\":{\"admitted\":%llu,\"bypassed\":%llu,\"refused\":%llu,\"released\":%llu,\"disagreed\":%llu}",
		       D(bypass_admitted), D(bypassed), D(bypass_refused), D(bypass_released),
		       D(bypass_disagreed));
#undef D
	n += scnprintf(b + n, RESULT_SIZE - n, ",\"hook_calls\":{");
	for (i = 0; i < SCL_NR_HOOKS; i++)
		n += scnprintf(b + n, RESULT_SIZE - n, "%s\"%s\":%llu", i ? "," : "", scl_hook_names[i],
			       h1[i] - h0[i]);
	n += scnprintf(b + n, RESULT_SIZE - n, "},\"wait_ns\":{");
	n = emit_pct(b, n, "all", pick_all, 0, &first);
	if (any_marked) {
		n = emit_pct(b, n, "marked", pick_marked, 1, &first);
		n = emit_pct(b, n, "unmarked", pick_marked, 0, &first);
	}
	if (any_little) {
		n = emit_pct(b, n, "big", pick_little, 0, &first);
		n = emit_pct(b, n, "little", pick_little, 1, &first);
	}
	for_each_node_with_cpus(node) {
		char name[16];

		snprintf(name, sizeof(name), "node%d", node);
		n = emit_pct(b, n, name, pick_node, node, &first);
	}
	n += scnprintf(b + n, RESULT_SIZE - n, "},\"per_thread\":[");
	for (i = 0; i < nr; i++)
		n += scnprintf(b + n, RESULT_SIZE - n,
			       "%s{\"tid\":%d,\"cpu\":%d,\"node\":%d,\"marked\":%s,\"little\":%s,\"acquisitions\":%llu}",
			       i ? "," : "", st[i].tid, st[i].cpu, st[i].node,
			       st[i].marked ? "true" : "false", st[i].little ? "true" : "false",
			       st[i].acquisitions);
	scnprintf(b + n, RESULT_SIZE - n, "]}\n");
}

static ssize_t run_store(struct kobject *k, struct kobj_attribute *a, const char *buf, size_t len)
{
	char *line, *s, *label, *tok;
	struct scl_lock_stats s0 = {}, s1 = {};
	u64 h0[SCL_NR_HOOKS], h1[SCL_NR_HOOKS];
	bool governed, any_marked = false, any_little = false;
	int ms, i, err = 0, little_from = -1;

	line = kstrndup(buf, len, GFP_KERNEL);
	if (!line)
		return -ENOMEM;
	s = strim(line);
	/* Fields are separated by tabs: the label may hold spaces. */
	label = s;
	tok = strsep(&s, "\t");
	if (!s) {
		err = -EINVAL;
		goto out;
	}
	if (kstrtoint(strsep(&s, "\t"), 10, &ms) || ms <= 0 || ms > 60000) {
		err = -EINVAL;
		goto out;
	}
	for (i = 0; i < nr; i++) {
		memset(st[i].hist, 0, sizeof(st[i].hist));
		st[i].acquisitions = st[i].reads = st[i].wait_max = 0;
		st[i].marked = st[i].little = false;
	}
	while (s && (tok = strsep(&s, "\t"))) {
		if (!strncmp(tok, "marked=", 7)) {
			char *m = tok + 7, *t;
			int tid;

			while ((t = strsep(&m, ",")))
				if (!kstrtoint(t, 10, &tid))
					for (i = 0; i < nr; i++)
						if (st[i].tid == tid)
							st[i].marked = any_marked = true;
		} else if (!strncmp(tok, "little_from=", 12)) {
			if (kstrtoint(tok + 12, 10, &little_from))
				err = -EINVAL;
		} else if (*tok) {
			err = -EINVAL;
		}
	}
	if (err)
		goto out;
	if (little_from >= 0)
		for (i = 0; i < nr; i++)
			st[i].little = any_little = st[i].cpu >= little_from;

	mutex_lock(&storm_ctl);
	last_cpu = -1;
	handoffs = local_handoffs = 0;
	atomic64_set(&violations, 0);
	governed = !scl_hooks_lock_stats(lock_addr(), &s0);
	scl_hooks_hook_calls(h0);
	reinit_completion(&storm_done);
	atomic_set(&storm_running, nr);
	WRITE_ONCE(storm_deadline, ktime_get_ns() + (u64)ms * NSEC_PER_MSEC);
	WRITE_ONCE(storm_gen, storm_gen + 1);
	wake_up_all(&storm_wq);
	wait_for_completion(&storm_done);
	if (governed && scl_hooks_lock_stats(lock_addr(), &s1))
		s1 = s0;
	scl_hooks_hook_calls(h1);
	build_result(label, ms, &s0, &s1, governed, h0, h1, any_marked, any_little);
	mutex_unlock(&storm_ctl);
out:
	kfree(line);
	return err ?: len;
}

static ssize_t result_show(struct kobject *k, struct kobj_attribute *a, char *buf)
{
	/* sysfs gives a page: the result is kept under it. */
	return scnprintf(buf, PAGE_SIZE, "%s", result);
}

static ssize_t lock_show(struct kobject *k, struct kobj_attribute *a, char *buf)
{
	return sysfs_emit(buf, "0x%lx\n", (unsigned long)lock_addr());
}

static ssize_t threads_show(struct kobject *k, struct kobj_attribute *a, char *buf)
{
	int i, n = 0;

	for (i = 0; i < nr; i++)
		n += sysfs_emit_at(buf, n, "%d %d %d\n", st[i].tid, st[i].cpu, st[i].node);
	return n;
}

static struct kobj_attribute attrs[] = {
	__ATTR_WO(run), __ATTR_RO(result), __ATTR_RO(lock), __ATTR_RO(threads),
};
static struct attribute *attr_list[] = {
	&attrs[0].attr, &attrs[1].attr, &attrs[2].attr, &attrs[3].attr, NULL,
};
static const struct attribute_group group = { .attrs = attr_list };
static struct kobject *kobj;

static int __init storm_init(void)
{
	int i, cpu, ncpu = num_online_cpus(), err;

	if (!strcmp(kind, "spinlock"))
		storm_kind = K_SPIN;
	else if (!strcmp(kind, "mutex"))
		storm_kind = K_MUTEX;
	else if (!strcmp(kind, "rwsem"))
		storm_kind = K_RWSEM;
	else
		return -EINVAL;
	if (cs_sleep_us < 0 || cs_sleep_us > 100000 || (cs_sleep_us && storm_kind == K_SPIN) ||
	    think_sleep_us < 0 || think_sleep_us > 100000)
		return -EINVAL;	/* no sleeping under a spinlock */
	nr = threads > 0 ? threads : (storm_kind == K_SPIN ? ncpu : 2 * ncpu);
	st = kcalloc(nr, sizeof(*st), GFP_KERNEL);
	result = kzalloc(RESULT_SIZE, GFP_KERNEL);
	if (!st || !result)
		return -ENOMEM;
	strscpy(result, "{}\n", RESULT_SIZE);
	cpu = cpumask_first(cpu_online_mask);
	for (i = 0; i < nr; i++) {
		st[i].cpu = cpu;
		st[i].node = cpu_to_node(cpu);
		st[i].task = kthread_create_on_cpu(storm_fn, &st[i], cpu, "scl_storm/%u");
		if (IS_ERR(st[i].task)) {
			err = PTR_ERR(st[i].task);
			nr = i;
			goto fail;
		}
		st[i].tid = st[i].task->pid;
		wake_up_process(st[i].task);
		cpu = cpumask_next(cpu, cpu_online_mask);
		if (cpu >= nr_cpu_ids)
			cpu = cpumask_first(cpu_online_mask);
	}
	kobj = kobject_create_and_add("scl_storm", kernel_kobj);
	if (!kobj) {
		err = -ENOMEM;
		goto fail;
	}
	err = sysfs_create_group(kobj, &group);
	if (err) {
		kobject_put(kobj);
		goto fail;
	}
	pr_info("%d threads on a %s at %px\n", nr, kind, lock_addr());
	return 0;
fail:
	for (i = 0; i < nr; i++)
		kthread_stop(st[i].task);
	kfree(st);
	kfree(result);
	return err;
}

static void __exit storm_exit(void)
{
	int i;

	kobject_put(kobj);
	for (i = 0; i < nr; i++)
		kthread_stop(st[i].task);
	kfree(st);
	kfree(result);
}

module_init(storm_init);
module_exit(storm_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Lock storms for the guest tests of scl_hooks");
