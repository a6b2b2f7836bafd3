// SPDX-License-Identifier: GPL-2.0-only
/*
 * scl_hooks: set-up, the control files under /sys/kernel/scl_hooks, and the redirection
 * of the hooked lock entry points for governed locks.
 *
 * Redirection uses the mechanism livepatch is built on (an ftrace_ops with IPMODIFY at
 * the entry of the kernel function), but conditionally: only a call whose lock is in the
 * governed set is sent to this module's version; every other lock of the machine runs the
 * kernel's own, unchanged code. Our versions call the kernel's functions back for the
 * parts they keep (calls from this module are never redirected).
 */
#define pr_fmt(fmt) "scl_hooks: " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/sysfs.h>
#include <linux/kprobes.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/hash.h>
#include <linux/ctype.h>
#include <linux/delay.h>
#include "internal.h"

struct scl_lock scl_locks[SCL_MAX_LOCKS];
DEFINE_STATIC_KEY_FALSE(scl_have_locks);
struct scl_policy __rcu *scl_active;
atomic64_t scl_hook_calls[SCL_NR_HOOKS];
DEFINE_PER_CPU(int, scl_depth);
DEFINE_PER_CPU(long, scl_inflight);
unsigned long (*scl_kallsyms_lookup_name)(const char *name);

const char *const scl_hook_names[SCL_NR_HOOKS] = {
	[SCL_TO_ACQUIRE] = "to_acquire",
	[SCL_CONTENDED] = "contended",
	[SCL_ACQUIRED] = "acquired",
	[SCL_TO_RELEASE] = "to_release",
	[SCL_RELEASED] = "released",
	[SCL_ENABLE_FASTPATH] = "enable_fastpath",
	[SCL_SHOULD_REORDER] = "should_reorder",
	[SCL_SKIP_REORDER] = "skip_reorder",
	[SCL_BYPASS_ACQUIRE] = "bypass_acquire",
	[SCL_BYPASS_RELEASE] = "bypass_release",
};
EXPORT_SYMBOL_GPL(scl_hook_names);

static const char *const scl_kind_names[SCL_NR_KINDS] = {
	[SCL_SPINLOCK] = "spinlock", [SCL_MUTEX] = "mutex", [SCL_RWSEM] = "rwsem",
};

/* Serialises changes of the policy and of the governed set. */
static DEFINE_MUTEX(scl_config_mutex);
static bool scl_pinned_module;	/* we hold a reference on ourselves */
static char scl_error[256];

/* ---- the (task, lock) table ---------------------------------------------------------- */

#define SCL_TAB_BITS	10
#define SCL_TAB_PROBE	32
#define SCL_TAB_BUSY	((struct task_struct *)1UL)

static struct scl_tab_ent {
	struct task_struct *task;
	const void *lock;
	u64 value;
} scl_tab[1 << SCL_TAB_BITS];

bool scl_tab_put(const void *lock, u64 value)
{
	unsigned long h = hash_ptr(current, SCL_TAB_BITS);
	int i;

	for (i = 0; i < SCL_TAB_PROBE; i++) {
		struct scl_tab_ent *e = &scl_tab[(h + i) & ((1 << SCL_TAB_BITS) - 1)];

		if (cmpxchg(&e->task, NULL, SCL_TAB_BUSY) == NULL) {
			WRITE_ONCE(e->lock, lock);
			WRITE_ONCE(e->value, value);
			smp_store_release(&e->task, current);
			return true;
		}
	}
	return false;
}

bool scl_tab_get(struct task_struct *t, const void *lock, u64 *value)
{
	unsigned long h = hash_ptr(t, SCL_TAB_BITS);
	int i;

	for (i = 0; i < SCL_TAB_PROBE; i++) {
		struct scl_tab_ent *e = &scl_tab[(h + i) & ((1 << SCL_TAB_BITS) - 1)];

		if (smp_load_acquire(&e->task) == t && READ_ONCE(e->lock) == lock) {
			*value = READ_ONCE(e->value);
			return true;
		}
	}
	return false;
}

bool scl_tab_take(const void *lock, u64 *value)
{
	unsigned long h = hash_ptr(current, SCL_TAB_BITS);
	int i;

	for (i = 0; i < SCL_TAB_PROBE; i++) {
		struct scl_tab_ent *e = &scl_tab[(h + i) & ((1 << SCL_TAB_BITS) - 1)];

		if (READ_ONCE(e->task) == current && READ_ONCE(e->lock) == lock) {
			if (value)
				*value = READ_ONCE(e->value);
			WRITE_ONCE(e->lock, NULL);
			smp_store_release(&e->task, NULL);
			return true;
		}
	}
	return false;
}

/* ---- layouts, checked against the running kernel's BTF -------------------------------- */

static struct btf *(*scl_get_btf_vmlinux)(void);
static s32 (*scl_btf_find_by_name_kind)(const struct btf *btf, const char *name, u8 kind);
static const char *(*scl_btf_name_by_offset)(const struct btf *btf, u32 offset);

static const struct btf_type *scl_btf_struct(const char *st, struct btf **btfp)
{
	struct btf *btf = scl_get_btf_vmlinux();
	s32 id;

	if (IS_ERR_OR_NULL(btf))
		return NULL;
	id = scl_btf_find_by_name_kind(btf, st, BTF_KIND_STRUCT);
	if (id < 0)
		return NULL;
	*btfp = btf;
	return btf_type_by_id(btf, id);
}

int scl_btf_check_size(const char *st, u32 size)
{
	struct btf *btf;
	const struct btf_type *t = scl_btf_struct(st, &btf);

	if (!t) {
		pr_err("struct %s is not in the kernel's BTF\n", st);
		return -ENOENT;
	}
	if (t->size != size) {
		pr_err("struct %s is %u bytes in this kernel, the module expects %u\n", st,
		       t->size, size);
		return -EINVAL;
	}
	return 0;
}

int scl_btf_check_member(const char *st, const char *member, u32 byte_offset)
{
	struct btf *btf;
	const struct btf_type *t = scl_btf_struct(st, &btf);
	const struct btf_member *m;
	int i;

	if (!t) {
		pr_err("struct %s is not in the kernel's BTF\n", st);
		return -ENOENT;
	}
	for_each_member(i, t, m) {
		if (strcmp(scl_btf_name_by_offset(btf, m->name_off), member))
			continue;
		if (__btf_member_bit_offset(t, m) != byte_offset * 8) {
			pr_err("%s.%s is at bit %u in this kernel, the module expects byte %u\n",
			       st, member, __btf_member_bit_offset(t, m), byte_offset);
			return -EINVAL;
		}
		return 0;
	}
	pr_err("struct %s has no member %s in this kernel\n", st, member);
	return -ENOENT;
}

/* ---- redirection ----------------------------------------------------------------------- */

struct scl_patch {
	const char *name;	/* the kernel function */
	void *replacement;
	unsigned long addr;
	struct ftrace_ops ops;
	bool registered;
};

static void notrace scl_ftrace_handler(unsigned long ip, unsigned long parent_ip,
				       struct ftrace_ops *ops, struct ftrace_regs *fregs)
{
	struct scl_patch *p = container_of(ops, struct scl_patch, ops);
	struct pt_regs *regs = ftrace_get_regs(fregs);

	/* Our own calls of the kernel's functions run the kernel's code. */
	if (!regs || within_module(parent_ip, THIS_MODULE))
		return;
	if (!scl_governed((void *)regs->di))
		return;
	ftrace_instruction_pointer_set(fregs, (unsigned long)p->replacement);
}

#define SCL_PATCH(fn, repl) { .name = fn, .replacement = repl }
static struct scl_patch scl_patches[] = {
	SCL_PATCH("native_queued_spin_lock_slowpath", scl_qspin_slowpath),
	SCL_PATCH("mutex_lock", scl_mutex_lock),
	SCL_PATCH("mutex_unlock", scl_mutex_unlock),
	SCL_PATCH("down_read", scl_down_read),
	SCL_PATCH("up_read", scl_up_read),
	SCL_PATCH("down_write", scl_down_write),
	SCL_PATCH("up_write", scl_up_write),
};

static void scl_unpatch(void)
{
	int i;

	for (i = ARRAY_SIZE(scl_patches) - 1; i >= 0; i--) {
		struct scl_patch *p = &scl_patches[i];

		if (!p->registered)
			continue;
		unregister_ftrace_function(&p->ops);
		ftrace_set_filter_ip(&p->ops, p->addr, 1, 0);
		p->registered = false;
	}
}

static int scl_patch_all(void)
{
	int i, err;

	for (i = 0; i < ARRAY_SIZE(scl_patches); i++) {
		struct scl_patch *p = &scl_patches[i];

		p->addr = scl_kallsyms_lookup_name(p->name);
		if (!p->addr) {
			pr_err("%s not found in kallsyms\n", p->name);
			err = -ENOENT;
			goto fail;
		}
		p->ops.func = scl_ftrace_handler;
		p->ops.flags = FTRACE_OPS_FL_SAVE_REGS | FTRACE_OPS_FL_IPMODIFY;
		err = ftrace_set_filter_ip(&p->ops, p->addr, 0, 0);
		if (err) {
			pr_err("cannot trace %s: %d\n", p->name, err);
			goto fail;
		}
		err = register_ftrace_function(&p->ops);
		if (err) {
			ftrace_set_filter_ip(&p->ops, p->addr, 1, 0);
			pr_err("cannot redirect %s: %d\n", p->name, err);
			goto fail;
		}
		p->registered = true;
	}
	return 0;
fail:
	scl_unpatch();
	return err;
}

/* ---- the policy ------------------------------------------------------------------------ */

static void scl_policy_free(struct scl_policy *p)
{
	int h;

	if (!p)
		return;
	for (h = 0; h < SCL_NR_HOOKS; h++)
		if (p->progs[h])
			bpf_prog_put(p->progs[h]);
	kfree(p);
}

static int scl_set_error(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vscnprintf(scl_error, sizeof(scl_error), fmt, ap);
	va_end(ap);
	pr_err("%s\n", scl_error);
	return err;
}

static bool scl_valid_name(const char *s)
{
	if (!*s || strlen(s) > SCL_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum(*s) && *s != '_' && *s != '-')
			return false;
	return true;
}

/* Fetches /sys/fs/bpf/scl/NAME/prog_HOOK for every hook and checks each program. */
static int scl_policy_open(const char *name, u32 kinds, struct scl_policy **out)
{
	struct scl_policy *p = kzalloc(sizeof(*p), GFP_KERNEL);
	char *path;
	int h, err = 0, found = 0;

	path = kmalloc(PATH_MAX, GFP_KERNEL);
	if (!p || !path) {
		kfree(path);
		kfree(p);
		return -ENOMEM;
	}
	strscpy(p->name, name, sizeof(p->name));
	p->kinds = kinds;
	for (h = 0; h < SCL_NR_HOOKS; h++) {
		struct bpf_prog *prog;

		snprintf(path, PATH_MAX, "/sys/fs/bpf/scl/%s/prog_%s", name, scl_hook_names[h]);
		/*
		 * `sclc load --target syncord` loads lock-context programs as raw tracepoint
		 * programs: non-sleepable, read-only context. A syscall program is accepted
		 * where the kernel lets it be non-sleepable (checked below).
		 */
		prog = bpf_prog_get_type_path(path, BPF_PROG_TYPE_RAW_TRACEPOINT);
		if (IS_ERR(prog) && PTR_ERR(prog) == -EINVAL)
			prog = bpf_prog_get_type_path(path, BPF_PROG_TYPE_SYSCALL);
		if (IS_ERR(prog)) {
			err = PTR_ERR(prog);
			if (err == -ENOENT) {
				err = 0;
				continue;
			}
			scl_set_error(err, "%s: not a lock-policy program (error %d): load it with sclc load --target syncord",
				      path, err);
			break;
		}
		p->progs[h] = prog;
		found++;
		if (prog->aux->sleepable) {
			err = scl_set_error(-EPERM, "%s is loaded sleepable; lock hooks run in atomic context: load it with sclc load, which loads lock programs non-sleepable",
					    path);
			break;
		}
		if (prog->aux->max_ctx_offset > sizeof(struct scl_ctx)) {
			err = scl_set_error(-EINVAL, "%s reads %u bytes of context, past the %zu of the ABI",
					    path, prog->aux->max_ctx_offset, sizeof(struct scl_ctx));
			break;
		}
	}
	if (!err && !found)
		err = scl_set_error(-ENOENT, "no programs under /sys/fs/bpf/scl/%s: is it loaded (sclc ls)?",
				    name);
	kfree(path);
	if (err) {
		scl_policy_free(p);
		return err;
	}
	*out = p;
	return 0;
}

/* Holds the module while it has work to do: rmmod must not pull code from under hooks. */
static void scl_update_module_ref(void)
{
	bool busy = rcu_access_pointer(scl_active) || static_key_enabled(&scl_have_locks);

	if (busy && !scl_pinned_module) {
		__module_get(THIS_MODULE);
		scl_pinned_module = true;
	} else if (!busy && scl_pinned_module) {
		module_put(THIS_MODULE);
		scl_pinned_module = false;
	}
}

static void scl_reset_counters(void)
{
	int h;

	for (h = 0; h < SCL_NR_HOOKS; h++)
		atomic64_set(&scl_hook_calls[h], 0);
}

static int scl_activate(struct scl_policy *p)
{
	struct scl_policy *old;

	mutex_lock(&scl_config_mutex);
	old = rcu_replace_pointer(scl_active, p, lockdep_is_held(&scl_config_mutex));
	if (p)
		scl_reset_counters();
	scl_update_module_ref();
	mutex_unlock(&scl_config_mutex);
	/* Every hook that could still see the old programs is inside an RCU read section. */
	synchronize_rcu();
	scl_policy_free(old);
	if (p)
		pr_info("policy %s active\n", p->name);
	else if (old)
		pr_info("policy %s inactive: the kernel's own lock behaviour is back\n", old->name);
	return 0;
}

/* ---- the governed set ------------------------------------------------------------------- */

static int scl_lock_add(void *addr)
{
	int i, free = -1;

	for (i = 0; i < SCL_MAX_LOCKS; i++) {
		if (scl_locks[i].addr == addr)
			return 0;
		if (!scl_locks[i].addr && free < 0)
			free = i;
	}
	if (free < 0)
		return scl_set_error(-ENOSPC, "at most %d locks can be governed", SCL_MAX_LOCKS);
	for (i = 0; i < ARRAY_SIZE(scl_locks[free].c.v); i++)
		atomic64_set(&scl_locks[free].c.v[i], 0);
	atomic_set(&scl_locks[free].writers, 0);
	atomic_set(&scl_locks[free].bypass_inside, 0);
	WRITE_ONCE(scl_locks[free].addr, addr);
	if (!static_key_enabled(&scl_have_locks))
		static_branch_enable(&scl_have_locks);
	return 0;
}

static bool scl_any_lock(void)
{
	int i;

	for (i = 0; i < SCL_MAX_LOCKS; i++)
		if (scl_locks[i].addr)
			return true;
	return false;
}

static int scl_lock_remove(void *addr)
{
	int i, wait;

	for (i = 0; i < SCL_MAX_LOCKS; i++) {
		struct scl_lock *gl = &scl_locks[i];

		if (gl->addr != addr)
			continue;
		/*
		 * Readers inside without the count must leave through our up_read: announce a
		 * writer (no reader bypasses from now on, the same handshake as down_write) and
		 * wait for them. The announcement stays until the slot is reused.
		 */
		atomic_inc(&gl->writers);
		smp_mb__after_atomic();
		for (wait = 0; atomic_read(&gl->bypass_inside) && wait < 1000; wait++)
			msleep(1);
		if (atomic_read(&gl->bypass_inside)) {
			atomic_dec(&gl->writers);
			return scl_set_error(-EBUSY, "%px still has readers inside through the bypass after 1 s; try again",
					     addr);
		}
		WRITE_ONCE(gl->addr, NULL);
		if (!scl_any_lock())
			static_branch_disable(&scl_have_locks);
		return 0;
	}
	return scl_set_error(-ENOENT, "%px is not governed", addr);
}

/* ---- /sys/kernel/scl_hooks ----------------------------------------------------------------- */

static ssize_t policy_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	char name[SCL_NAME_MAX + 1];

	scl_hooks_policy_name(name, sizeof(name));
	return sysfs_emit(buf, "%s\n", name);
}

/* "NAME KIND[,KIND...]" activates /sys/fs/bpf/scl/NAME for those kinds; "-" deactivates. */
static ssize_t policy_store(struct kobject *kobj, struct kobj_attribute *attr,
			    const char *buf, size_t len)
{
	char line[256], *s = line, *name, *kinds, *k;
	struct scl_policy *p = NULL;
	u32 mask = 0;
	int err, i;

	if (len >= sizeof(line))
		return scl_set_error(-EINVAL, "policy: line too long");
	memcpy(line, buf, len);
	line[len] = 0;
	name = strsep(&s, " \n");
	if (!strcmp(name, "-") || !*name)
		return scl_activate(NULL) ?: len;
	if (!scl_valid_name(name))
		return scl_set_error(-EINVAL, "policy: bad name '%s'", name);
	kinds = strsep(&s, " \n");
	while (kinds && (k = strsep(&kinds, ","))) {
		for (i = 0; i < SCL_NR_KINDS; i++)
			if (!strcmp(k, scl_kind_names[i]))
				break;
		if (i == SCL_NR_KINDS)
			return scl_set_error(-EINVAL, "policy: unknown lock kind '%s'", k);
		mask |= BIT(i);
	}
	if (!mask)
		return scl_set_error(-EINVAL, "policy: give the lock kinds of its `for` list (spinlock,mutex,rwsem)");
	err = scl_policy_open(name, mask, &p);
	if (err)
		return err;
	scl_activate(p);
	return len;
}

static ssize_t locks_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	int i, n = 0;

	for (i = 0; i < SCL_MAX_LOCKS; i++) {
		void *a = READ_ONCE(scl_locks[i].addr);

		if (a)
			n += sysfs_emit_at(buf, n, "0x%lx\n", (unsigned long)a);
	}
	return n;
}

/* "+ADDR" governs the lock at ADDR, "-ADDR" stops, "clear" stops all. */
static ssize_t locks_store(struct kobject *kobj, struct kobj_attribute *attr,
			   const char *buf, size_t len)
{
	char line[64];
	unsigned long addr;
	int err = 0, i;

	if (len >= sizeof(line))
		return scl_set_error(-EINVAL, "locks: line too long");
	memcpy(line, buf, len);
	line[len] = 0;
	strim(line);
	mutex_lock(&scl_config_mutex);
	if (!strcmp(line, "clear")) {
		for (i = 0; i < SCL_MAX_LOCKS && !err; i++)
			if (scl_locks[i].addr)
				err = scl_lock_remove(scl_locks[i].addr);
	} else if ((line[0] == '+' || line[0] == '-') && !kstrtoul(line + 1, 0, &addr) &&
		   addr >= PAGE_OFFSET) {
		/* A kernel address: sclc resolves symbols through kallsyms. */
		err = line[0] == '+' ? scl_lock_add((void *)addr) : scl_lock_remove((void *)addr);
	} else {
		err = scl_set_error(-EINVAL, "locks: expected +ADDR, -ADDR or clear (a kernel address), got '%s'",
				    line);
	}
	scl_update_module_ref();
	mutex_unlock(&scl_config_mutex);
	return err ?: len;
}

static ssize_t stats_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	static const char *const names[] = {
		"acquisitions", "contended", "handoffs", "rounds", "mixed", "to_shuffler_node",
		"moved", "bypass_admitted", "bypassed", "bypass_refused", "bypass_released",
		"bypass_disagreed", "nested", "slept", "slept_ns", "sleep_skipped",
	};
	char name[SCL_NAME_MAX + 1];
	int i, h, n;

	BUILD_BUG_ON(ARRAY_SIZE(names) != sizeof(struct scl_lock_stats) / sizeof(u64));
	scl_hooks_policy_name(name, sizeof(name));
	n = sysfs_emit(buf, "policy %s\n", *name ? name : "-");
	for (h = 0; h < SCL_NR_HOOKS; h++)
		n += sysfs_emit_at(buf, n, "hook %s %lld\n", scl_hook_names[h],
				   atomic64_read(&scl_hook_calls[h]));
	for (i = 0; i < SCL_MAX_LOCKS; i++) {
		struct scl_lock *gl = &scl_locks[i];
		void *a = READ_ONCE(gl->addr);
		int k;

		if (!a)
			continue;
		n += sysfs_emit_at(buf, n, "lock 0x%lx", (unsigned long)a);
		for (k = 0; k < ARRAY_SIZE(names); k++)
			n += sysfs_emit_at(buf, n, " %s %lld", names[k], atomic64_read(&gl->c.v[k]));
		n += sysfs_emit_at(buf, n, "\n");
	}
	return n;
}

static ssize_t error_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", scl_error);
}

static ssize_t abi_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "1\n");
}

static struct kobj_attribute scl_attrs[] = {
	__ATTR(policy, 0600, policy_show, policy_store),
	__ATTR(locks, 0600, locks_show, locks_store),
	__ATTR_RO(stats),
	__ATTR_RO(error),
	__ATTR_RO(abi),
};
static struct attribute *scl_attr_list[ARRAY_SIZE(scl_attrs) + 1];
static const struct attribute_group scl_group = { .attrs = scl_attr_list };
static struct kobject *scl_kobj;

/* ---- for test modules -------------------------------------------------------------------- */

int scl_hooks_lock_stats(const void *lock, struct scl_lock_stats *out)
{
	int i, k;

	for (i = 0; i < SCL_MAX_LOCKS; i++) {
		u64 *v = (u64 *)out;

		if (READ_ONCE(scl_locks[i].addr) != lock)
			continue;
		for (k = 0; k < ARRAY_SIZE(scl_locks[i].c.v); k++)
			v[k] = atomic64_read(&scl_locks[i].c.v[k]);
		return 0;
	}
	return -ENOENT;
}
EXPORT_SYMBOL_GPL(scl_hooks_lock_stats);

void scl_hooks_hook_calls(u64 out[SCL_NR_HOOKS])
{
	int h;

	for (h = 0; h < SCL_NR_HOOKS; h++)
		out[h] = atomic64_read(&scl_hook_calls[h]);
}
EXPORT_SYMBOL_GPL(scl_hooks_hook_calls);

void scl_hooks_policy_name(char *buf, size_t len)
{
	struct scl_policy *p;

	rcu_read_lock();
	p = rcu_dereference(scl_active);
	strscpy(buf, p ? p->name : "", len);
	rcu_read_unlock();
}
EXPORT_SYMBOL_GPL(scl_hooks_policy_name);

/* ---- load and unload ----------------------------------------------------------------------- */

static int scl_resolve_kallsyms(void)
{
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name" };
	int err = register_kprobe(&kp);

	if (err) {
		pr_err("cannot find kallsyms_lookup_name (kprobes: %d)\n", err);
		return err;
	}
	scl_kallsyms_lookup_name = (void *)kp.addr;
	unregister_kprobe(&kp);
	scl_get_btf_vmlinux = (void *)scl_kallsyms_lookup_name("bpf_get_btf_vmlinux");
	scl_btf_find_by_name_kind = (void *)scl_kallsyms_lookup_name("btf_find_by_name_kind");
	scl_btf_name_by_offset = (void *)scl_kallsyms_lookup_name("btf_name_by_offset");
	if (!scl_get_btf_vmlinux || !scl_btf_find_by_name_kind || !scl_btf_name_by_offset) {
		pr_err("the kernel's BTF functions are not in kallsyms\n");
		return -ENOENT;
	}
	return 0;
}

static long scl_inflight_sum(void)
{
	long n = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		n += per_cpu(scl_inflight, cpu);
	return n;
}

static int __init scl_init(void)
{
	int err, i;

	err = scl_resolve_kallsyms();
	if (err)
		return err;
	/* Refuse to load where a private layout differs from what this module was built for. */
	err = scl_qspin_init() ?: scl_mutex_init();
	if (err) {
		pr_err("this kernel's lock internals differ from what the module supports; not loading\n");
		return err;
	}
	for (i = 0; i < ARRAY_SIZE(scl_attrs); i++)
		scl_attr_list[i] = &scl_attrs[i].attr;
	scl_kobj = kobject_create_and_add("scl_hooks", kernel_kobj);
	if (!scl_kobj)
		return -ENOMEM;
	err = sysfs_create_group(scl_kobj, &scl_group);
	if (err)
		goto put;
	err = scl_patch_all();
	if (err)
		goto put;
	pr_info("ready: ABI v1, no lock governed\n");
	return 0;
put:
	kobject_put(scl_kobj);
	return err;
}

static void __exit scl_exit(void)
{
	/* The module is only removable with no policy and no governed lock (see
	 * scl_update_module_ref), so no new call enters our code; wait for the last ones. */
	kobject_put(scl_kobj);
	scl_unpatch();
	synchronize_rcu();
	while (scl_inflight_sum())
		msleep(1);
	pr_info("removed\n");
}

module_init(scl_init);
module_exit(scl_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("The sclc authors");
MODULE_DESCRIPTION("Runs sclc lock policies inside the kernel's mutex, spinlock and rwsem code");
