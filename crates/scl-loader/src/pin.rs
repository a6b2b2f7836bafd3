//! Pinning a loaded policy in bpffs, so that it outlives the process that loaded it, and
//! finding and removing pinned policies.
//!
//! # Layout
//!
//! A policy pinned as `NAME` is the directory `/sys/fs/bpf/scl/NAME/` ([`SCL_ROOT`]), holding:
//!
//! | file | what |
//! |---|---|
//! | `prog_HOOK` | the program of hook `HOOK` (`prog_should_reorder`, `prog_contended`) |
//! | `map_MAP` | the policy's map `MAP` (its state and `map` declarations, by object name) |
//! | `hidden_MAP` | a map the compiler added (`hidden_scl_zero`, `hidden_scl_flags`), and the config values as `hidden_rodata` |
//! | `link_HOOK` | the attachment of `prog_HOOK` (stock target only: tracepoint links) |
//!
//! Hidden maps are pinned too: the programs hold them anyway, and pinning them makes every
//! object the policy uses visible to `bpftool` and `sclc ls` (`hidden_rodata` shows the
//! config values it was loaded with). They are read-only through [`crate::pinned`].
//!
//! # Atomic deployment
//!
//! [`Loaded::pin_all`] fills a directory of its own, `/sys/fs/bpf/scl_loading/NAME-PID`
//! ([`loading_root`]), and renames it to `/sys/fs/bpf/scl/NAME` once everything is pinned,
//! with `RENAME_NOREPLACE`. So `NAME/` is either absent or complete, whenever `sclc load`
//! is killed; a killed load leaves only its `scl_loading` directory, which [`incomplete`]
//! finds (`sclc ls` shows it as incomplete), which never holds the name, and which
//! [`remove_stale`] removes once its process is gone. (bpffs refuses `.` in names, so the
//! directory cannot hide beside the others under a dotted name.)
//!
//! A pinned program stays loaded while its pin (or any link or file descriptor) exists; a
//! pinned link keeps its program attached after the loader exits. [`unpin`] removes every
//! pin and the directory: the programs detach and the kernel frees them (after an RCU grace
//! period).

use crate::Loaded;
use libbpf_rs::{MapCore, MapHandle};
use std::ffi::{CStr, CString};
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where bpffs is mounted.
pub const BPFFS: &str = "/sys/fs/bpf";
/// The directory of pinned policies, one subdirectory each.
pub const SCL_ROOT: &str = "/sys/fs/bpf/scl";
/// Prefix of pinned programs.
pub const PROG_PREFIX: &str = "prog_";
/// Prefix of the policy's own pinned maps.
pub const MAP_PREFIX: &str = "map_";
/// Prefix of the maps the compiler added.
pub const HIDDEN_PREFIX: &str = "hidden_";
/// Prefix of pinned links.
pub const LINK_PREFIX: &str = "link_";
/// `BPF_FS_MAGIC`, bpffs's `statfs` type.
const BPF_FS_MAGIC: u64 = 0xcafe_4a11;

/// Why a pinned policy could not be created, found, read or written.
#[derive(Debug)]
pub enum PinError {
    /// The environment cannot do it: not root, no bpffs and it cannot be mounted.
    Environment(String),
    /// A bad name or argument.
    Usage(String),
    /// A policy is already pinned under this name.
    Exists {
        /// The name.
        name: String,
        /// Its directory.
        dir: PathBuf,
    },
    /// No such policy or map.
    NotFound {
        /// What was looked for (`pinned policy`, `map`).
        what: String,
        /// Where it was looked for (`policy `prio``), if not at the top.
        within: Option<String>,
        /// The name given.
        name: String,
        /// The names that exist.
        available: Vec<String>,
    },
    /// A key or value that does not parse or does not fit its type; nothing was written.
    Value(String),
    /// The kernel refused an operation.
    Kernel {
        /// What was being done.
        what: String,
        /// The error.
        error: String,
    },
}

impl fmt::Display for PinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinError::Environment(why) | PinError::Usage(why) | PinError::Value(why) => write!(f, "{why}"),
            PinError::Exists { name, dir } => write!(f, "a policy is already pinned as `{name}` ({})", dir.display()),
            PinError::NotFound { what, within, name, available } => {
                match within {
                    Some(w) => write!(f, "{w} has no {what} `{name}`")?,
                    None => write!(f, "no {what} `{name}`")?,
                }
                if available.is_empty() {
                    write!(f, " (there are none)")
                } else {
                    write!(f, " (there are: {})", available.join(", "))
                }
            }
            PinError::Kernel { what, error } => write!(f, "{what}: {error}"),
        }
    }
}

impl std::error::Error for PinError {}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> PinError {
    move |e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            PinError::Environment(format!("{what}: {e} (run as root)"))
        } else {
            PinError::Kernel { what, error: e.to_string() }
        }
    }
}

/// The longest policy name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;

/// Checks a policy name: letters, digits, `_` and `-`, at most [`MAX_NAME_BYTES`] bytes
/// (it becomes a directory name in bpffs, which refuses `.` in names).
pub fn check_name(name: &str) -> Result<(), PinError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(PinError::Usage(format!(
            "the policy name `{name}` is {} bytes long; names are at most {MAX_NAME_BYTES} bytes",
            name.len()
        )));
    }
    let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    if ok {
        Ok(())
    } else if name.contains('.') {
        Err(PinError::Usage(format!("`{name}` is not a valid policy name: bpffs does not allow `.` in names (use letters, digits, `_` and `-`)")))
    } else {
        Err(PinError::Usage(format!("`{name}` is not a valid policy name (use letters, digits, `_` and `-`)")))
    }
}

/// Where policies of `root` are pinned before they get their name: `ROOT_loading` beside
/// it (`/sys/fs/bpf/scl_loading` for [`SCL_ROOT`]).
pub fn loading_root(root: &Path) -> PathBuf {
    let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    root.with_file_name(format!("{name}_loading"))
}

/// The directory `pin_all` fills for policy `name` of `root`, as process `pid`.
fn loading_dir(root: &Path, name: &str, pid: u32) -> PathBuf {
    loading_root(root).join(format!("{name}-{pid}"))
}

/// A policy directory a `load` began and did not finish (see the module documentation).
#[derive(Clone, Debug)]
pub struct Incomplete {
    /// The name it was being pinned as.
    pub name: String,
    /// The process that was pinning it.
    pub pid: u32,
    /// True while that process still runs (a load in progress).
    pub loading: bool,
    /// The directory.
    pub dir: PathBuf,
}

fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Every incomplete policy directory of `root`.
pub fn incomplete(root: &Path) -> Vec<Incomplete> {
    let loading = loading_root(root);
    files(&loading)
        .into_iter()
        .filter_map(|f| {
            let (name, pid) = f.rsplit_once('-')?;
            let pid: u32 = pid.parse().ok()?;
            Some(Incomplete { name: name.to_string(), pid, loading: process_alive(pid), dir: loading.join(&f) })
        })
        .collect()
}

/// Removes the incomplete directories of policy `name` whose loading process is gone;
/// returns how many there were.
pub fn remove_stale(root: &Path, name: &str) -> Result<usize, PinError> {
    let mut n = 0;
    for i in incomplete(root) {
        if i.name == name && !i.loading {
            unpin(&i.dir)?;
            n += 1;
        }
    }
    Ok(n)
}

fn path_c(path: &Path) -> Result<CString, PinError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| PinError::Usage(format!("`{}` contains a NUL byte", path.display())))
}

fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: `st` is a zeroed, writable statfs and `c` a NUL-terminated path.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && (st.f_type as u64) & 0xffff_ffff == BPF_FS_MAGIC
    }
}

/// Fails with [`PinError::Environment`] unless running as root (pinned objects in bpffs
/// are root's).
pub fn require_root() -> Result<(), PinError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(PinError::Environment("not running as root (pinned BPF objects in /sys/fs/bpf are root's)".into()));
    }
    Ok(())
}

/// Makes sure bpffs is mounted at [`BPFFS`] (mounting it if not, as
/// `mount -t bpf bpf /sys/fs/bpf` would) and that [`SCL_ROOT`] exists; returns the latter.
pub fn ensure_bpffs() -> Result<PathBuf, PinError> {
    require_root()?;
    let bpffs = Path::new(BPFFS);
    if !is_bpffs(bpffs) {
        let _ = std::fs::create_dir_all(bpffs);
        let (src, target, fstype) = (c"bpf", path_c(bpffs)?, c"bpf");
        // SAFETY: all strings are NUL-terminated; no mount data.
        let rc = unsafe { libc::mount(src.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            return Err(PinError::Environment(format!(
                "bpffs is not mounted at {BPFFS} and mounting it failed: {e} (try `mount -t bpf bpf {BPFFS}`)"
            )));
        }
    }
    let root = PathBuf::from(SCL_ROOT);
    std::fs::create_dir_all(&root).map_err(io_err(format!("creating {SCL_ROOT}")))?;
    Ok(root)
}

/// Pins the object behind `fd` at `path`.
fn obj_pin(fd: BorrowedFd<'_>, path: &Path) -> Result<(), PinError> {
    let c = path_c(path)?;
    // SAFETY: `fd` is a live BPF object descriptor and `c` a NUL-terminated path.
    let rc = unsafe { libbpf_sys::bpf_obj_pin(fd.as_raw_fd(), c.as_ptr()) };
    if rc != 0 {
        return Err(PinError::Kernel { what: format!("pinning {}", path.display()), error: std::io::Error::from_raw_os_error(-rc).to_string() });
    }
    Ok(())
}

/// Opens the pinned object at `path`.
fn obj_get(path: &Path) -> Result<OwnedFd, PinError> {
    let c = path_c(path)?;
    // SAFETY: `c` is a NUL-terminated path.
    let fd = unsafe { libbpf_sys::bpf_obj_get(c.as_ptr()) };
    if fd < 0 {
        return Err(PinError::Kernel { what: format!("opening {}", path.display()), error: std::io::Error::from_raw_os_error(-fd).to_string() });
    }
    // SAFETY: the kernel just gave us this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What [`Loaded::pin_all`] pinned, by file name.
#[derive(Clone, Debug, Default)]
pub struct Pinned {
    /// The directory.
    pub dir: PathBuf,
    /// Program pins (`prog_HOOK`).
    pub programs: Vec<String>,
    /// Map pins (`map_MAP`, `hidden_MAP`).
    pub maps: Vec<String>,
    /// Link pins (`link_HOOK`).
    pub links: Vec<String>,
}

impl Loaded {
    /// Pins every program and map of the object under `dir` (which must not exist; it is
    /// created) in the layout of this module: programs as `prog_HOOK`, maps as `map_MAP`,
    /// the maps named in `hidden` and libbpf's `.rodata` as `hidden_...`. With `attach`,
    /// tracepoint (`tp_btf/...`) programs are attached and their links pinned as
    /// `link_HOOK`, so they stay attached after this process exits. On any failure every
    /// pin made so far is removed, with the directory.
    ///
    /// The pins are made in a directory of their own and renamed to `dir` at the end (see
    /// "Atomic deployment" above): `dir` is never seen half-filled.
    pub fn pin_all(&mut self, dir: &Path, attach: bool, hidden: &[&str]) -> Result<Pinned, PinError> {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let root = dir.parent().unwrap_or(Path::new(SCL_ROOT));
        let exists = || PinError::Exists { name: name.clone(), dir: dir.to_path_buf() };
        if dir.exists() {
            return Err(exists());
        }
        remove_stale(root, &name)?;
        let tmp = loading_dir(root, &name, std::process::id());
        if tmp.exists() {
            // Left by an earlier load of this process (a test making several).
            unpin(&tmp)?;
        }
        std::fs::create_dir_all(loading_root(root)).map_err(io_err(format!("creating {}", loading_root(root).display())))?;
        std::fs::create_dir(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
        let result = self.pin_into(&tmp, attach, hidden).and_then(|mut pinned| {
            rename_noreplace(&tmp, dir).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    exists()
                } else {
                    io_err(format!("renaming {} to {}", tmp.display(), dir.display()))(e)
                }
            })?;
            pinned.dir = dir.to_path_buf();
            Ok(pinned)
        });
        if result.is_err() {
            let _ = unpin(&tmp);
        }
        result
    }

    fn pin_into(&mut self, dir: &Path, attach: bool, hidden: &[&str]) -> Result<Pinned, PinError> {
        let mut pinned = Pinned { dir: dir.to_path_buf(), ..Pinned::default() };
        for p in self.obj.progs() {
            let file = format!("{PROG_PREFIX}{}", p.name().to_string_lossy());
            obj_pin(p.as_fd(), &dir.join(&file))?;
            pinned.programs.push(file);
        }
        for m in self.obj.maps() {
            let name = m.name().to_string_lossy().into_owned();
            let file = if let Some((_, section)) = name.rsplit_once('.') {
                format!("{HIDDEN_PREFIX}{section}")
            } else if hidden.contains(&name.as_str()) {
                format!("{HIDDEN_PREFIX}{name}")
            } else {
                format!("{MAP_PREFIX}{name}")
            };
            obj_pin(m.as_fd(), &dir.join(&file))?;
            pinned.maps.push(file);
        }
        if attach {
            for (i, p) in crate::attach_order(&mut self.obj).into_iter().enumerate() {
                crate::attach_gap(i);
                let section = p.section().to_string_lossy().into_owned();
                let name = p.name().to_string_lossy().into_owned();
                let mut link = p.attach().map_err(|e| PinError::Kernel { what: format!("attaching `{name}` ({section})"), error: e.to_string() })?;
                let file = format!("{LINK_PREFIX}{name}");
                let path = dir.join(&file);
                link.pin(&path).map_err(|e| PinError::Kernel { what: format!("pinning {}", path.display()), error: e.to_string() })?;
                self.links.push(link);
                pinned.links.push(file);
            }
        }
        Ok(pinned)
    }
}

/// Renames `from` to `to`, failing with `AlreadyExists` if `to` exists (bpffs supports
/// `renameat2` with `RENAME_NOREPLACE`).
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    let (f, t) = (CString::new(from.as_os_str().as_bytes())?, CString::new(to.as_os_str().as_bytes())?);
    // SAFETY: both paths are NUL-terminated; AT_FDCWD with absolute or relative paths.
    let rc = unsafe { libc::renameat2(libc::AT_FDCWD, f.as_ptr(), libc::AT_FDCWD, t.as_ptr(), libc::RENAME_NOREPLACE) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Removes every pin in `dir` and the directory itself. `dir` must be on bpffs. Programs
/// whose last reference was a pin detach and are freed by the kernel shortly after.
pub fn unpin(dir: &Path) -> Result<(), PinError> {
    if !is_bpffs(dir) {
        return Err(PinError::Usage(format!("{} is not a directory on bpffs", dir.display())));
    }
    // Links first, so programs detach before their pins go.
    let mut files = files(dir);
    files.sort_by_key(|f| !f.starts_with(LINK_PREFIX));
    for f in files {
        let p = dir.join(&f);
        std::fs::remove_file(&p).map_err(io_err(format!("removing {}", p.display())))?;
    }
    std::fs::remove_dir(dir).map_err(io_err(format!("removing {}", dir.display())))
}

/// The entries of `dir`, sorted (empty when it cannot be read).
pub(crate) fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The names of the policies pinned under `root` (complete ones: [`incomplete`] ones are
/// elsewhere).
pub fn names(root: &Path) -> Vec<String> {
    files(root).into_iter().filter(|n| root.join(n).is_dir()).collect()
}

/// A pinned program, as [`list`] reports it.
#[derive(Clone, Debug)]
pub struct ProgramPin {
    /// The hook (the pin's name without `prog_`).
    pub hook: String,
    /// The kernel's program id.
    pub id: u32,
    /// The program type, as bpftool names it (`syscall`, `tracing`).
    pub prog_type: String,
    /// Whether a pinned link (`link_HOOK`) attaches it.
    pub attached: bool,
}

/// A pinned map, as [`list`] reports it.
#[derive(Clone, Debug)]
pub struct MapPin {
    /// The map's name: the pin's name without `map_`, or the whole pin name for a hidden
    /// map (`hidden_scl_zero`).
    pub name: String,
    /// True for maps the compiler added.
    pub hidden: bool,
    /// The kernel's map id.
    pub id: u32,
    /// The map type, as bpftool names it (`hash`, `lru_hash`, `array`).
    pub map_type: String,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// Entries present now (every index, for arrays).
    pub entries: u32,
}

/// A pinned policy, as [`list`] reports it.
#[derive(Clone, Debug)]
pub struct PolicyPin {
    /// The name it was pinned as.
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Its programs.
    pub programs: Vec<ProgramPin>,
    /// Its maps, the policy's own first.
    pub maps: Vec<MapPin>,
}

fn type_str(s: *const std::os::raw::c_char, n: u32) -> String {
    if s.is_null() {
        return format!("type {n}");
    }
    // SAFETY: libbpf returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
}

/// Describes the policy pinned in `dir`.
pub fn describe(dir: &Path) -> Result<PolicyPin, PinError> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let files = files(dir);
    let mut programs = Vec::new();
    let mut maps = Vec::new();
    for f in &files {
        let path = dir.join(f);
        if let Some(hook) = f.strip_prefix(PROG_PREFIX) {
            let fd = match obj_get(&path) {
                Ok(fd) => fd,
                // Unpinned meanwhile (an `unload` running beside us).
                Err(_) if !path.exists() => continue,
                Err(e) => return Err(e),
            };
            let mut info = libbpf_sys::bpf_prog_info::default();
            let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
            // SAFETY: `info` is writable and `len` its size.
            let rc = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
            if rc != 0 {
                return Err(PinError::Kernel { what: format!("reading {}", path.display()), error: std::io::Error::last_os_error().to_string() });
            }
            let attached = files.iter().any(|l| l.strip_prefix(LINK_PREFIX) == Some(hook)) && link_prog(&dir.join(format!("{LINK_PREFIX}{hook}"))) == Some(info.id);
            // SAFETY: a plain lookup in libbpf's static table.
            let prog_type = type_str(unsafe { libbpf_sys::libbpf_bpf_prog_type_str(info.type_) }, info.type_);
            programs.push(ProgramPin { hook: hook.to_string(), id: info.id, prog_type, attached });
        } else if f.starts_with(MAP_PREFIX) || f.starts_with(HIDDEN_PREFIX) {
            let h = match MapHandle::from_pinned_path(&path) {
                Ok(h) => h,
                Err(_) if !path.exists() => continue,
                Err(e) => return Err(PinError::Kernel { what: format!("opening {}", path.display()), error: e.to_string() }),
            };
            let info = libbpf_rs::MapInfo::new(h.as_fd()).map_err(|e| PinError::Kernel { what: format!("reading {}", path.display()), error: e.to_string() })?.info;
            // SAFETY: a plain lookup in libbpf's static table.
            let map_type = type_str(unsafe { libbpf_sys::libbpf_bpf_map_type_str(info.type_) }, info.type_);
            let hidden = f.starts_with(HIDDEN_PREFIX);
            maps.push(MapPin {
                name: f.strip_prefix(MAP_PREFIX).unwrap_or(f).to_string(),
                hidden,
                id: info.id,
                map_type,
                key_size: info.key_size,
                value_size: info.value_size,
                max_entries: info.max_entries,
                entries: h.keys().count() as u32,
            });
        }
    }
    maps.sort_by_key(|m| m.hidden);
    Ok(PolicyPin { name, dir: dir.to_path_buf(), programs, maps })
}

/// The program id a pinned link attaches, if it can be read.
fn link_prog(path: &Path) -> Option<u32> {
    let fd = obj_get(path).ok()?;
    let mut info = libbpf_sys::bpf_link_info::default();
    let mut len = std::mem::size_of::<libbpf_sys::bpf_link_info>() as u32;
    // SAFETY: `info` is writable and `len` its size.
    let rc = unsafe { libbpf_sys::bpf_link_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
    (rc == 0).then_some(info.prog_id)
}

/// Every policy pinned under `root` (normally [`SCL_ROOT`]); none when `root` does not
/// exist.
pub fn list(root: &Path) -> Result<Vec<PolicyPin>, PinError> {
    require_root()?;
    if !root.exists() {
        return Ok(Vec::new());
    }
    std::fs::read_dir(root).map_err(io_err(format!("reading {}", root.display())))?;
    let mut out = Vec::new();
    for n in names(root) {
        let dir = root.join(&n);
        match describe(&dir) {
            Ok(p) => out.push(p),
            // Unloaded while we looked.
            Err(_) if !dir.exists() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
