//! A mesh of Linux network namespaces joined by veth pairs, for running real nodes on one
//! machine. Everything it creates it removes when dropped, panics included: child
//! processes are killed and reaped, namespaces (and with them their veth ends) deleted.

use std::fs::File;
use std::net::Ipv6Addr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LabError {
    #[error("the namespace lab needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); run as root")]
    NotRoot,
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("cannot enter namespace {ns}: {source}")]
    Enter { ns: String, source: std::io::Error },
}

/// A node's namespace in the lab.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Ns(pub usize);

/// One end of a link: which node, and its interface name there.
#[derive(Clone, Debug)]
pub struct End {
    pub node: u32,
    pub ifname: String,
}

/// A topology laid out in a lab: node `i` lives in `namespaces[i]`, and link `k` is a veth
/// pair named `l{k}` at both ends (names need only be unique inside a namespace).
pub struct Wiring {
    pub namespaces: Vec<Ns>,
    /// Each node's interface names, in link order.
    pub ifaces: Vec<Vec<String>>,
    pub ends: Vec<[End; 2]>,
}

pub struct Lab {
    /// Unique to this lab (process id plus a tag), so labs of concurrent tests or runs never
    /// collide, and leftovers of a killed run are recognisable by name.
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
}

/// Veth pairs made by this process so far: their temporary names must be unique across the
/// labs of concurrent tests.
static LINKS_MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn ip(args: &[&str]) -> Result<(), LabError> {
    let out = Command::new("ip").args(args).stdin(Stdio::null()).output().map_err(|e| LabError::Command {
        command: format!("ip {}", args.join(" ")),
        detail: format!("{e} (is iproute2 installed?)"),
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Command {
            command: format!("ip {}", args.join(" ")),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

impl Lab {
    pub fn new(tag: &str) -> Result<Lab, LabError> {
        if !is_root() {
            return Err(LabError::NotRoot);
        }
        remove_orphans(tag);
        Ok(Lab { prefix: format!("x0-{tag}-{}", std::process::id()), namespaces: Vec::new(), children: Vec::new() })
    }

    pub fn name(&self, ns: Ns) -> &str {
        &self.namespaces[ns.0]
    }

    /// A new namespace with its loopback up.
    pub fn add_namespace(&mut self) -> Result<Ns, LabError> {
        let name = format!("{}-{}", self.prefix, self.namespaces.len());
        ip(&["netns", "add", &name])?;
        self.namespaces.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        Ok(Ns(self.namespaces.len() - 1))
    }

    /// Joins `a` and `b` with a veth pair whose ends are named `a_if` in `a` and `b_if` in
    /// `b` (names need only be unique inside their namespace). Duplicate address detection
    /// is off on both ends, so link-local addresses are usable at once.
    pub fn link(&mut self, a: Ns, a_if: &str, b: Ns, b_if: &str) -> Result<(), LabError> {
        // Created in the root namespace under names unique to this lab (interface names
        // have 15 characters at most), then moved.
        let unique = format!("x0l{}", std::process::id() % 100_000);
        // Numbered across the process: two labs (tests) may build links at the same time.
        let k = LINKS_MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (ta, tb) = (format!("{unique}a{k}"), format!("{unique}b{k}"));
        ip(&["link", "add", &ta, "type", "veth", "peer", "name", &tb])?;
        for (tmp, ns, name) in [(&ta, a, a_if), (&tb, b, b_if)] {
            let ns = self.namespaces[ns.0].clone();
            ip(&["link", "set", tmp, "netns", &ns])?;
            ip(&["-n", &ns, "link", "set", tmp, "name", name])?;
            ip(&["netns", "exec", &ns, "sysctl", "-qw", &format!("net.ipv6.conf.{name}.accept_dad=0")])?;
            ip(&["-n", &ns, "link", "set", name, "up"])?;
        }
        Ok(())
    }

    /// Namespaces for `nodes` nodes joined by `links` (node pairs, in link-index order).
    pub fn wire(&mut self, nodes: u32, links: &[(u32, u32)]) -> Result<Wiring, LabError> {
        let namespaces = (0..nodes).map(|_| self.add_namespace()).collect::<Result<Vec<_>, _>>()?;
        let mut ifaces = vec![Vec::new(); nodes as usize];
        let mut ends = Vec::with_capacity(links.len());
        for (k, &(a, b)) in links.iter().enumerate() {
            let name = format!("l{k}");
            self.link(namespaces[a as usize], &name, namespaces[b as usize], &name)?;
            ifaces[a as usize].push(name.clone());
            ifaces[b as usize].push(name.clone());
            ends.push([End { node: a, ifname: name.clone() }, End { node: b, ifname: name }]);
        }
        Ok(Wiring { namespaces, ifaces, ends })
    }

    /// The host behind `ns` goes dark, as at a power loss: its kernel drops every packet in,
    /// out and through (nftables, policy drop on all three hooks), so it answers nothing,
    /// not even a port unreachable. Its links stay up, as a switch port or radio neighbour
    /// would see them. Lasts until the namespace is removed.
    pub fn go_dark(&self, ns: Ns) -> Result<(), LabError> {
        let rules = ["input", "forward", "output"]
            .map(|hook| format!("add chain inet x0dark {hook} {{ type filter hook {hook} priority -400 ; policy drop ; }}"));
        let script = format!("add table inet x0dark ; {}", rules.join(" ; "));
        ip(&["netns", "exec", self.name(ns), "nft", &script]).map_err(|e| match e {
            LabError::Command { command, detail } => LabError::Command { command, detail: format!("{detail} (nft is in the nftables package)") },
            e => e,
        })
    }

    /// Sets sysctl `key` (e.g. `net.ipv6.conf.all.forwarding`) inside `ns`.
    pub fn sysctl(&self, ns: Ns, key: &str, value: &str) -> Result<(), LabError> {
        ip(&["netns", "exec", self.name(ns), "sysctl", "-qw", &format!("{key}={value}")])
    }

    /// Gives `ifname` in `ns` the configured address `addr`/64 in place of its link-local
    /// one (none is generated), as on links where only configured addresses exist.
    pub fn configure_address(&self, ns: Ns, ifname: &str, addr: Ipv6Addr) -> Result<(), LabError> {
        let ns = self.name(ns);
        ip(&["-n", ns, "link", "set", ifname, "down"])?;
        ip(&["-n", ns, "link", "set", ifname, "addrgenmode", "none"])?;
        ip(&["-n", ns, "-6", "addr", "flush", "dev", ifname])?;
        ip(&["-n", ns, "-6", "addr", "add", &format!("{addr}/64"), "dev", ifname, "nodad"])?;
        ip(&["-n", ns, "link", "set", ifname, "up"])
    }

    /// Adds `addr`/128 to `ifname` in `ns`.
    pub fn add_address(&self, ns: Ns, ifname: &str, addr: Ipv6Addr) -> Result<(), LabError> {
        ip(&["-n", self.name(ns), "-6", "addr", "add", &format!("{addr}/128"), "dev", ifname])
    }

    /// User plus system CPU time a running child has used so far, all its threads (`None`
    /// once it has exited). Read from the process's CPU-time clock, in nanoseconds:
    /// `/proc/PID/stat` counts clock ticks (10 ms), and an idle daemon uses a few
    /// milliseconds a second, so a short quiet window of a small mesh could read as no CPU
    /// at all. `stat` remains the fallback.
    pub fn cpu_time(&self, child: usize) -> Option<std::time::Duration> {
        let pid = self.children[child].id();
        let mut clock: libc::clockid_t = 0;
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: both calls only write through the pointers given, which point to live
        // locals of the right types.
        let ok = unsafe {
            libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) == 0 && libc::clock_gettime(clock, &mut ts) == 0
        };
        if ok {
            return Some(std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces) start at field 3, "state";
        // utime and stime are fields 14 and 15.
        let rest = stat.rsplit_once(')')?.1;
        let mut fields = rest.split_whitespace().skip(11);
        let ticks: u64 = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Some(std::time::Duration::from_nanos(ticks * 1_000_000_000 / hz))
    }

    /// The link-local IPv6 address of interface `ifname` in `ns`.
    pub fn address(&self, ns: Ns, ifname: &str) -> Result<Ipv6Addr, LabError> {
        let args = ["-n", self.name(ns), "-6", "addr", "show", "dev", ifname];
        let command = || format!("ip {}", args.join(" "));
        let out = Command::new("ip").args(args).output().map_err(|e| LabError::Command { command: command(), detail: e.to_string() })?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .and_then(|a| a.split('/').next()?.parse().ok())
            .ok_or_else(|| LabError::Command { command: command(), detail: format!("no IPv6 address in: {}", text.trim()) })
    }

    /// Sets a link end up or down, as a cable pulled or plugged would.
    pub fn set_link(&self, ns: Ns, ifname: &str, up: bool) -> Result<(), LabError> {
        ip(&["-n", self.name(ns), "link", "set", ifname, if up { "up" } else { "down" }])
    }

    /// Starts `program args` inside `ns`; returns its index for `signal` and `wait`. The
    /// process dies with the thread that started it, so even a harness killed outright
    /// leaves no node running (its namespaces go at the next lab's start).
    pub fn spawn(&mut self, ns: Ns, program: &str, args: &[&str], stderr: Stdio) -> Result<usize, LabError> {
        let mut command = Command::new("ip");
        // SAFETY: prctl is async-signal-safe and touches only the child being started.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .args(["netns", "exec", self.name(ns), program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| LabError::Command { command: format!("ip netns exec … {program}"), detail: e.to_string() })?;
        self.children.push(child);
        Ok(self.children.len() - 1)
    }

    pub fn signal(&self, child: usize, signal: libc::c_int) {
        if let Ok(pid) = i32::try_from(self.children[child].id()) {
            // SAFETY: kill has no memory-safety preconditions; a stale pid is at worst ESRCH,
            // and the pid cannot be reused while we have not reaped the child.
            unsafe { libc::kill(pid, signal) };
        }
    }

    /// Waits for a child to exit, up to `timeout`; `None` if it is still running.
    pub fn wait(&mut self, child: usize, timeout: std::time::Duration) -> Option<ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match self.children[child].try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(20)),
                _ => return None,
            }
        }
    }

    /// Runs `f` on a thread inside `ns`: sockets it opens live in that namespace, which is
    /// how the harness reaches a node's loopback-bound metrics and event stream.
    pub fn in_namespace<T: Send>(&self, ns: Ns, f: impl FnOnce() -> T + Send) -> Result<T, LabError> {
        let entry = NsEntry::open(self.name(ns))?;
        std::thread::scope(|s| s.spawn(|| entry.enter().map(|()| f())).join().expect("namespace thread panicked"))
    }

    /// Like `in_namespace`, for a thread that outlives the call (it runs until `f` returns).
    /// If it cannot enter the namespace, `f` does not run and the error is its result.
    pub fn spawn_in_namespace(
        &self,
        ns: Ns,
        thread: &str,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<std::thread::JoinHandle<Result<(), LabError>>, LabError> {
        let entry = NsEntry::open(self.name(ns))?;
        std::thread::Builder::new()
            .name(thread.into())
            .spawn(move || entry.enter().map(|()| f()))
            .map_err(|e| LabError::Command { command: format!("starting thread {thread}"), detail: e.to_string() })
    }
}

/// An open handle on a named network namespace, for a thread to enter.
struct NsEntry {
    name: String,
    file: File,
}

impl NsEntry {
    fn open(name: &str) -> Result<NsEntry, LabError> {
        let file = File::open(format!("/run/netns/{name}")).map_err(|source| LabError::Enter { ns: name.into(), source })?;
        Ok(NsEntry { name: name.into(), file })
    }

    /// Moves the calling thread (only it) into the namespace.
    fn enter(&self) -> Result<(), LabError> {
        // SAFETY: setns on a valid namespace fd changes only this thread's namespace.
        if unsafe { libc::setns(self.file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(LabError::Enter { ns: self.name.clone(), source: std::io::Error::last_os_error() });
        }
        Ok(())
    }
}

/// Deletes namespaces a lab with this tag left behind when its process was killed outright
/// (SIGKILL runs no cleanup): their names carry the pid of a process that no longer exists.
fn remove_orphans(tag: &str) {
    let prefix = format!("x0-{tag}-");
    let Ok(dir) = std::fs::read_dir("/run/netns") else { return };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&prefix).and_then(|rest| rest.split('-').next()).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        // A zombie (killed, not yet reaped) is as gone as a missing pid.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let alive = stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'));
        if !alive {
            match ip(&["netns", "del", &name]) {
                Ok(()) => eprintln!("removed namespace {name}, left behind by a lab whose process {pid} is gone"),
                Err(e) => eprintln!("warning: could not remove orphaned namespace {name}: {e}"),
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deleting a namespace deletes the veth ends in it, and with them their peers.
        for ns in &self.namespaces {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("warning: cleaning up the lab: {e}");
            }
        }
    }
}
