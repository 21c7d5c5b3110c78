//! `--cluster` against a real 3-master Redis Cluster: from one seed, every master is sampled,
//! campaigns and writer status hashes on every master are reported once, and `--campaign`
//! keys are found on whichever master owns them.

mod common;
use common::redis_cluster::{start_cluster, Node};
use common::*;
use lottery_cluster::keyslot::key_slot;

fn con(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{}", port))
        .unwrap()
        .get_connection()
        .unwrap()
}

/// The port of the master owning `key`'s slot (CLUSTER SLOTS as node 0 sees it).
fn owner(nodes: &[Node], key: &str) -> u16 {
    let slot = i64::from(key_slot(key.as_bytes()));
    let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query(&mut con(nodes[0].port))
        .unwrap();
    for r in ranges {
        let redis::Value::Array(r) = r else { panic!() };
        let (redis::Value::Int(a), redis::Value::Int(b), redis::Value::Array(m)) =
            (&r[0], &r[1], &r[2])
        else {
            panic!("{:?}", r)
        };
        let redis::Value::Int(port) = &m[1] else {
            panic!()
        };
        if *a <= slot && slot <= *b {
            return *port as u16;
        }
    }
    panic!("slot {} not served", slot)
}

#[test]
fn cluster_every_master() {
    let nodes = start_cluster(&module_path(), 3, 0);
    // Campaigns spread over the masters (different hash tags), 2 draws each.
    let keys: Vec<String> = (0..12).map(|i| format!("camp:{{t{}}}", i)).collect();
    let mut owners = std::collections::HashSet::new();
    for k in &keys {
        let port = owner(&nodes, k);
        owners.insert(port);
        let mut c = con(port);
        let _: () = redis::cmd("LOTTERY.CONFIGURE")
            .arg(k)
            .arg(&["PRIZE", "p", "1", "INF", "NOTHING", "0"])
            .query(&mut c)
            .unwrap();
        for u in 0..2 {
            let _: redis::Value = redis::cmd("LOTTERY.DRAW")
                .arg(k)
                .arg(u)
                .query(&mut c)
                .unwrap();
        }
    }
    assert_eq!(owners.len(), 3, "the keys should cover every master");
    let wkey = "lottery-writer:g:w1";
    let _: () = redis::cmd("HSET")
        .arg(wkey)
        .arg(&[
            "target",
            "camp:{t0}",
            "group",
            "g",
            "consumer",
            "w1",
            "rows_total",
            "24",
            "updated_ms",
            "1",
        ])
        .query(&mut con(owner(&nodes, wkey)))
        .unwrap();

    let seed = format!("redis://127.0.0.1:{}", nodes[1].port);
    let e = Exporter::start(&["--redis", &seed, "--cluster", "--sample-ms", "200"], &[]);
    let m = e.metrics();
    for n in &nodes {
        assert_eq!(
            m.get("lottery_up", &[("node", &format!("127.0.0.1:{}", n.port))]),
            Some(1.0)
        );
    }
    assert_eq!(m.all("lottery_up").len(), 3);
    assert_eq!(m.all("lottery_wins_total").len(), 12);
    for k in &keys {
        assert_eq!(
            m.get("lottery_wins_total", &[("campaign", k)]),
            Some(2.0),
            "{}",
            k
        );
    }
    let module_wins: f64 = m
        .all("lottery_module_wins_total")
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert_eq!(module_wins, 24.0);
    assert_eq!(
        m.get(
            "lottery_writer_rows_total",
            &[("group", "g"), ("consumer", "w1"), ("target", "camp:{t0}")]
        ),
        Some(24.0)
    );
    assert_eq!(
        m.get("lottery_exporter_scrape_errors_total", &[]),
        Some(0.0)
    );
    drop(e);

    // Given keys: each found on its owner (the other masters answer MOVED, not an error).
    let e = Exporter::start(
        &[
            "--redis",
            &seed,
            "--cluster",
            "--campaign",
            &keys[0],
            "--campaign",
            &keys[5],
        ],
        &[],
    );
    let m = e.metrics();
    assert_eq!(m.all("lottery_wins_total").len(), 2);
    assert_eq!(
        m.get("lottery_wins_total", &[("campaign", &keys[5])]),
        Some(2.0)
    );
    let j = e.status();
    assert_eq!(j["errors"].as_array().unwrap().len(), 0, "{}", j["errors"]);
    assert_eq!(j["campaigns"].as_array().unwrap().len(), 2);
}
