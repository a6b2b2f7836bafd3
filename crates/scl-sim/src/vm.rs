//! [`VmPolicy`]: a compiled policy's BPF programs, run by `scl-vm` against simulated state.

use crate::policy::{Hook, HookEnv, HookOutcome, Policy};

/// A policy compiled for the `sim` target, run instruction by instruction in [`scl_vm::Vm`].
pub struct VmPolicy {
    name: String,
    vm: scl_vm::Vm,
    has: [bool; Hook::ALL.len()],
    /// The `latency_critical` map's key and value sizes, if the policy has one.
    latency_critical: Option<(usize, usize)>,
}

impl VmPolicy {
    /// Loads `out` (compiled with `Target::Sim`) with per-CPU maps for `cpus` CPUs, and
    /// applies `rodata` overrides (offset, bytes), as `sclc --set` makes them.
    pub fn new(out: &scl_driver::Output, rodata: &[(usize, Vec<u8>)], cpus: u32) -> Result<VmPolicy, String> {
        let mut vm = scl_vm::Vm::with_cpus(out, cpus).map_err(|e| e.to_string())?;
        for (off, bytes) in rodata {
            vm.set_rodata(*off, bytes);
        }
        let mut has = [false; Hook::ALL.len()];
        for name in vm.hooks() {
            if let Some(h) = Hook::from_name(name) {
                has[h as usize] = true;
            }
        }
        let latency_critical = out
            .module
            .maps
            .values()
            .find(|m| m.name == "latency_critical")
            .map(|m| (m.key_size as usize, m.value_size as usize));
        Ok(VmPolicy { name: out.module.name.clone(), vm, has, latency_critical })
    }

    /// The VM, to read the policy's maps after a run.
    pub fn vm(&self) -> &scl_vm::Vm {
        &self.vm
    }
}

/// `scl_vm::Env` over the simulator's view of the calling task.
struct Bridge<'a, 'b>(&'a mut HookEnv<'b>);

impl scl_vm::Env for Bridge<'_, '_> {
    fn now_ns(&mut self) -> u64 {
        self.0.now
    }

    fn random_u32(&mut self) -> u32 {
        self.0.rng.next_u32()
    }

    fn cpu(&self) -> u32 {
        self.0.cpu
    }

    fn numa_node(&self) -> u32 {
        self.0.numa_node
    }

    fn pid_tgid(&self) -> u64 {
        self.0.pid_tgid
    }

    fn wait_until(&mut self, deadline_ns: u64) {
        self.0.wait_until(deadline_ns);
    }
}

impl Policy for VmPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn has(&self, hook: Hook) -> bool {
        self.has[hook as usize]
    }

    fn call(&mut self, hook: Hook, ctx: &mut [u8; 128], env: &mut HookEnv<'_>) -> Result<HookOutcome, String> {
        let out = self.vm.run(hook.name(), ctx, &mut Bridge(env)).map_err(|e| e.to_string())?;
        if !self.vm.events().is_empty() {
            // Ring-buffer records go nowhere in the simulator; free their space.
            self.vm.take_events();
        }
        Ok(HookOutcome { ret: out.ret, insns: out.insns, helpers: out.helpers })
    }

    fn mark_latency_critical(&mut self, tid: u32) -> Result<bool, String> {
        let Some((ks, vs)) = self.latency_critical else {
            return Ok(false);
        };
        let mut key = vec![0u8; ks];
        let tb = u64::from(tid).to_le_bytes();
        let n = ks.min(8);
        key[..n].copy_from_slice(&tb[..n]);
        let mut value = vec![0u8; vs];
        if let Some(b) = value.first_mut() {
            *b = 1;
        }
        self.vm.update("latency_critical", &key, &value).map_err(|e| e.to_string())?;
        Ok(true)
    }
}
