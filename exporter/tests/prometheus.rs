//! A real Prometheus (the `prometheus` binary; Debian package `prometheus`) scrapes the
//! exporter every second; its HTTP API must give back the known number of wins, per
//! campaign label too (hostile keys included), and the scrape must be healthy (Prometheus
//! parsed every line). Without the binary the test is skipped, except in CI (env CI set),
//! where it fails.

mod common;
use common::*;
use lottery_cluster::keyslot::key_slot;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn prometheus_bin() -> Option<PathBuf> {
    let candidates = [
        std::env::var("PROMETHEUS").ok().map(PathBuf::from),
        Some(PathBuf::from("/usr/bin/prometheus")),
    ];
    let found = candidates.into_iter().flatten().find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus not found (/usr/bin/prometheus or $PROMETHEUS): `make deps` installs it"
        );
        eprintln!("SKIPPED: prometheus not installed (apt-get install prometheus)");
    }
    found
}

struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(bin: &PathBuf, target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: lottery\n    static_configs:\n      - targets: ['{}']\n",
                target
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Prometheus {
            child,
            port,
            _dir: dir,
        }
    }

    fn api(&mut self, path_and_query: &str) -> Option<serde_json::Value> {
        if let Ok(Some(st)) = self.child.try_wait() {
            panic!("prometheus exited: {}", st);
        }
        let addr = format!("127.0.0.1:{}", self.port);
        std::net::TcpStream::connect(&addr).ok()?;
        let r = http(
            &addr,
            &format!("GET {} HTTP/1.0\r\nHost: {}\r\n\r\n", path_and_query, addr),
        );
        (r.status == 200).then(|| serde_json::from_slice(&r.body).ok())?
    }

    fn query(&mut self, q: &str) -> Option<Vec<serde_json::Value>> {
        let v = self.api(&format!("/api/v1/query?query={}", encode(q)))?;
        v["data"]["result"].as_array().cloned()
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{:02X}", b)
            }
        })
        .collect()
}

fn value(r: &serde_json::Value) -> f64 {
    r["value"][1].as_str().unwrap().parse().unwrap()
}

#[test]
fn real_prometheus_scrapes_the_exporter() {
    let Some(bin) = prometheus_bin() else { return };
    let r = RedisServer::start();
    let mut con = r.con();
    let hostile: &[u8] = b"a\"b\nc}\\ \xff\x00\t";
    let stream = (0..)
        .map(|n| format!("s{}", n))
        .find(|s| key_slot(s.as_bytes()) == key_slot(hostile))
        .unwrap();
    let campaigns: Vec<(Vec<u8>, u64)> = vec![
        (b"plain".to_vec(), 5),
        (hostile.to_vec(), 2),
        (vec![b'k'; 4096], 3),
    ];
    for (key, wins) in &campaigns {
        let mut c = redis::cmd("LOTTERY.CONFIGURE");
        c.arg(key)
            .arg(&["PRIZE", "p\"\n\\", "1", "INF", "NOTHING", "0"]);
        if key.as_slice() == hostile {
            c.arg("STREAM").arg(&stream);
        }
        let _: () = c.query(&mut con).unwrap();
        for u in 0..*wins {
            let _: redis::Value = redis::cmd("LOTTERY.DRAW")
                .arg(key)
                .arg(u)
                .query(&mut con)
                .unwrap();
        }
    }
    let e = Exporter::start(&["--redis", &r.url(), "--sample-ms", "200"], &[]);
    let mut p = Prometheus::start(&bin, &e.addr);

    let deadline = Instant::now() + Duration::from_secs(30);
    let sum_is = |p: &mut Prometheus, q: &str, want: f64| -> bool {
        p.query(q)
            .is_some_and(|r| r.len() == 1 && value(&r[0]) == want)
    };
    while !sum_is(&mut p, "sum(lottery_wins_total)", 10.0) {
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw 10 wins: {:?}",
            p.query("lottery_wins_total")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Per campaign: the label values are the keys' text (lossy), hostile bytes included.
    let per = p.query("lottery_wins_total").unwrap();
    assert_eq!(per.len(), 3, "{:?}", per);
    for (key, wins) in &campaigns {
        let text = String::from_utf8_lossy(key);
        let s = per
            .iter()
            .find(|s| s["metric"]["campaign"] == *text)
            .unwrap_or_else(|| panic!("{:?} missing", text));
        assert_eq!(value(s), *wins as f64);
    }
    let sold = p
        .query("sum by (prize) (lottery_prize_sold_total)")
        .unwrap();
    assert_eq!(sold.len(), 1);
    assert_eq!(sold[0]["metric"]["prize"], "p\"\n\\");
    assert_eq!(value(&sold[0]), 10.0);
    // The scrape is healthy: Prometheus parsed the whole exposition.
    let t = p.api("/api/v1/targets").unwrap();
    let target = &t["data"]["activeTargets"][0];
    assert_eq!(target["health"], "up", "{}", target);
    assert_eq!(target["lastError"], "");

    // More wins: the rate over the last seconds becomes positive, the total follows.
    for u in 100..104 {
        let _: redis::Value = redis::cmd("LOTTERY.DRAW")
            .arg("plain")
            .arg(u)
            .query(&mut con)
            .unwrap();
    }
    while !sum_is(&mut p, "sum(lottery_wins_total)", 14.0) {
        assert!(Instant::now() < deadline, "Prometheus never saw 14 wins");
        std::thread::sleep(Duration::from_millis(250));
    }
    let inc = p
        .query("sum(increase(lottery_wins_total{campaign=\"plain\"}[1m]))")
        .unwrap();
    assert!(value(&inc[0]) > 0.0, "{:?}", inc);
    let up = p.query("lottery_up").unwrap();
    assert_eq!(value(&up[0]), 1.0);
}
