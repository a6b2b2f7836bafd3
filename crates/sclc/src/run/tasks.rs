//! Command names for the per-task view (`sclc run --per-task`), read from
//! `/proc/TID/comm` when a thread first shows up and kept, so a thread that has exited
//! since keeps its name. A thread that exited before the first refresh that lists it has
//! none (`?`): the name is read from user space, not recorded by the kernel at the event.

use std::collections::HashMap;

/// Command names by thread id (as the row label prints it).
#[derive(Default)]
pub struct Comms(HashMap<String, String>);

impl Comms {
    /// The command name of thread `tid`, or `?`.
    pub fn get(&mut self, tid: &str) -> String {
        if let Some(c) = self.0.get(tid) {
            return c.clone();
        }
        let Ok(text) = std::fs::read_to_string(format!("/proc/{tid}/comm")) else { return "?".into() };
        let comm = text.trim_end().to_string();
        self.0.insert(tid.to_string(), comm.clone());
        comm
    }
}
