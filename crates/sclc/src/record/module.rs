//! `sclc record --module`: recording a governed lock's full hook set in the kernel's
//! lock-hook module (kernel/).
//!
//! The module recorder (`module_recorder.scl`, embedded) is deployed as `sclc load --target
//! syncord --lock ...` deploys a policy (deploy.rs: pinned under
//! /sys/fs/bpf/scl/sclc-record-PID, the locks governed, the policy activated) and taken out
//! again at the end (deactivated, the locks released, unpinned). Its name carries the
//! recording process's id: a deployment whose process is dead was left by a recording killed
//! before it could clean up (SIGKILL), and the next `sclc record --module` removes it (as
//! `sclc unload NAME` does).
//!
//! The stock tracepoints are not recorded beside the module's hooks: on a governed lock the
//! `contended` hook fires where `lock:contention_begin` does and `acquired` ends the wait, so
//! they would only say the same twice (docs/profiling.md).

use crate::deploy;
use scl_loader::kmod::Module;
use scl_loader::pin::{self, SCL_ROOT};
use std::path::{Path, PathBuf};

/// The module recorder policy's source.
pub const MODULE_RECORDER: &str = include_str!("module_recorder.scl");

/// The prefix of a module recorder deployment's pin name; the recording process's id follows.
pub const PREFIX: &str = "sclc-record-";

/// The recording process of a recorder deployment named `name`, if it is one.
pub fn recorder_pid(name: &str) -> Option<u32> {
    let pid = name.strip_prefix(PREFIX)?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || pid.starts_with('0') {
        return None;
    }
    pid.parse().ok()
}

/// True while process `pid` exists.
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The module, checked before anything is loaded, and the locks to govern (address, name
/// given). Removes the deployments of dead recordings first (a note each; their pins even
/// where the module is absent), then refuses when the module is absent or another policy
/// is active in it.
pub fn prepare(locks: &[String]) -> Result<(Module, Vec<(u64, String)>), String> {
    if locks.is_empty() {
        return Err("--module records the locks it governs in the lock-hook module: name them with `--lock SYMBOL|ADDR` (the module never governs every lock of the machine)".into());
    }
    pin::require_root().map_err(|e| e.to_string())?;
    let root = pin::ensure_bpffs().map_err(|e| e.to_string())?;
    for note in clean_stale(&root) {
        errln!("sclc: note: {note}");
    }
    let module = Module::open().map_err(|e| format!("--module: {e}\n  help: without --module, `sclc record` records the stock lock tracepoints"))?;
    let locks = deploy::module_locks(&module, locks)?;
    Ok((module, locks))
}

/// Removes the recorder deployments under `root` whose recording process is dead (complete
/// or incomplete); one sentence per deployment removed or that could not be.
pub fn clean_stale(root: &Path) -> Vec<String> {
    let mut notes = Vec::new();
    let me = std::process::id();
    for name in pin::names(root) {
        let Some(pid) = recorder_pid(&name) else { continue };
        if pid == me || alive(pid) {
            continue;
        }
        notes.push(match deploy::undeploy(&name, &root.join(&name)) {
            Ok(true) => format!("removed `{name}`, the module recorder of a recording that was killed (process {pid}): deactivated, its locks released, unpinned"),
            Ok(false) => format!("removed `{name}`, left pinned by a recording that was killed (process {pid})"),
            Err(e) => format!("cannot remove `{name}`, left by a recording that was killed (process {pid}): {e}"),
        });
    }
    for i in pin::incomplete(root) {
        if recorder_pid(&i.name).is_some() && !i.loading && !alive(i.pid) && pin::remove_stale(root, &i.name).is_ok() {
            notes.push(format!("removed the incomplete load of `{}` (process {} was killed)", i.name, i.pid));
        }
    }
    notes
}

/// A module recorder pinned and active.
pub struct Deployment {
    /// Its pin name.
    pub name: String,
    dir: PathBuf,
    module: Module,
    /// The locks it governed that were not governed before: released at the end.
    ours: Vec<u64>,
    active: bool,
}

/// Pins the loaded recorder as `sclc-record-PID`, governs `locks` and activates it for
/// `kinds`. On failure nothing stays: the pins are removed again.
pub fn deploy(loaded: &mut scl_loader::Loaded, hidden: &[&str], kinds: &[&str], module: Module, locks: Vec<(u64, String)>) -> Result<Deployment, String> {
    let name = format!("{PREFIX}{}", std::process::id());
    let dir = Path::new(SCL_ROOT).join(&name);
    if dir.exists() {
        // Our own pid's leftovers cannot be: a previous process of this id is dead.
        deploy::undeploy(&name, &dir)?;
    }
    let pinned = loaded.pin_all(&dir, false, hidden).map_err(|e| e.to_string())?;
    let ours = match deploy::activate_in_module(&module, &name, kinds, &locks) {
        Ok(o) => o,
        Err(e) => {
            let _ = pin::unpin(&pinned.dir);
            return Err(format!("{e}\n  note: nothing stays loaded: `{name}` was unpinned again"));
        }
    };
    Ok(Deployment { name, dir, module, ours, active: true })
}

impl Deployment {
    /// Stops the recorder: deactivated, the locks it governed released (they run the
    /// kernel's own code again; locks governed before the recording stay governed). The pins
    /// stay until [`Deployment::remove`].
    pub fn stop(&mut self) -> Result<(), String> {
        if !self.active {
            return Ok(());
        }
        self.active = false;
        if self.module.active().ok().flatten().as_deref() == Some(self.name.as_str()) {
            self.module.deactivate().map_err(|e| e.to_string())?;
        }
        for a in std::mem::take(&mut self.ours) {
            self.module.release(a).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Stops it if need be and removes its pins.
    pub fn remove(mut self) -> Result<(), String> {
        self.cleanup()
    }

    fn cleanup(&mut self) -> Result<(), String> {
        self.stop()?;
        if self.dir.exists() {
            pin::unpin(&self.dir).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Any way out of the recording (an error, a panic) takes the recorder out of the kernel.
impl Drop for Deployment {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            errln!("sclc: error: cannot take the module recorder `{}` out of the kernel: {e}\n  help: `sclc unload {}`", self.name, self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_names_carry_their_process() {
        assert_eq!(recorder_pid("sclc-record-4242"), Some(4242));
        for n in ["sclc-record-", "sclc-record-x1", "sclc-record-012", "numa", "sclc-record-99999999999", "sclc-record--1"] {
            assert_eq!(recorder_pid(n), None, "{n}");
        }
    }

    #[test]
    fn the_module_recorder_compiles_for_syncord_with_every_hook_it_records() {
        let mut files = scl_diagnostics::Files::new();
        let id = files.add("module_recorder.scl", MODULE_RECORDER);
        let out = scl_driver::compile(&mut files, id, scl_catalogue::Target::Syncord).expect("compiles");
        let kinds: Vec<&str> = out.program.policy.as_ref().unwrap().kinds.iter().map(|k| k.name()).collect();
        assert_eq!(kinds, ["spinlock", "mutex", "rwsem"]);
    }
}
