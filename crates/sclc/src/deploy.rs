//! Deployment: `sclc load FILE --pin NAME`, `sclc ls`, `sclc unload NAME` and
//! `sclc map NAME get|set|dump|delete ...`.
//!
//! A loaded policy is pinned under `/sys/fs/bpf/scl/NAME/` (the layout is documented in
//! `scl_loader::pin` and docs/abi.md §4), so it outlives `sclc`. On the stock target its
//! tracepoint programs are attached and the links pinned; on the syncord and sim targets the
//! programs are pinned by hook name for a kernel with lock-policy hooks, and not attached.
//! `sclc map` reads and writes the pinned maps through `scl_loader::pinned`, the library
//! applications use, with keys and values typed from the policy's BTF.

use crate::build::default_target;
use crate::check::TargetArg;
use crate::{source, ColorArg, Status};
use scl_catalogue::Target;
use scl_diagnostics::render::Format;
use scl_diagnostics::{Diagnostic, Files};
use scl_loader::kmod::{self, KmodError, Module};
use scl_loader::pin::{self, PinError, PolicyPin, SCL_ROOT};
use scl_loader::pinned::{Map, Policy, Value};
use std::path::{Path, PathBuf};

/// How `ls` and `map` print.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum OutFormat {
    /// For people.
    Table,
    /// JSON, for scripts.
    Json,
}

/// Arguments of `sclc load`.
#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// The policy to compile and load.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Pin it as NAME, under /sys/fs/bpf/scl/NAME/.
    #[arg(long, value_name = "NAME", required = true)]
    pin: String,
    /// The target; default: `stock` if every hook of the policy runs there, else `syncord`.
    #[arg(long, value_enum)]
    target: Option<TargetArg>,
    /// Set a config value before loading: `--set NAME=VALUE` (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// syncord: a lock the policy governs, by kernel symbol (as /proc/kallsyms names it)
    /// or address (repeatable). Only governed locks run the policy.
    #[arg(long = "lock", value_name = "SYMBOL|ADDR")]
    locks: Vec<String>,
    /// syncord: pin the programs without activating them in the kernel's lock-hook module
    /// (for a kernel without it, or to activate later).
    #[arg(long)]
    pin_only: bool,
    /// When to colour diagnostics.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    color: ColorArg,
}

/// Arguments of `sclc ls`.
#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
    format: OutFormat,
}

/// Arguments of `sclc unload`.
#[derive(clap::Args, Debug)]
pub struct UnloadArgs {
    /// The name the policy was pinned as.
    #[arg(value_name = "NAME")]
    name: String,
}

/// Arguments of `sclc map`.
#[derive(clap::Args, Debug)]
pub struct MapArgs {
    /// The name the policy was pinned as.
    #[arg(value_name = "NAME")]
    name: String,
    #[command(subcommand)]
    op: MapOp,
    /// Output format of `get` and `dump`.
    #[arg(long, value_enum, default_value_t = OutFormat::Table, global = true)]
    format: OutFormat,
}

/// What to do with a pinned map. Keys and values are typed from the policy: integers in
/// decimal or 0x hex, `true`/`false`, structs as `field=value,field=value` (missing fields
/// zero), arrays as `[a,b,c]`. A value that does not fit its type is refused (exit 2).
#[derive(clap::Subcommand, Debug)]
pub enum MapOp {
    /// Print the entry under KEY (`KEY => VALUE`, or `KEY => none`).
    Get {
        /// The map.
        map: String,
        /// The key.
        #[arg(allow_hyphen_values = true)]
        key: String,
    },
    /// Write VALUE under KEY (the policy's own maps; the `hidden_...` maps sclc added are
    /// read-only). VALUE may be written as `dump` prints it.
    Set {
        /// The map.
        map: String,
        /// The key.
        #[arg(allow_hyphen_values = true)]
        key: String,
        /// The value.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Print every entry, one `KEY => VALUE` line each.
    Dump {
        /// The map.
        map: String,
    },
    /// Remove the entry under KEY (nothing to do when there is none).
    Delete {
        /// The map.
        map: String,
        /// The key.
        #[arg(allow_hyphen_values = true)]
        key: String,
    },
}

/// Prints a deployment error and picks the exit status: every one is a usage or
/// environment problem (2).
fn fail(e: &PinError) -> Status {
    errln!("sclc: error: {e}");
    if let PinError::Exists { name, .. } = e {
        errln!("  help: unload it first with `sclc unload {name}`, or pick another name");
    }
    Status::Usage
}

/// Runs `sclc load`.
pub fn load(args: LoadArgs) -> Status {
    if let Err(e) = pin::check_name(&args.pin) {
        return fail(&e);
    }
    let text = match source::read(&args.file) {
        Ok(t) => t,
        Err(e) => {
            errln!("sclc: error: cannot read `{}`: {e}", args.file.display());
            return Status::Usage;
        }
    };
    let target = args.target.map_or_else(|| default_target(&text), TargetArg::target);
    let mut files = Files::new();
    let id = files.add(args.file.display().to_string(), text);
    let color = args.color.enabled();
    let report = |files: &Files, d: &[Diagnostic]| {
        crate::output::diagnostics(files, d, Format::Human, color);
    };
    let out = match scl_driver::compile(&mut files, id, target) {
        Ok(o) => o,
        Err(d) => {
            report(&files, &d);
            return Status::PolicyErrors;
        }
    };
    report(&files, &out.warnings);
    let overrides = match crate::run::config_overrides(&out, &args.set) {
        Ok(o) => o,
        Err(msg) => {
            errln!("sclc: error: {msg}");
            return Status::Usage;
        }
    };
    if let Err(e) = scl_loader::check_support() {
        errln!("sclc: error: {e}");
        return Status::Usage;
    }
    let activate = target == Target::Syncord && !args.pin_only;
    if !args.locks.is_empty() && !activate {
        errln!("sclc: error: `--lock` names the locks a policy governs in the lock-hook module: it applies to `--target syncord` without `--pin-only`");
        return Status::Usage;
    }
    let governed = if activate {
        match prepare_activation(&args) {
            Ok(g) => Some(g),
            Err(msg) => {
                errln!("sclc: error: {msg}");
                return Status::Usage;
            }
        }
    } else {
        None
    };
    let root = match pin::ensure_bpffs() {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let dir = root.join(&args.pin);
    if dir.exists() {
        return fail(&PinError::Exists { name: args.pin.clone(), dir });
    }
    // Programs the lock-hook module runs inside lock code must not be sleepable.
    let opts = scl_loader::Options { lock_context: target == Target::Syncord };
    let mut loaded = match crate::build::load_or_report("scl", &files, id, &out.object, &overrides, &report, opts) {
        Ok(l) => l,
        Err(status) => return status,
    };
    let hidden: Vec<&str> = out.module.maps.values().filter(|m| m.origin.is_hidden()).map(|m| m.name.as_str()).collect();
    let attach = target == Target::Stock;
    let pinned = match loaded.pin_all(&dir, attach, &hidden) {
        Ok(p) => p,
        Err(e) => {
            if attach && matches!(e, PinError::Kernel { .. }) {
                errln!("sclc: error: {e}\n  note: the lock tracepoints need Linux 5.19 or later with BTF");
                return Status::Usage;
            }
            return fail(&e);
        }
    };
    drop(loaded);
    let kinds: Vec<&str> = out.program.policy.as_ref().map(|p| p.kinds.iter().map(|k| k.name()).collect()).unwrap_or_default();
    if let Some((module, locks)) = &governed {
        if let Err(e) = activate_in_module(module, &args.pin, &kinds, locks) {
            errln!("sclc: error: {e}");
            let _ = pin::unpin(&pinned.dir);
            errln!("  note: nothing stays loaded: `{}` was unpinned again", args.pin);
            return Status::Usage;
        }
    }
    let state = if attach {
        "attached to the lock tracepoints".to_string()
    } else if let Some((_, locks)) = &governed {
        let names: Vec<String> = locks.iter().map(|(a, n)| if n.is_empty() { format!("{a:#x}") } else { format!("{n} ({a:#x})") }).collect();
        format!("active in the kernel's lock-hook module for {} on {}", kinds.join(", "), names.join(", "))
    } else {
        "not active: pinned by hook name for a kernel with the lock-hook module (docs/abi.md §4)".to_string()
    };
    outln!(
        "pinned `{}` ({target}) at {}: {} program{}, {state}; {} map{}",
        args.pin,
        pinned.dir.display(),
        pinned.programs.len(),
        if pinned.programs.len() == 1 { "" } else { "s" },
        pinned.maps.len(),
        if pinned.maps.len() == 1 { "" } else { "s" },
    );
    outln!("  unload with `sclc unload {}`", args.pin);
    Status::Ok
}

/// The module and the locks to govern (address, the name it was given by), checked before
/// anything is loaded: the module is there, no other policy is active in it, every lock
/// resolves.
fn prepare_activation(args: &LoadArgs) -> Result<(Module, Vec<(u64, String)>), String> {
    let module = Module::open().map_err(|e| format!("{e}\n  help: `--pin-only` pins the policy without running it"))?;
    let locks = module_locks(&module, &args.locks)?;
    let already = module.locks().map_err(|e| e.to_string())?;
    if locks.is_empty() && already.is_empty() {
        return Err("name the locks the policy governs with `--lock SYMBOL|ADDR`: the module never applies a policy to every lock of the machine".into());
    }
    Ok((module, locks))
}

/// Checks that no policy is active in `module` and resolves `--lock` arguments (symbols or
/// addresses) to (address, the name given: empty for an address). Shared by `sclc load` and
/// `sclc record --module`.
pub(crate) fn module_locks(module: &Module, args: &[String]) -> Result<Vec<(u64, String)>, String> {
    match module.active() {
        Ok(Some(other)) => {
            return Err(format!("policy `{other}` is active in the lock-hook module, which runs one policy at a time\n  help: `sclc unload {other}` first"));
        }
        Ok(None) => {}
        Err(e) => return Err(e.to_string()),
    }
    let mut locks = Vec::new();
    for l in args {
        locks.push(match kmod::parse_addr(l) {
            Some(a) => (a, String::new()),
            None => match scl_loader::ksyms::find_lock(l) {
                Ok(a) => (a, l.clone()),
                Err(e) => return Err(format!("--lock {l}: {e}\n  help: give a static lock's symbol (`rtnl_mutex`) or its address (0x...)")),
            },
        });
    }
    Ok(locks)
}

/// Activates the pinned policy `name` and governs `locks`; undoes both on failure. Returns
/// the locks it governed that were not governed before.
///
/// Activated first: a process killed in between leaves a policy active on no lock or on
/// some of its locks, each run whole by it, never a governed lock waiting for its policy.
pub(crate) fn activate_in_module(module: &Module, name: &str, kinds: &[&str], locks: &[(u64, String)]) -> Result<Vec<u64>, KmodError> {
    let before = module.locks()?;
    module.activate(name, kinds)?;
    let mut ours = Vec::new();
    for (a, _) in locks {
        if let Err(e) = module.govern(*a) {
            let _ = module.deactivate();
            for a in &ours {
                let _ = module.release(*a);
            }
            return Err(e);
        }
        if !before.contains(a) && !ours.contains(a) {
            ours.push(*a);
        }
    }
    Ok(ours)
}

/// Runs `sclc ls`.
pub fn ls(args: LsArgs) -> Status {
    let policies = match pin::list(Path::new(SCL_ROOT)) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let incomplete = pin::incomplete(Path::new(SCL_ROOT));
    // What the lock-hook module runs, if this kernel has it.
    let kernel = Module::open().ok().and_then(|m| m.stats().ok());
    match args.format {
        OutFormat::Json => {
            let mut v: Vec<serde_json::Value> = policies
                .iter()
                .map(|p| {
                    let mut v = policy_json(p);
                    if let Some(k) = kernel_state(p, kernel.as_ref()) {
                        v["kernel"] = k;
                    }
                    if let Some((pid, alive)) = recorder(&p.name) {
                        v["recorder"] = serde_json::json!({ "pid": pid, "alive": alive });
                    }
                    v
                })
                .collect();
            v.extend(incomplete.iter().map(|i| {
                serde_json::json!({
                    "name": i.name, "dir": i.dir.display().to_string(), "complete": false,
                    "loading": i.loading, "pid": i.pid, "attached": false, "programs": [], "maps": [],
                })
            }));
            outln!("{}", serde_json::Value::from(v));
        }
        OutFormat::Table => {
            if policies.is_empty() && incomplete.is_empty() {
                outln!("no policies pinned under {SCL_ROOT}");
            }
            for p in &policies {
                out!("{}", policy_table(p));
                if let Some(k) = kernel_state(p, kernel.as_ref()) {
                    outln!("  kernel   {}", kernel_line(&k));
                }
                if let Some((pid, alive)) = recorder(&p.name) {
                    if alive {
                        outln!("  recorder `sclc record --module`, process {pid}: removed when it ends");
                    } else {
                        outln!("  recorder `sclc record --module` of process {pid}, which was killed: `sclc unload {}` or the next `sclc record --module` removes it", p.name);
                    }
                }
            }
            for i in &incomplete {
                let why = if i.loading {
                    format!("being loaded by process {}", i.pid)
                } else {
                    format!("a load killed before it finished (process {}); `sclc unload {}` removes it", i.pid, i.name)
                };
                outln!("{}  (incomplete: {why}; {})", i.name, i.dir.display());
            }
        }
    }
    Status::Ok
}

/// For the module recorder of `sclc record --module` (pinned as `sclc-record-PID`): its
/// process and whether it is alive.
fn recorder(name: &str) -> Option<(u32, bool)> {
    let pid = crate::record::module::recorder_pid(name)?;
    Some((pid, Path::new(&format!("/proc/{pid}")).exists()))
}

/// For a policy of lock-context programs: whether the lock-hook module runs it, on which
/// locks, and how often each hook ran. `None` for tracepoint policies.
fn kernel_state(p: &PolicyPin, kernel: Option<&kmod::Stats>) -> Option<serde_json::Value> {
    // Lock-context programs: raw tracepoint programs that nothing attached (`--target
    // syncord`), or syscall programs (`--pin-only`, sim).
    if !p.programs.iter().any(|g| !g.attached && matches!(g.prog_type.as_str(), "syscall" | "raw_tracepoint")) {
        return None;
    }
    let Some(k) = kernel else {
        return Some(serde_json::json!({ "module": false, "active": false }));
    };
    if k.policy.as_deref() != Some(p.name.as_str()) {
        return Some(serde_json::json!({ "module": true, "active": false, "running": k.policy }));
    }
    let calls: serde_json::Map<String, serde_json::Value> = k.hook_calls.iter().map(|(h, n)| (h.clone(), (*n).into())).collect();
    let locks: Vec<serde_json::Value> = k
        .locks
        .iter()
        .map(|l| {
            let counters: serde_json::Map<String, serde_json::Value> = l.counters.iter().map(|(c, n)| (c.clone(), (*n).into())).collect();
            serde_json::json!({ "addr": format!("{:#x}", l.addr), "counters": counters })
        })
        .collect();
    Some(serde_json::json!({ "module": true, "active": true, "locks": locks, "hook_calls": calls }))
}

fn kernel_line(k: &serde_json::Value) -> String {
    if k["module"] == false {
        return "not running: this kernel has no lock-hook module (kernel/)".into();
    }
    if k["active"] == false {
        return match k["running"].as_str() {
            Some(other) => format!("not active: the lock-hook module runs `{other}`"),
            None => "not active in the lock-hook module".into(),
        };
    }
    let locks: Vec<&str> = k["locks"].as_array().into_iter().flatten().filter_map(|l| l["addr"].as_str()).collect();
    let calls: Vec<String> = k["hook_calls"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, n)| n.as_u64() != Some(0))
        .map(|(h, n)| format!("{h} {n}"))
        .collect();
    format!(
        "active in the lock-hook module on {}; hook calls: {}",
        if locks.is_empty() { "no lock".to_string() } else { locks.join(", ") },
        if calls.is_empty() { "none yet".to_string() } else { calls.join(", ") }
    )
}

fn policy_json(p: &PolicyPin) -> serde_json::Value {
    let programs: Vec<serde_json::Value> = p
        .programs
        .iter()
        .map(|g| serde_json::json!({ "hook": g.hook, "id": g.id, "type": g.prog_type, "attached": g.attached }))
        .collect();
    let maps: Vec<serde_json::Value> = p
        .maps
        .iter()
        .map(|m| {
            serde_json::json!({
                "name": m.name, "hidden": m.hidden, "writable": !m.hidden, "id": m.id, "type": m.map_type, "key_size": m.key_size,
                "value_size": m.value_size, "max_entries": m.max_entries, "entries": m.entries,
            })
        })
        .collect();
    serde_json::json!({
        "name": p.name,
        "dir": p.dir.display().to_string(),
        "complete": true,
        "attached": p.programs.iter().any(|g| g.attached),
        "programs": programs,
        "maps": maps,
    })
}

fn policy_table(p: &PolicyPin) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let attached = p.programs.iter().filter(|g| g.attached).count();
    let state = match attached {
        0 => "not attached".to_string(),
        n if n == p.programs.len() => "attached".to_string(),
        n => format!("{n} of {} attached", p.programs.len()),
    };
    let _ = writeln!(s, "{}  ({} programs, {state}; {})", p.name, p.programs.len(), p.dir.display());
    let width = p.programs.iter().map(|g| g.hook.len()).chain(p.maps.iter().map(|m| m.name.len())).max().unwrap_or(0);
    for g in &p.programs {
        let _ = writeln!(
            s,
            "  program  {:<width$}  id {:<6} {:<10} {}",
            g.hook,
            g.id,
            g.prog_type,
            if g.attached { "attached" } else { "not attached" }
        );
    }
    for m in &p.maps {
        let _ = writeln!(
            s,
            "  map      {:<width$}  id {:<6} {:<14} key {:>3}  value {:>5}  {}/{} entries{}",
            m.name,
            m.id,
            m.map_type,
            m.key_size,
            m.value_size,
            m.entries,
            m.max_entries,
            if m.hidden { "  (read-only)" } else { "" }
        );
    }
    s
}

/// Runs `sclc unload`.
pub fn unload(args: UnloadArgs) -> Status {
    if let Err(e) = pin::check_name(&args.name) {
        return fail(&e);
    }
    let root = Path::new(SCL_ROOT);
    if let Err(e) = pin::require_root() {
        return fail(&e);
    }
    let dir = root.join(&args.name);
    // A load of this name killed before it finished leaves an incomplete directory.
    let stale = match pin::remove_stale(root, &args.name) {
        Ok(n) => n,
        Err(e) => return fail(&e),
    };
    if !dir.is_dir() {
        if stale > 0 {
            outln!("removed the incomplete load of `{}`", args.name);
            return Status::Ok;
        }
        return fail(&PinError::NotFound { what: "pinned policy".into(), within: None, name: args.name, available: pin::names(root) });
    }
    match undeploy(&args.name, &dir) {
        Ok(deactivated) => {
            if deactivated {
                outln!("deactivated `{}` in the lock-hook module: its locks run the kernel's own code again", args.name);
            }
            outln!("unloaded `{}`", args.name);
            Status::Ok
        }
        Err(e) => {
            errln!("sclc: error: {e}");
            Status::Usage
        }
    }
}

/// Takes the pinned policy `name` (at `dir`) out of the kernel: the module first (once it
/// has let go of the programs, they can be unpinned; its governed locks are released), then
/// the pins. True when the module was running it. Shared by `sclc unload` and `sclc record
/// --module`.
pub(crate) fn undeploy(name: &str, dir: &Path) -> Result<bool, String> {
    let mut deactivated = false;
    if let Ok(module) = Module::open() {
        if module.active().ok().flatten().as_deref() == Some(name) {
            module.deactivate().and_then(|()| module.release_all()).map_err(|e| e.to_string())?;
            deactivated = true;
        }
    }
    pin::unpin(dir).map_err(|e| e.to_string())?;
    Ok(deactivated)
}

/// Runs `sclc map`.
pub fn map(args: MapArgs) -> Status {
    match map_op(&args) {
        Ok(()) => Status::Ok,
        Err(e) => fail(&e),
    }
}

fn open(name: &str, map: &str) -> Result<Map, PinError> {
    pin::require_root()?;
    Policy::open(name)?.map(map)
}

fn map_op(args: &MapArgs) -> Result<(), PinError> {
    let json = args.format == OutFormat::Json;
    match &args.op {
        MapOp::Get { map, key } => {
            let m = open(&args.name, map)?;
            let k = m.parse_key(key)?;
            let v = m.get(&k)?;
            if json {
                outln!("{}", serde_json::json!({ "key": to_json(&k), "value": v.as_ref().map_or(serde_json::Value::Null, to_json) }));
            } else {
                outln!("{k} => {}", v.map_or_else(|| "none".to_string(), |v| v.to_string()));
            }
        }
        MapOp::Set { map, key, value } => {
            let m = open(&args.name, map).map_err(writable_only)?;
            let k = m.parse_key(key)?;
            let v = m.parse_value(value)?;
            m.set(&k, &v)?;
        }
        MapOp::Dump { map } => {
            let m = open(&args.name, map)?;
            let entries = m.dump()?;
            if json {
                let rows: Vec<serde_json::Value> =
                    entries.iter().map(|(k, v)| serde_json::json!({ "key": to_json(k), "value": to_json(v) })).collect();
                outln!("{}", serde_json::Value::from(rows));
            } else {
                for (k, v) in entries {
                    outln!("{k} => {v}");
                }
            }
        }
        MapOp::Delete { map, key } => {
            let m = open(&args.name, map).map_err(writable_only)?;
            let k = m.parse_key(key)?;
            if !m.delete(&k)? {
                errln!("sclc: note: `{map}` had no entry under {k}");
            }
        }
    }
    Ok(())
}

/// For `set` and `delete`: a missing map's alternatives are the maps that can be written
/// (not the `hidden_...` ones sclc added, which are read-only).
fn writable_only(e: PinError) -> PinError {
    match e {
        PinError::NotFound { what, within, name, available } => PinError::NotFound {
            what,
            within,
            name,
            available: available.into_iter().filter(|m| !m.starts_with(pin::HIDDEN_PREFIX)).collect(),
        },
        e => e,
    }
}

/// A value as JSON: integers as numbers (as strings beyond 64 bits), structs as objects.
fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Int(n) => {
            if let Ok(i) = i64::try_from(*n) {
                i.into()
            } else if let Ok(u) = u64::try_from(*n) {
                u.into()
            } else {
                n.to_string().into()
            }
        }
        Value::Bool(b) => (*b).into(),
        Value::Struct(fields) => serde_json::Value::Object(fields.iter().map(|(n, v)| (n.clone(), to_json(v))).collect()),
        Value::Array(items) | Value::PerCpu(items) => items.iter().map(to_json).collect(),
        Value::Bytes(_) => v.to_string().into(),
    }
}
