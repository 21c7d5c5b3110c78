//! Ports and local Redis Clusters for the integration tests of lottery-writer and
//! lottery-exporter (each includes this file from its `tests/common/mod.rs`).
//!
//! Ports. `free_port()` (a server that is not a cluster node) and `cluster_port()` (a cluster
//! node: its bus port is port + 10000) go through one registry per test process: no port, and no
//! port whose bus port, is handed out twice, so two tests running in parallel threads never get
//! the same one. Cluster ports are drawn at random outside the kernel's ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`), where `free_port()` (port 0) and every outgoing
//! connection take theirs, and at most 55535 (Redis refuses a bus port over 65535).
//!
//! Another process can still take a port between the check and the server's bind, so
//! `start_cluster` checks each node really is the process it started (INFO `process_id`), and
//! when a node exits during start-up, `redis-cli --cluster create` fails, or the cluster does not
//! reach `cluster_state:ok`, it kills every node and starts over on fresh ports (at most
//! `SETUP_TRIES` times), printing why on stderr.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// A cluster node's bus port is its port plus this.
pub const BUS_OFFSET: u16 = 10_000;
/// The highest port a cluster node may get (its bus port is then 65535).
pub const MAX_CLUSTER_PORT: u16 = u16::MAX - BUS_OFFSET;
/// The lowest port a cluster node may get (below: well-known services).
const MIN_CLUSTER_PORT: u16 = 10_000;
/// Cluster set-ups tried (each on fresh ports) before a test fails.
pub const SETUP_TRIES: usize = 3;
/// How long a node may take to answer PING, and the cluster to reach cluster_state:ok.
const NODE_UP: Duration = Duration::from_secs(10);
const CLUSTER_OK: Duration = Duration::from_secs(20);
const CREATE_TIMEOUT: Duration = Duration::from_secs(60);

/// Every port handed out in this process (node ports and their bus ports included).
static TAKEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
static RNG: AtomicU64 = AtomicU64::new(0);

/// Records `ports` as taken, unless one of them already is.
fn claim(ports: &[u16]) -> bool {
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    if ports.iter().any(|p| taken.contains(p)) {
        return false;
    }
    taken.extend(ports);
    true
}

fn can_bind(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A free port (the kernel's choice) that no other test of this process got.
pub fn free_port() -> u16 {
    for _ in 0..10_000 {
        let p = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        if claim(&[p]) {
            return p;
        }
    }
    panic!("no free port left that this process has not handed out already");
}

/// splitmix64 over a per-process seed: random, different in each process.
fn random() -> u64 {
    let mut s = RNG.load(Ordering::Relaxed);
    if s == 0 {
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        s = t ^ (u64::from(std::process::id()) << 32) | 1;
    }
    let z0 = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
    RNG.store(z0, Ordering::Relaxed);
    let mut z = z0;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The ranges (inclusive) cluster ports are drawn from: where neither the port nor its bus port
/// is in the ephemeral range; the whole 10000..=55535 if the ephemeral range leaves no room.
fn cluster_port_ranges() -> Vec<(u16, u16)> {
    let (lo, hi) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|x| x.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32_768, 60_999));
    let mut r = Vec::new();
    // below: port + BUS_OFFSET < lo
    if lo > MIN_CLUSTER_PORT + BUS_OFFSET {
        r.push((MIN_CLUSTER_PORT, lo - BUS_OFFSET - 1));
    }
    // above: port > hi
    if hi < MAX_CLUSTER_PORT {
        r.push(((hi + 1).max(MIN_CLUSTER_PORT), MAX_CLUSTER_PORT));
    }
    if r.is_empty() {
        r.push((MIN_CLUSTER_PORT, MAX_CLUSTER_PORT));
    }
    r
}

/// A port for a cluster node, at most `MAX_CLUSTER_PORT`: neither it nor its bus port
/// (+`BUS_OFFSET`) was handed out before in this process, and both are free now.
pub fn cluster_port() -> u16 {
    let ranges = cluster_port_ranges();
    let total: u64 = ranges.iter().map(|(a, b)| u64::from(b - a) + 1).sum();
    for _ in 0..10_000 {
        let mut i = random() % total;
        let mut p = 0;
        for (a, b) in &ranges {
            let n = u64::from(b - a) + 1;
            if i < n {
                p = a + i as u16;
                break;
            }
            i -= n;
        }
        if claim(&[p, p + BUS_OFFSET]) && can_bind(p) && can_bind(p + BUS_OFFSET) {
            return p;
        }
    }
    panic!("no free cluster port pair in {:?}", ranges);
}

/// One redis-server of a test cluster (`--cluster-enabled yes`, the lottery module loaded,
/// its own temp dir with `redis.log`); killed when dropped.
pub struct Node {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Node {
    fn spawn(module: &Path, port: u16) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "3000"])
            .args([
                "--cluster-config-file",
                "nodes.conf",
                "--logfile",
                "redis.log",
            ])
            .arg("--dir")
            .arg(dir.path())
            .arg("--loadmodule")
            .arg(module)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server not found in PATH");
        Node { child, port, dir }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, and wait for the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines of the node's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join("\n")
    }

    /// Some(true) once this node's process answers on its port, Some(false) while nothing
    /// does, None when another process answers there.
    fn answers(&self) -> Option<bool> {
        let Ok(mut c) = redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
        else {
            return Some(false);
        };
        let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
        let Ok(info) = redis::cmd("INFO").arg("server").query::<String>(&mut c) else {
            return Some(false);
        };
        if info_field(&info, "process_id") == self.child.id().to_string() {
            Some(true)
        } else {
            None
        }
    }

    /// CLUSTER INFO of this node ("" if it cannot be asked).
    fn cluster_info(&self) -> String {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
            .and_then(|mut c| {
                c.set_read_timeout(Some(Duration::from_secs(2)))?;
                redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut c)
            })
            .unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The value of `field` in an INFO-style text ("" if absent).
pub fn info_field(text: &str, field: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// A cluster of `masters` masters with `replicas` replicas each, every node in
/// `cluster_state:ok` and knowing every other; retried on fresh ports (see the module docs).
pub fn start_cluster(module: &Path, masters: usize, replicas: usize) -> Vec<Node> {
    start_cluster_on(module, masters, replicas, &mut cluster_port)
}

/// `start_cluster` with the nodes' ports chosen by `pick` (the tests of the retry give it ports
/// they hold).
pub fn start_cluster_on(
    module: &Path,
    masters: usize,
    replicas: usize,
    pick: &mut dyn FnMut() -> u16,
) -> Vec<Node> {
    let mut why = Vec::new();
    for attempt in 1..=SETUP_TRIES {
        match try_start_cluster(module, masters, replicas, pick) {
            Ok(nodes) => return nodes,
            Err(e) => {
                eprintln!(
                    "cluster set-up attempt {attempt}/{SETUP_TRIES} failed (starting over on fresh ports): {e}"
                );
                why.push(format!("attempt {attempt}: {e}"));
            }
        }
    }
    panic!(
        "could not set up a Redis Cluster in {SETUP_TRIES} attempts:\n{}",
        why.join("\n")
    );
}

fn try_start_cluster(
    module: &Path,
    masters: usize,
    replicas: usize,
    pick: &mut dyn FnMut() -> u16,
) -> Result<Vec<Node>, String> {
    let total = masters * (1 + replicas);
    let mut nodes: Vec<Node> = (0..total).map(|_| Node::spawn(module, pick())).collect();
    for n in nodes.iter_mut() {
        let end = Instant::now() + NODE_UP;
        loop {
            if let Some(st) = n.exited() {
                return Err(format!(
                    "redis-server on port {} exited during start-up ({st}); its log:\n{}",
                    n.port,
                    n.log_tail()
                ));
            }
            match n.answers() {
                Some(true) => break,
                None => {
                    return Err(format!(
                    "port {} is answered by another process than the redis-server started on it",
                    n.port
                ))
                }
                Some(false) => {}
            }
            if Instant::now() > end {
                return Err(format!(
                    "redis-server on port {} did not answer in {:?}; its log:\n{}",
                    n.port,
                    NODE_UP,
                    n.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }
    create(&nodes, replicas)?;
    let end = Instant::now() + CLUSTER_OK;
    let want_known = format!("cluster_known_nodes:{total}");
    loop {
        let mut pending = Vec::new();
        for n in nodes.iter_mut() {
            if let Some(st) = n.exited() {
                return Err(format!(
                    "redis-server on port {} exited ({st}); its log:\n{}",
                    n.port,
                    n.log_tail()
                ));
            }
            let info = n.cluster_info();
            if !(info.contains("cluster_state:ok") && info.contains(&want_known)) {
                pending.push(format!(
                    "port {}: cluster_state:{} cluster_known_nodes:{}",
                    n.port,
                    info_field(&info, "cluster_state"),
                    info_field(&info, "cluster_known_nodes")
                ));
            }
        }
        if pending.is_empty() {
            return Ok(nodes);
        }
        if Instant::now() > end {
            let logs: Vec<String> = nodes
                .iter()
                .map(|n| format!("log of port {}:\n{}", n.port, n.log_tail()))
                .collect();
            return Err(format!(
                "no cluster_state:ok with {total} known nodes after {CLUSTER_OK:?}: {}\n{}",
                pending.join("; "),
                logs.join("\n")
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `redis-cli --cluster create` over `nodes`, bounded in time.
fn create(nodes: &[Node], replicas: usize) -> Result<(), String> {
    let out_path: PathBuf = nodes[0].dir.path().join("create.out");
    let out = File::create(&out_path).map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new("redis-cli");
    cmd.args(["--cluster", "create"]);
    for n in nodes {
        cmd.arg(format!("127.0.0.1:{}", n.port));
    }
    let mut child = cmd
        .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("redis-cli not found in PATH");
    let end = Instant::now() + CREATE_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(st);
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    match status {
        Some(st) if st.success() => Ok(()),
        Some(st) => Err(format!("redis-cli --cluster create: {st}:\n{text}")),
        None => Err(format!(
            "redis-cli --cluster create did not finish in {CREATE_TIMEOUT:?}:\n{text}"
        )),
    }
}
