//! lottery-writer against a real 3-master Redis Cluster: a campaign sharded over three keys
//! (`--cluster --shards`), a `kill -9` mid-run and a restart, a slot migrated to another master
//! while the writer is blocked reading (MOVED), and a single campaign with `--cluster --campaign`.

mod common;

use common::redis_cluster::{self, start_cluster, Node};
use common::*;
use redis::Value;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

const GROUP: &str = "writers";
const LONG: Duration = Duration::from_secs(60);

struct TestCluster {
    nodes: Vec<Node>,
}

fn url(port: u16) -> String {
    format!("redis://127.0.0.1:{}", port)
}

fn connect(port: u16) -> redis::Connection {
    redis::Client::open(url(port))
        .unwrap()
        .get_connection()
        .unwrap()
}

fn info_field(con: &mut redis::Connection, section: &str, field: &str) -> String {
    let text: String = if section == "REPLICATION" {
        redis::cmd("INFO").arg(section).query(con).unwrap()
    } else {
        redis::cmd("CLUSTER").arg(section).query(con).unwrap()
    };
    redis_cluster::info_field(&text, field)
}

impl TestCluster {
    fn start(masters: usize) -> Self {
        Self::start_with_replicas(masters, 0)
    }

    fn start_with_replicas(masters: usize, replicas: usize) -> Self {
        TestCluster {
            nodes: start_cluster(&module_path(), masters, replicas),
        }
    }

    fn seed(&self) -> String {
        url(self.nodes[0].port)
    }

    /// (port, node id) of the master serving `key`, as node 0 sees it.
    fn owner(&self, key: &str) -> (u16, String) {
        let mut con = connect(self.nodes[0].port);
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut con)
            .unwrap();
        let v: Value = redis::cmd("CLUSTER").arg("SLOTS").query(&mut con).unwrap();
        let Value::Array(ranges) = v else { panic!() };
        for r in ranges {
            let Value::Array(r) = r else { panic!() };
            let (Value::Int(a), Value::Int(b)) = (&r[0], &r[1]) else {
                panic!()
            };
            if *a <= slot && slot <= *b {
                let Value::Array(m) = &r[2] else { panic!() };
                let (Value::Int(port), Value::BulkString(id)) = (&m[1], &m[2]) else {
                    panic!("{:?}", m)
                };
                return (*port as u16, String::from_utf8(id.clone()).unwrap());
            }
        }
        panic!("slot {} not served", slot)
    }

    fn con_for(&self, key: &str) -> redis::Connection {
        connect(self.owner(key).0)
    }

    fn node_id(&self, port: u16) -> String {
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut connect(port))
            .unwrap()
    }

    /// Moves `key`'s slot, with its keys, from its master to the master on `to_port`.
    fn migrate_slot(&self, key: &str, to_port: u16) {
        let (from_port, from_id) = self.owner(key);
        assert_ne!(from_port, to_port);
        let to_id = self.node_id(to_port);
        let mut src = connect(from_port);
        let mut dst = connect(to_port);
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut src)
            .unwrap();
        let ok = |c: &mut redis::Connection, args: &[&str]| {
            let _: () = redis::cmd("CLUSTER").arg(args).query(c).unwrap();
        };
        let s = slot.to_string();
        ok(&mut dst, &["SETSLOT", &s, "IMPORTING", &from_id]);
        ok(&mut src, &["SETSLOT", &s, "MIGRATING", &to_id]);
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(100)
                .query(&mut src)
                .unwrap();
            if keys.is_empty() {
                break;
            }
            let _: () = redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(to_port)
                .arg("")
                .arg(0)
                .arg(10_000)
                .arg("KEYS")
                .arg(&keys)
                .query(&mut src)
                .unwrap();
        }
        ok(&mut dst, &["SETSLOT", &s, "NODE", &to_id]);
        ok(&mut src, &["SETSLOT", &s, "NODE", &to_id]);
        for n in &self.nodes {
            if n.port != from_port && n.port != to_port {
                ok(&mut connect(n.port), &["SETSLOT", &s, "NODE", &to_id]);
            }
        }
        wait_until(Duration::from_secs(10), "the slot's new owner", || {
            self.owner(key).0 == to_port
        });
    }
}

/// Creates the shard campaigns `{NAME.i}` on their masters and the descriptor hash.
fn create_sharded(c: &TestCluster, name: &str, shards: usize) -> Vec<String> {
    let keys: Vec<String> = (0..shards).map(|i| format!("{{{}.{}}}", name, i)).collect();
    for k in &keys {
        configure(&mut c.con_for(k), k);
    }
    let desc = format!("lottery:shards:{}", name);
    let mut h = redis::cmd("HSET");
    h.arg(&desc)
        .arg("format")
        .arg("1")
        .arg("name")
        .arg(name)
        .arg("shards")
        .arg(shards)
        .arg("route")
        .arg("fnv1a64-splitmix-mul/1")
        .arg("stock:gold")
        .arg("INF")
        .arg("stock:silver")
        .arg("INF")
        .arg("created_ms")
        .arg(1_700_000_000_000u64);
    for (i, k) in keys.iter().enumerate() {
        h.arg(format!("shard:{}", i)).arg(k);
    }
    let _: i64 = h.query(&mut c.con_for(&desc)).unwrap();
    keys
}

fn stream_of(key: &str) -> String {
    format!("{}:wins", key)
}

fn rows_of(db: &Path, campaign: &str) -> i64 {
    if !db.exists() {
        return 0;
    }
    sqlite(db)
        .query_row(
            "SELECT count(*) FROM wins WHERE campaign = ?1",
            [campaign],
            |r| r.get(0),
        )
        .unwrap_or(0)
}

fn total_xlen(c: &TestCluster, keys: &[String]) -> i64 {
    keys.iter()
        .map(|k| xlen(&mut c.con_for(k), &stream_of(k)))
        .sum()
}

/// Every entry of every shard's stream is one row of that shard (same user and prize),
/// nothing else is stored, and nothing is left pending.
fn check_shards(c: &TestCluster, keys: &[String], db: &Path) {
    let conn = sqlite(db);
    let (total, distinct): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(DISTINCT campaign || ' ' || stream_id) FROM wins",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(total, distinct, "duplicate rows");
    assert_eq!(total, total_xlen(c, keys), "rows != sum of XLEN");
    for k in keys {
        let mut con = c.con_for(k);
        let stream = stream_of(k);
        let mut want: HashMap<String, (Vec<u8>, String)> = HashMap::new();
        let mut start = "-".to_string();
        loop {
            let v: Vec<(String, HashMap<String, Vec<u8>>)> = redis::cmd("XRANGE")
                .arg(&stream)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(5000)
                .query(&mut con)
                .unwrap();
            let Some(last) = v.last().map(|e| e.0.clone()) else {
                break;
            };
            for (id, f) in v {
                want.insert(
                    id,
                    (
                        f["user"].clone(),
                        String::from_utf8(f["prize"].clone()).unwrap(),
                    ),
                );
            }
            start = format!("({}", last);
        }
        let mut st = conn
            .prepare("SELECT stream_id, user_id, prize FROM wins WHERE campaign = ?1")
            .unwrap();
        let got: HashMap<String, (Vec<u8>, String)> = st
            .query_map([k], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(got.len(), want.len(), "rows of {}", k);
        assert!(got == want, "rows of {} differ from its stream", k);
        assert_eq!(pending(&mut con, &stream, GROUP), 0, "pending on {}", k);
    }
}

fn shard_args(c: &TestCluster, name: &str, db: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "--cluster".into(),
        "--redis".into(),
        c.seed(),
        "--shards".into(),
        name.into(),
        "--group".into(),
        GROUP.into(),
        "--consumer".into(),
        "w1".into(),
        "--database".into(),
        format!("sqlite:{}", db.display()),
        "--log-every-ms".into(),
        "0".into(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[test]
fn sharded_kill9_restart_every_win_once() {
    let t0 = Instant::now();
    let c = TestCluster::start(3);
    let keys = create_sharded(&c, "wt", 3);
    const PER_SHARD: u64 = 15_000;
    for (i, k) in keys.iter().enumerate() {
        let base = i as u64 * 1_000_000;
        draw(&mut c.con_for(k), k, base, base + PER_SHARD);
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wins.db");
    let log = dir.path().join("w.log");

    // Slowed down (per shard), so the kill lands mid-run.
    let mut w = WriterProc::spawn(
        &log,
        &shard_args(&c, "wt", &db, &["--rate", "5000", "--batch", "200"]),
    );
    wait_until(LONG, "some rows", || rows(&db) >= 12_000);
    w.kill9();
    let mid = rows(&db);
    assert!(
        mid < 3 * PER_SHARD as i64,
        "finished before the kill ({})",
        mid
    );
    for k in &keys {
        assert!(
            rows_of(&db, k) > 0,
            "shard {} not consumed: {}",
            k,
            w.log_text()
        );
    }

    // Restart at full speed; more wins arrive while it is blocked reading.
    let mut w = WriterProc::spawn(
        &log,
        &shard_args(
            &c,
            "wt",
            &db,
            &["--batch", "300", "--status-every-ms", "200"],
        ),
    );
    wait_until(LONG, "rows == XLEN", || rows(&db) == 3 * PER_SHARD as i64);
    for (i, k) in keys.iter().enumerate() {
        let base = i as u64 * 1_000_000 + PER_SHARD;
        draw(&mut c.con_for(k), k, base, base + 500);
    }
    wait_until(LONG, "rows == sum of XLEN", || {
        rows(&db) == total_xlen(&c, &keys)
    });
    // The status hash (on the master owning its key): the shards' counts added up.
    let status_key = format!("lottery-writer:{{}}:{GROUP}:w1:shards:wt");
    let new_rows = (total_xlen(&c, &keys) - mid).to_string();
    let mut h: HashMap<String, String> = HashMap::new();
    wait_until(LONG, "the status hash counts every new row", || {
        h = redis::cmd("HGETALL")
            .arg(&status_key)
            .query(&mut c.con_for(&status_key))
            .unwrap();
        h.get("rows_total") == Some(&new_rows)
    });
    assert_eq!(h["target"], "shards:wt", "{h:?}");
    assert_eq!(h["stream"], "", "{h:?}");
    assert_eq!(h["database"], "sqlite", "{h:?}");
    let n = |k: &str| h[k].parse::<u64>().unwrap();
    assert_eq!(
        n("read_total"),
        n("rows_total") + n("duplicates_total"),
        "{h:?}"
    );
    assert_eq!(n("acked_total"), n("read_total"), "{h:?}");
    let st = w.term();
    let text = w.log_text();
    assert!(st.success(), "exit {:?}; log:\n{}", st, text);
    for k in &keys {
        assert!(
            text.contains(&format!("event=stopped shard={}", k)),
            "{}",
            text
        );
    }
    assert!(text.contains("event=stopped shards=3"), "{}", text);
    check_shards(&c, &keys, &db);
    eprintln!("sharded kill -9 test took {:?}", t0.elapsed());
}

#[test]
fn slot_migration_while_blocked_and_single_campaign_on_cluster() {
    let t0 = Instant::now();
    let c = TestCluster::start(3);
    let keys = create_sharded(&c, "mg", 3);
    for (i, k) in keys.iter().enumerate() {
        let base = i as u64 * 1_000_000;
        draw(&mut c.con_for(k), k, base, base + 2000);
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wins.db");
    let log = dir.path().join("w.log");
    let mut w = WriterProc::spawn(
        &log,
        &shard_args(
            &c,
            "mg",
            &db,
            &["--drain-every-ms", "300", "--block-ms", "2000"],
        ),
    );
    wait_until(LONG, "rows == sum of XLEN", || {
        rows(&db) == total_xlen(&c, &keys)
    });

    // The writer is now blocked in XREADGROUP on every shard. Move shard 1's slot (the
    // campaign and its stream) to another master, then draw on the new owner.
    let moved = &keys[1];
    let (from, _) = c.owner(moved);
    let to = c.nodes.iter().map(|n| n.port).find(|p| *p != from).unwrap();
    c.migrate_slot(moved, to);
    for (i, k) in keys.iter().enumerate() {
        let base = i as u64 * 1_000_000 + 2000;
        draw(&mut c.con_for(k), k, base, base + 1000);
    }
    wait_until(LONG, "rows == sum of XLEN after the migration", || {
        rows(&db) == total_xlen(&c, &keys)
    });
    // And the drains of the moved shard keep coming (LOTTERY.DRAIN follows the slot).
    wait_until(LONG, "drains add up", || {
        keys.iter()
            .all(|k| drained_sold(&db, k) == stats_int(&mut c.con_for(k), k, "wins"))
    });
    let st = w.term();
    let text = w.log_text();
    assert!(st.success(), "exit {:?}; log:\n{}", st, text);
    for l in text
        .lines()
        .filter(|l| l.contains("event=moved") || l.contains("event=retry"))
    {
        eprintln!("{}", l);
    }
    // The blocked XREADGROUP either is answered with MOVED (or a later command is), or is
    // unblocked with an error (the key left the node / the node became a replica), retried.
    assert!(
        text.contains("event=moved") || text.contains("UNBLOCKED"),
        "{}",
        text
    );
    check_shards(&c, &keys, &db);
    for k in &keys {
        assert_eq!(
            drained_sold(&db, k),
            stats_int(&mut c.con_for(k), k, "wins"),
            "drains of {}",
            k
        );
    }

    // A single (unsharded) campaign on the cluster: --cluster --campaign, seeded with a node
    // that does not own it and a dead seed first.
    let solo = "solo";
    configure(&mut c.con_for(solo), solo);
    draw(&mut c.con_for(solo), solo, 0, 3000);
    let (owner, _) = c.owner(solo);
    let other = c
        .nodes
        .iter()
        .map(|n| n.port)
        .find(|p| *p != owner)
        .unwrap();
    let db2 = dir.path().join("solo.db");
    let dead = free_port();
    let mut w = WriterProc::spawn(
        &log,
        &[
            "--cluster",
            "--redis",
            &format!("{},{}", url(dead), url(other)),
            "--campaign",
            solo,
            "--group",
            GROUP,
            "--consumer",
            "w1",
            "--database",
            &format!("sqlite:{}", db2.display()),
        ]
        .map(String::from),
    );
    wait_until(LONG, "solo rows", || rows(&db2) == 3000);
    assert!(w.term().success(), "{}", w.log_text());
    let mut con = c.con_for(solo);
    assert_eq!(xlen(&mut con, "{solo}:wins"), 3000);
    assert_eq!(pending(&mut con, "{solo}:wins", GROUP), 0);
    let distinct: i64 = sqlite(&db2)
        .query_row("SELECT count(DISTINCT stream_id) FROM wins", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(distinct, 3000);
    eprintln!("migration test took {:?}", t0.elapsed());
}

#[test]
fn missing_descriptor_is_a_clear_error() {
    let c = TestCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wins.db");
    let log = dir.path().join("w.log");
    let mut w = WriterProc::spawn(&log, &shard_args(&c, "nope", &db, &[]));
    let st = w.wait(Duration::from_secs(20));
    assert_eq!(st.code(), Some(1), "{}", w.log_text());
    assert!(
        w.log_text().contains("no sharded campaign"),
        "{}",
        w.log_text()
    );
}

#[test]
fn sharded_through_a_failover() {
    let t0 = Instant::now();
    let c = TestCluster::start_with_replicas(3, 1);
    let keys = create_sharded(&c, "fo", 3);
    for (i, k) in keys.iter().enumerate() {
        let base = i as u64 * 1_000_000;
        draw(&mut c.con_for(k), k, base, base + 2000);
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wins.db");
    let log = dir.path().join("w.log");
    let mut w = WriterProc::spawn(
        &log,
        &shard_args(&c, "fo", &db, &["--drain-every-ms", "300"]),
    );
    wait_until(LONG, "rows == sum of XLEN", || {
        rows(&db) == total_xlen(&c, &keys)
    });

    // CLUSTER FAILOVER on the replica of shard 0's master, while the writer is blocked.
    let (old, _) = c.owner(&keys[0]);
    let replica = c
        .nodes
        .iter()
        .map(|n| n.port)
        .find(|p| {
            let mut con = connect(*p);
            info_field(&mut con, "REPLICATION", "role") == "slave"
                && info_field(&mut con, "REPLICATION", "master_port") == old.to_string()
        })
        .expect("a replica of shard 0's master");
    let mut rc = connect(replica);
    wait_until(Duration::from_secs(20), "replica in sync", || {
        info_field(&mut rc, "REPLICATION", "master_link_status") == "up"
    });
    let _: () = redis::cmd("CLUSTER")
        .arg("FAILOVER")
        .query(&mut rc)
        .unwrap();
    wait_until(Duration::from_secs(30), "the replica promoted", || {
        info_field(&mut rc, "REPLICATION", "role") == "master" && c.owner(&keys[0]).0 == replica
    });
    for (i, k) in keys.iter().enumerate() {
        let base = i as u64 * 1_000_000 + 2000;
        draw(&mut c.con_for(k), k, base, base + 1000);
    }
    wait_until(LONG, "rows == sum of XLEN after the failover", || {
        rows(&db) == total_xlen(&c, &keys)
    });
    wait_until(LONG, "drains add up", || {
        keys.iter()
            .all(|k| drained_sold(&db, k) == stats_int(&mut c.con_for(k), k, "wins"))
    });
    let st = w.term();
    let text = w.log_text();
    assert!(st.success(), "exit {:?}; log:\n{}", st, text);
    for l in text
        .lines()
        .filter(|l| l.contains("event=moved") || l.contains("event=retry"))
    {
        eprintln!("{}", l);
    }
    // The blocked XREADGROUP either is answered with MOVED (or a later command is), or is
    // unblocked with an error (the key left the node / the node became a replica), retried.
    assert!(
        text.contains("event=moved") || text.contains("UNBLOCKED"),
        "{}",
        text
    );
    check_shards(&c, &keys, &db);
    eprintln!("failover test took {:?}", t0.elapsed());
}

#[test]
fn sharded_through_an_unplanned_failover() {
    let t0 = Instant::now();
    let mut c = TestCluster::start_with_replicas(3, 1);
    let keys = create_sharded(&c, "uf", 3);
    for (i, k) in keys.iter().enumerate() {
        let base = i as u64 * 1_000_000;
        draw(&mut c.con_for(k), k, base, base + 2000);
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wins.db");
    let log = dir.path().join("w.log");
    let mut w = WriterProc::spawn(
        &log,
        &shard_args(
            &c,
            "uf",
            &db,
            &["--drain-every-ms", "300", "--max-backoff-ms", "500"],
        ),
    );
    wait_until(LONG, "rows == sum of XLEN", || {
        rows(&db) == total_xlen(&c, &keys)
    });

    // A shard whose master is not node 0 (node 0 answers the test's own routing).
    let seed = c.nodes[0].port;
    let victim_key = keys
        .iter()
        .find(|k| c.owner(k).0 != seed)
        .expect("a shard off node 0")
        .clone();
    let (old, _) = c.owner(&victim_key);
    let replica = c
        .nodes
        .iter()
        .map(|n| n.port)
        .find(|p| {
            let mut con = connect(*p);
            info_field(&mut con, "REPLICATION", "role") == "slave"
                && info_field(&mut con, "REPLICATION", "master_port") == old.to_string()
        })
        .expect("a replica of the victim");
    let mut rc = connect(replica);
    wait_until(Duration::from_secs(20), "replica in sync", || {
        info_field(&mut rc, "REPLICATION", "master_link_status") == "up"
    });
    std::thread::sleep(Duration::from_millis(300));
    // The master dies (SIGKILL) and stays dead; its replica takes over.
    let victim = c.nodes.iter_mut().find(|n| n.port == old).unwrap();
    victim.kill();
    let _: () = redis::cmd("CLUSTER")
        .arg("FAILOVER")
        .arg("TAKEOVER")
        .query(&mut rc)
        .unwrap();
    wait_until(Duration::from_secs(30), "the replica promoted", || {
        info_field(&mut rc, "REPLICATION", "role") == "master" && c.owner(&victim_key).0 == replica
    });
    // Keep drawing on every shard (the victim's on its new master).
    for (i, k) in keys.iter().enumerate() {
        let base = i as u64 * 1_000_000 + 2000;
        draw(&mut c.con_for(k), k, base, base + 1000);
    }
    wait_until(LONG, "rows == sum of XLEN after the failover", || {
        rows(&db) == total_xlen(&c, &keys)
    });
    wait_until(LONG, "drains add up", || {
        keys.iter()
            .all(|k| drained_sold(&db, k) == stats_int(&mut c.con_for(k), k, "wins"))
    });
    let st = w.term();
    let text = w.log_text();
    assert_eq!(st.code(), Some(0), "log:\n{}", text);
    check_shards(&c, &keys, &db);
    eprintln!("unplanned failover test took {:?}", t0.elapsed());
}

/// Cluster ports taken from many threads at once: no port or bus port handed out twice (free
/// ports included), none over 55535, and neither a port nor its bus port in the kernel's
/// ephemeral range (where free ports and outgoing connections come from).
#[test]
fn cluster_ports_are_never_handed_out_twice() {
    let handles: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(|| {
                (0..40)
                    .map(|_| (redis_cluster::cluster_port(), free_port()))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let got: Vec<(u16, u16)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let r: Vec<u16> = range
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let mut all = std::collections::HashSet::new();
    for (p, f) in &got {
        assert!(*p <= redis_cluster::MAX_CLUSTER_PORT, "{p}");
        let bus = p + redis_cluster::BUS_OFFSET;
        assert!(bus < r[0] || *p > r[1], "{p} or {bus} in {r:?}");
        for x in [*p, bus, *f] {
            assert!(all.insert(x), "{x} handed out twice");
        }
    }
    assert_eq!(all.len(), 3 * 8 * 40);
}

/// A redis-server without cluster mode on `port`, killed when dropped.
struct PlainServer {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl PlainServer {
    fn start(port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_until(Duration::from_secs(10), "the plain redis-server", || {
            redis::Client::open(url(port))
                .and_then(|c| c.get_connection())
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok()
        });
        PlainServer { child, _dir: dir }
    }
}

impl Drop for PlainServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The set-up starts over on fresh ports when a node's port is answered by another server
/// (attempt 1) and when a node cannot bind its bus port (attempt 2); the third attempt's
/// cluster works, and the other server was left alone.
#[test]
fn cluster_setup_starts_over_on_taken_ports() {
    let other_port = redis_cluster::cluster_port();
    let other = PlainServer::start(other_port);
    let held = redis_cluster::cluster_port();
    let _bus = std::net::TcpListener::bind(("127.0.0.1", held + redis_cluster::BUS_OFFSET))
        .expect("hold a bus port");
    let mut picks = 0;
    let nodes = redis_cluster::start_cluster_on(&module_path(), 3, 0, &mut || {
        picks += 1;
        match picks {
            1 => other_port,
            5 => held,
            _ => redis_cluster::cluster_port(),
        }
    });
    assert_eq!(picks, 9, "three attempts of three nodes each");
    for n in &nodes {
        assert!(n.port != other_port && n.port != held);
        let text: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query(&mut connect(n.port))
            .unwrap();
        assert_eq!(redis_cluster::info_field(&text, "cluster_state"), "ok");
    }
    let mut c = connect(other_port);
    let info: String = redis::cmd("INFO").arg("server").query(&mut c).unwrap();
    assert_eq!(
        redis_cluster::info_field(&info, "process_id"),
        other.child.id().to_string()
    );
}

/// When every attempt fails, the test fails with the reason of each.
#[test]
fn cluster_setup_gives_up_after_three_attempts() {
    let held = redis_cluster::cluster_port();
    let _l = std::net::TcpListener::bind(("127.0.0.1", held)).expect("hold a port");
    let r = std::panic::catch_unwind(|| {
        redis_cluster::start_cluster_on(&module_path(), 3, 0, &mut || held)
    });
    let Err(err) = r else {
        panic!("a cluster on a port held by the test")
    };
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("in 3 attempts"), "{msg}");
    for a in 1..=3 {
        assert!(msg.contains(&format!("attempt {a}: ")), "{msg}");
    }
    assert!(msg.contains(&format!("port {held}")), "{msg}");
}
