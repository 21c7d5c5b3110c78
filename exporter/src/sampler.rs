//! The sampler thread: every `--sample-ms` it samples every node (collect.rs) and publishes
//! the result; `/metrics` and `/api/status` answer from the last sample, so a client cannot
//! make the exporter load Redis more than that. It also keeps each campaign's history of
//! `(t_ms, draws, wins)` over the last [`HISTORY_SPAN_MS`], a point at most every
//! [`HISTORY_GAP_MS`], and the last good sample of each node (shown by the API while the node is down).

use crate::collect::{self, Discovered, Options};
use crate::model::{lossy, Node, Sample};
use crate::node::Nodes;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const HISTORY_SPAN_MS: i64 = 10 * 60 * 1000;
/// Least time between two history points (a sample every 2 s with some jitter gets each).
pub const HISTORY_GAP_MS: i64 = 1800;
pub const HISTORY_POINTS: usize = (HISTORY_SPAN_MS / HISTORY_GAP_MS) as usize + 1;
/// Error texts kept from one sample (the rest are counted only).
pub const MAX_ERRORS: usize = 50;

#[derive(Default)]
pub struct State {
    pub sample: Sample,
    pub taken: Option<Instant>,
    pub errors_total: u64,
    /// Per campaign (by its key as text): oldest first.
    pub history: HashMap<String, VecDeque<[i64; 3]>>,
    /// The last sample in which each node answered.
    pub last_good: HashMap<String, Node>,
    /// `/metrics` of `sample`, rendered once (the two parts around the sample age line),
    /// shared by every response.
    pub metrics: (Arc<[u8]>, Arc<[u8]>),
    /// `/api/status` of this state, rendered once.
    pub api: Arc<[u8]>,
}

pub type Shared = Arc<Mutex<State>>;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Locks the state; a panic elsewhere while holding it does not stop the exporter.
pub fn lock(s: &Shared) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct Sampler {
    pub nodes: Nodes,
    pub opts: Options,
    pub every: Duration,
    disc: HashMap<String, Discovered>,
}

impl Sampler {
    pub fn new(nodes: Nodes, opts: Options, every: Duration) -> Sampler {
        Sampler {
            nodes,
            opts,
            every,
            disc: HashMap::new(),
        }
    }

    /// One sample of every node.
    pub fn sample(&mut self) -> Sample {
        let start = Instant::now();
        let mut errors = Vec::new();
        let targets = self.nodes.targets(&mut errors);
        let addrs: Vec<String> = targets.iter().map(|(a, _)| a.clone()).collect();
        self.nodes.retain(&addrs);
        self.disc.retain(|a, _| addrs.contains(a));
        let mut nodes = Vec::new();
        for (addr, info) in &targets {
            let disc = self.disc.entry(addr.clone()).or_default();
            let raw = (info, self.nodes.timeout());
            let r = self.nodes.con(addr, info).and_then(|con| {
                collect::sample_node(con, raw, addr, &self.opts, disc, &mut errors)
            });
            match r {
                Ok(n) => nodes.push(n),
                Err(e) => {
                    self.nodes.drop_con(addr);
                    errors.push(format!("{}: {}", addr, e));
                    nodes.push(Node {
                        addr: addr.clone(),
                        ..Default::default()
                    });
                }
            }
        }
        dedupe(&mut nodes, &mut errors);
        if !self.opts.campaigns.is_empty() && nodes.iter().all(|n| n.up) {
            for k in &self.opts.campaigns {
                if !nodes
                    .iter()
                    .any(|n| n.campaigns.iter().any(|c| &c.key == k))
                {
                    errors.push(format!("campaign {} not found", lossy(k)));
                }
            }
        }
        Sample {
            time_ms: now_ms(),
            duration_s: start.elapsed().as_secs_f64(),
            nodes,
            errors,
        }
    }

    /// Samples forever, publishing into `shared`; `ready` is told after each publish (while
    /// someone listens).
    pub fn run(mut self, shared: Shared, ready: std::sync::mpsc::Sender<()>) {
        loop {
            let start = Instant::now();
            // A bug in sampling must not stop the exporter silently: the sample reports it.
            let s = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.sample()))
                .unwrap_or_else(|_| Sample {
                    time_ms: now_ms(),
                    errors: vec!["internal error while sampling (a bug: please report)".into()],
                    ..Default::default()
                });
            let refresh = self.every.as_millis() as u64;
            // Publishing renders the answers: a bug there must not end the thread either
            // (the answers of the previous sample stay, and the next sample tries again).
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                publish(&shared, s, refresh)
            }))
            .is_err()
            {
                lock(&shared).errors_total += 1;
            }
            let _ = ready.send(());
            std::thread::sleep(self.every.saturating_sub(start.elapsed()));
        }
    }
}

/// Keeps each campaign (by its key as text) and each writer (target, group, consumer) once over all
/// nodes: two keys differing only in invalid UTF-8, or one key seen on two nodes, would
/// otherwise give two series with the same labels.
fn dedupe(nodes: &mut [Node], errors: &mut Vec<String>) {
    let mut seen = HashSet::new();
    let mut wseen = HashSet::new();
    for n in nodes.iter_mut() {
        let addr = n.addr.clone();
        n.campaigns.retain(|c| {
            let k = lossy(&c.key);
            let fresh = seen.insert(k.clone());
            if !fresh {
                errors.push(format!(
                    "{}: campaign {} reported once only (same text as another key)",
                    addr, k
                ));
            }
            fresh
        });
        n.writers.retain(|w| {
            let fresh = wseen.insert((w.target.clone(), w.group.clone(), w.consumer.clone()));
            if !fresh {
                errors.push(format!(
                    "{}: writer {}:{}:{} reported once only",
                    addr, w.group, w.consumer, w.target
                ));
            }
            fresh
        });
    }
}

/// What the answers show until the first sample is in: every node (`addrs`) down, with an
/// error text that is not counted as a scrape error; the sample's age counts from now.
pub fn placeholder(shared: &Shared, addrs: Vec<String>, refresh_ms: u64) {
    let s = Sample {
        time_ms: now_ms(),
        nodes: addrs
            .into_iter()
            .map(|addr| Node {
                addr,
                ..Default::default()
            })
            .collect(),
        errors: vec!["the first sample is not finished yet".into()],
        ..Default::default()
    };
    publish(shared, s, refresh_ms);
    let mut st = lock(shared);
    st.errors_total = 0;
    let (a, b) = crate::prom::render_parts(&st.sample, 0);
    st.metrics = (Arc::from(a.into_bytes()), Arc::from(b.into_bytes()));
}

/// Stores a new sample: history, last good node samples, error count; and renders the
/// answers of `/metrics` and `/api/status` (`refresh_ms`: the page's refresh period).
pub fn publish(shared: &Shared, mut s: Sample, refresh_ms: u64) {
    let mut st = lock(shared);
    st.errors_total += s.errors.len() as u64;
    s.errors.truncate(MAX_ERRORS);
    let t = s.time_ms;
    for n in &s.nodes {
        if n.up {
            st.last_good.insert(n.addr.clone(), n.clone());
        }
    }
    let addrs: HashSet<&String> = s.nodes.iter().map(|n| &n.addr).collect();
    st.last_good.retain(|a, _| addrs.contains(a));
    // History: campaigns of nodes that answered get a point; those of a node that is down
    // keep theirs; campaigns gone are forgotten.
    let mut live = HashSet::new();
    for n in &s.nodes {
        let good = if n.up {
            Some(n)
        } else {
            st.last_good.get(&n.addr)
        };
        for c in good.map(|g| g.campaigns.as_slice()).unwrap_or(&[]) {
            live.insert(lossy(&c.key));
        }
    }
    st.history.retain(|k, _| live.contains(k));
    for n in s.nodes.iter().filter(|n| n.up) {
        for c in &n.campaigns {
            let h = st.history.entry(lossy(&c.key)).or_default();
            if h.back().is_none_or(|p| t - p[0] >= HISTORY_GAP_MS) {
                h.push_back([t, c.draws, c.wins]);
            }
            while h.front().is_some_and(|p| t - p[0] > HISTORY_SPAN_MS) || h.len() > HISTORY_POINTS
            {
                h.pop_front();
            }
        }
    }
    st.sample = s;
    st.taken = Some(Instant::now());
    let (a, b) = crate::prom::render_parts(&st.sample, st.errors_total);
    st.metrics = (Arc::from(a.into_bytes()), Arc::from(b.into_bytes()));
    st.api = Arc::from(crate::api::render(&st, refresh_ms).into_bytes());
}
