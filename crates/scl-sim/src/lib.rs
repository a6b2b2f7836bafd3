//! `scl-sim`: a deterministic discrete-event simulator of kernel locks that runs SCL policies.
//!
//! The `sim` target's home. Mainline kernels have no hooks that change lock behaviour, so
//! this crate is where NUMA, AMP, fairness, reader-bias and priority policies are tried:
//! a queued spinlock with ShflLock-style shuffling, a blocking mutex and a reader-writer
//! semaphore with the bypass path, on a machine of sockets and (big or little) cores, under a
//! workload of pinned threads. Hooks fire at the moments a SynCord-style kernel fires them,
//! with the 128-byte context of `docs/abi.md`, and their compiled BPF bytecode runs in
//! `scl-vm` ([`VmPolicy`]); executed instructions and `back_off`/`sleep` waits cost
//! simulated time. [`simulate`] returns [`Metrics`]: throughput, acquisitions and hold time
//! per thread, Jain's fairness index, the local hand-off ratio and wait percentiles.
//!
//! Owns: the machine and workload models and their TOML forms ([`model`]), the seeded random
//! numbers ([`rng`]), the event loop and the lock models ([`simulate`]), the reorder bound,
//! the metrics and the side-by-side table ([`metrics`]). Must not: parse or compile SCL (the
//! caller hands it a compiled [`scl_driver::Output`]), interpret BPF itself (that is
//! `scl-vm`), read the wall clock, or do I/O; `sclc sim` owns the command line, files and
//! the progress bar. `docs/simulator.md` describes the model and its limits.

#![deny(missing_docs)]

mod engine;
pub mod metrics;
pub mod model;
pub mod replay;
mod policy;
pub mod rng;
mod vm;

pub use engine::{simulate, simulate_traced, Config, SimError, SimEvent, SimEventKind, MAX_DURATION_NS};
pub use metrics::{Metrics, WaitStats};
pub use model::{Dist, Empirical, LockImpl, LockKind, Machine, ModelError, ThreadSpec, Workload, WorkloadDefaults};
pub use policy::{abi, Fifo, Hook, HookEnv, HookOutcome, Policy, StaticShfl};
pub use vm::VmPolicy;
