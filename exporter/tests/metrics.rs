//! /metrics and /api/status against a real redis-server with the module: the numbers equal
//! LOTTERY.STATS after known draws, hostile keys and prize ids keep the output valid, the
//! discovery bound, the writer status hash, and Redis going down.

mod common;
use common::*;
use lottery_cluster::keyslot::key_slot;
use std::time::Duration;

fn draw(con: &mut redis::Connection, key: &[u8], user: &[u8]) -> String {
    let v: Vec<redis::Value> = redis::cmd("LOTTERY.DRAW")
        .arg(key)
        .arg(user)
        .query(con)
        .unwrap();
    match &v[0] {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        other => panic!("{:?}", other),
    }
}

fn cfg(con: &mut redis::Connection, key: &[u8], args: &[&[u8]]) {
    let mut c = redis::cmd("LOTTERY.CONFIGURE");
    c.arg(key);
    for a in args {
        c.arg(*a);
    }
    let _: () = c.query(con).unwrap();
}

#[test]
fn metrics_equal_stats() {
    let r = RedisServer::start();
    let mut con = r.con();
    // "shop": wins and losses, a cooldown rejection, one INF prize.
    cfg(
        &mut con,
        b"shop",
        &[
            b"PRIZE",
            b"phone",
            b"1",
            b"3",
            b"PRIZE",
            b"sticker",
            b"1",
            b"INF",
            b"NOTHING",
            b"2",
            b"COOLDOWN",
            b"600000",
            b"MAXWINS",
            b"INF",
        ],
    );
    let mut outcomes = Vec::new();
    for i in 0..40 {
        outcomes.push(draw(&mut con, b"shop", format!("u{}", i).as_bytes()));
    }
    assert_eq!(draw(&mut con, b"shop", b"u0"), "COOLDOWN");
    // "quiet": paused, one PAUSED rejection.
    cfg(&mut con, b"quiet", &[b"PRIZE", b"x", b"1", b"5"]);
    let _: () = redis::cmd("LOTTERY.PAUSE")
        .arg("quiet")
        .query(&mut con)
        .unwrap();
    assert_eq!(draw(&mut con, b"quiet", b"v"), "PAUSED");
    let _: () = redis::cmd("XGROUP")
        .arg(&["CREATE", "{shop}:wins", "g1", "0"])
        .query(&mut con)
        .unwrap();

    let e = Exporter::start(&["--redis", &r.url(), "--sample-ms", "100"], &[]);
    let m = e.metrics();
    let s = stats(&mut con, b"shop");
    let wins = outcomes.iter().filter(|o| *o == "WIN").count() as f64;
    assert!(wins > 0.0 && wins < 40.0, "{:?}", outcomes);
    let shop = [("campaign", "shop")];
    assert_eq!(m.get("lottery_draws_total", &shop), Some(40.0));
    assert_eq!(m.get("lottery_wins_total", &shop), Some(wins));
    assert_eq!(m.get("lottery_losses_total", &shop), Some(40.0 - wins));
    for (name, field) in [
        ("lottery_draws_total", "draws"),
        ("lottery_wins_total", "wins"),
        ("lottery_losses_total", "losses"),
        ("lottery_users", "users"),
        ("lottery_replays_total", "replays"),
    ] {
        assert_eq!(m.get(name, &shop), Some(int(&s[field]) as f64), "{}", name);
    }
    // One rejection series per rejected_* field of STATS, with its value.
    let rejected: Vec<(&String, i64)> = s
        .iter()
        .filter(|(k, _)| k.starts_with("rejected_"))
        .map(|(k, v)| (k, int(v)))
        .collect();
    assert!(rejected.len() >= 11, "{:?}", rejected);
    assert_eq!(
        m.all("lottery_rejections_total")
            .iter()
            .filter(|(l, _)| l["campaign"] == "shop")
            .count(),
        rejected.len()
    );
    for (k, v) in &rejected {
        let outcome = k.strip_prefix("rejected_").unwrap();
        assert_eq!(
            m.get(
                "lottery_rejections_total",
                &[("campaign", "shop"), ("outcome", outcome)]
            ),
            Some(*v as f64),
            "{}",
            k
        );
    }
    assert_eq!(
        m.get(
            "lottery_rejections_total",
            &[("campaign", "shop"), ("outcome", "cooldown")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "lottery_rejections_total",
            &[("campaign", "quiet"), ("outcome", "paused")]
        ),
        Some(1.0)
    );
    // Prizes: phone has finite stock, sticker INF (no stock series).
    let prizes = match &s["prizes"] {
        redis::Value::Array(a) => a.clone(),
        other => panic!("{:?}", other),
    };
    for p in prizes {
        let redis::Value::Array(p) = p else { panic!() };
        let redis::Value::BulkString(id) = &p[0] else {
            panic!()
        };
        let id = String::from_utf8(id.clone()).unwrap();
        let (stock, sold) = (int(&p[2]), int(&p[3]));
        let l = [("campaign", "shop"), ("prize", id.as_str())];
        assert_eq!(m.get("lottery_prize_sold_total", &l), Some(sold as f64));
        if stock < 0 {
            assert_eq!(id, "sticker");
            assert_eq!(m.get("lottery_prize_stock", &l), None);
        } else {
            assert_eq!(m.get("lottery_prize_stock", &l), Some(stock as f64));
        }
    }
    assert_eq!(
        m.get("lottery_campaign_paused", &[("campaign", "quiet")]),
        Some(1.0)
    );
    assert_eq!(m.get("lottery_campaign_paused", &shop), Some(0.0));
    assert_eq!(m.get("lottery_campaign_active", &shop), Some(1.0));
    assert_eq!(
        m.get("lottery_campaign_active", &[("campaign", "quiet")]),
        Some(0.0)
    );
    assert_eq!(m.get("lottery_stream_length", &shop), Some(wins));
    assert_eq!(
        m.get(
            "lottery_stream_group_lag",
            &[("campaign", "shop"), ("group", "g1")]
        ),
        Some(wins)
    );
    assert_eq!(
        m.get(
            "lottery_stream_group_pending",
            &[("campaign", "shop"), ("group", "g1")]
        ),
        Some(0.0)
    );
    // INFO lottery counters, per node.
    let node = format!("127.0.0.1:{}", r.port);
    let n = [("node", node.as_str())];
    assert_eq!(m.get("lottery_up", &n), Some(1.0));
    assert_eq!(m.get("lottery_module_draws_total", &n), Some(40.0));
    assert_eq!(m.get("lottery_module_wins_total", &n), Some(wins));
    assert_eq!(m.get("lottery_module_campaigns", &n), Some(2.0));
    assert_eq!(
        m.get(
            "lottery_module_rejections_total",
            &[("node", &node), ("outcome", "cooldown")]
        ),
        Some(1.0)
    );
    assert_eq!(m.get("lottery_module_internal_errors_total", &n), Some(0.0));
    assert_eq!(m.get("lottery_exporter_campaigns", &[]), Some(2.0));
    assert_eq!(m.get("lottery_exporter_campaigns_dropped", &[]), Some(0.0));
    assert_eq!(
        m.get("lottery_exporter_scrape_errors_total", &[]),
        Some(0.0)
    );

    // The JSON of the status page.
    let j = e.status();
    let c = j["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "shop")
        .unwrap()
        .clone();
    assert_eq!(c["draws"], 40);
    assert_eq!(c["wins"].as_f64(), Some(wins));
    assert_eq!(c["state"], "active");
    assert_eq!(c["stream"], "{shop}:wins");
    assert_eq!(c["rejections"]["cooldown"], 1);
    assert_eq!(c["rejections"].as_object().unwrap().len(), rejected.len());
    let sticker = c["prizes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "sticker")
        .unwrap();
    assert_eq!(sticker["stock"], serde_json::Value::Null);
    assert_eq!(sticker["infinite"], true);
    let recent = c["recent_wins"].as_array().unwrap();
    assert_eq!(recent.len(), (wins as usize).min(20));
    let ids: Vec<redis::Value> = redis::cmd("XREVRANGE")
        .arg(&["{shop}:wins", "+", "-", "COUNT", "20"])
        .query(&mut con)
        .unwrap();
    for (w, entry) in recent.iter().zip(ids) {
        let redis::Value::Array(entry) = entry else {
            panic!()
        };
        let redis::Value::BulkString(id) = &entry[0] else {
            panic!()
        };
        let id = String::from_utf8(id.clone()).unwrap();
        assert_eq!(w["id"], id.as_str());
        assert_eq!(
            w["ts_ms"].as_i64(),
            id.split('-').next().unwrap().parse().ok()
        );
        assert!(w["user"].as_str().unwrap().starts_with('u'));
        assert!(w["prize"] == "phone" || w["prize"] == "sticker");
    }
    assert_eq!(c["history"].as_array().unwrap().last().unwrap()[1], 40);
    assert_eq!(j["refresh_ms"], 100);
    assert!(j["server"]["module_version"].is_string());

    // More draws show up in the next samples; the history grows (a point every 1.8 s).
    for i in 100..110 {
        draw(&mut con, b"shop", format!("u{}", i).as_bytes());
    }
    wait_until(Duration::from_secs(5), "draws counted", || {
        e.metrics().get("lottery_draws_total", &shop) == Some(50.0)
    });
    wait_until(Duration::from_secs(5), "a second history point", || {
        let j = e.status();
        let c = j["campaigns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == "shop")
            .unwrap()
            .clone();
        let h = c["history"].as_array().unwrap().clone();
        h.len() >= 2 && h.last().unwrap()[1] == 50 && h[0][0].as_i64() < h[1][0].as_i64()
    });

    // Redis down: lottery_up 0, no campaign series; the API keeps the last known campaigns.
    let mut r = r;
    r.kill();
    wait_until(Duration::from_secs(10), "lottery_up 0", || {
        e.metrics().get("lottery_up", &n) == Some(0.0)
    });
    let m = e.metrics();
    assert_eq!(m.get("lottery_draws_total", &shop), None);
    assert!(m.get("lottery_exporter_scrape_errors_total", &[]).unwrap() >= 1.0);
    let j = e.status();
    assert!(!j["errors"].as_array().unwrap().is_empty());
    assert!(j["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["key"] == "shop" && c["draws"] == 50));
}

/// Keys and prize ids with quotes, backslashes, newlines, braces, non-UTF-8 bytes, NUL and
/// 4096 bytes: the exposition stays valid, each is one series with the lossy text.
#[test]
fn hostile_keys_and_prize_ids() {
    let r = RedisServer::start();
    let mut con = r.con();
    let long = vec![b'k'; 4096];
    let keys: Vec<Vec<u8>> = vec![
        b"a\"b\nc}".to_vec(),
        b"back\\slash{t}".to_vec(),
        b"\xff\xfe\x00bin{t}".to_vec(),
        "emoji 😀 {t}".as_bytes().to_vec(),
        long.clone(),
    ];
    for (i, k) in keys.iter().enumerate() {
        // A stream name in the key's slot, for keys whose default stream is not.
        let stream = (0..)
            .map(|n| format!("s{}", n))
            .find(|s| key_slot(s.as_bytes()) == key_slot(k))
            .unwrap();
        let mut args: Vec<&[u8]> = vec![
            b"PRIZE",
            b"p\"\\\n}{x",
            b"1",
            b"5",
            b"PRIZE",
            b"\xc3\x28\xff",
            b"1",
            b"5",
            b"NOTHING",
            b"0",
        ];
        // Keys whose default stream is not in their slot need STREAM.
        if i == 0 {
            args.extend_from_slice(&[b"STREAM", stream.as_bytes()]);
        }
        cfg(&mut con, k, &args);
        for u in 0..3 {
            assert_eq!(draw(&mut con, k, format!("u{}\"\n\\", u).as_bytes()), "WIN");
        }
    }
    // Two keys whose lossy text is the same: reported once, no duplicate series.
    cfg(&mut con, b"dup\xff{t}", &[b"PRIZE", b"p", b"1", b"5"]);
    cfg(&mut con, b"dup\xfe{t}", &[b"PRIZE", b"p", b"1", b"5"]);

    let e = Exporter::start(&["--redis", &r.url(), "--sample-ms", "100"], &[]);
    let m = e.metrics(); // the strict parser panics on any malformed line
    for k in &keys {
        let text = String::from_utf8_lossy(k).into_owned();
        assert_eq!(
            m.get("lottery_wins_total", &[("campaign", &text)]),
            Some(3.0),
            "{:?}",
            text
        );
        let sold: f64 = m
            .all("lottery_prize_sold_total")
            .iter()
            .filter(|(l, _)| l["campaign"] == text)
            .map(|(_, v)| v)
            .sum();
        assert_eq!(sold, 3.0);
        assert!(m
            .get(
                "lottery_prize_stock",
                &[("campaign", &text), ("prize", "p\"\\\n}{x")]
            )
            .is_some());
        assert!(m
            .get(
                "lottery_prize_stock",
                &[("campaign", &text), ("prize", "\u{FFFD}(\u{FFFD}")]
            )
            .is_some());
    }
    let dup = String::from_utf8_lossy(b"dup\xff{t}").into_owned();
    assert_eq!(
        m.all("lottery_wins_total")
            .iter()
            .filter(|(l, _)| l["campaign"] == dup)
            .count(),
        1
    );
    assert_eq!(
        m.get("lottery_exporter_campaigns", &[]),
        Some(keys.len() as f64 + 1.0)
    );

    let j = e.status();
    for k in &keys {
        let text = String::from_utf8_lossy(k).into_owned();
        let c = j["campaigns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == text.as_str())
            .unwrap()
            .clone();
        let users: Vec<&str> = c["recent_wins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["user"].as_str().unwrap())
            .collect();
        assert_eq!(users, ["u2\"\n\\", "u1\"\n\\", "u0\"\n\\"]);
    }
    assert!(j["errors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x.as_str().unwrap().contains("reported once")));
}

#[test]
fn discovery_is_bounded_and_explicit_campaigns() {
    let r = RedisServer::start();
    let mut con = r.con();
    for i in 0..7 {
        cfg(
            &mut con,
            format!("c{}", i).as_bytes(),
            &[b"PRIZE", b"p", b"1", b"5"],
        );
    }
    let _: () = redis::cmd("SET")
        .arg("plain")
        .arg("x")
        .query(&mut con)
        .unwrap();
    let e = Exporter::start(&["--redis", &r.url(), "--max-campaigns", "3"], &[]);
    let m = e.metrics();
    assert_eq!(m.get("lottery_exporter_campaigns", &[]), Some(3.0));
    assert_eq!(m.get("lottery_exporter_campaigns_dropped", &[]), Some(4.0));
    assert_eq!(m.all("lottery_draws_total").len(), 3);
    drop(e);
    let e = Exporter::start(
        &[
            "--redis",
            &r.url(),
            "--campaign",
            "c5",
            "--campaign",
            "nope",
        ],
        &[],
    );
    let m = e.metrics();
    let draws = m.all("lottery_draws_total");
    assert_eq!(draws.len(), 1);
    assert_eq!(draws[0].0["campaign"], "c5");
    let j = e.status();
    assert!(
        j["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "campaign nope not found"),
        "{}",
        j["errors"]
    );
}

#[test]
fn writer_status_hash() {
    let r = RedisServer::start();
    let mut con = r.con();
    cfg(&mut con, b"shop", &[b"PRIZE", b"p", b"1", b"INF"]);
    for i in 0..5 {
        draw(&mut con, b"shop", format!("u{}", i).as_bytes());
    }
    let _: () = redis::cmd("XGROUP")
        .arg(&["CREATE", "{shop}:wins", "g", "0"])
        .query(&mut con)
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg(&[
            "GROUP",
            "g",
            "w1",
            "COUNT",
            "2",
            "STREAMS",
            "{shop}:wins",
            ">",
        ])
        .query(&mut con)
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let _: () = redis::cmd("HSET")
        .arg("lottery-writer:g:w1")
        .arg(&[
            ("target", "shop".to_string()),
            ("stream", "{shop}:wins".to_string()),
            ("group", "g".to_string()),
            ("consumer", "w1".to_string()),
            ("database", "sqlite".to_string()),
            ("started_ms", (now - 60_000).to_string()),
            ("updated_ms", (now - 3_000).to_string()),
            ("read_total", "2".to_string()),
            ("rows_total", "2".to_string()),
            ("duplicates_total", "0".to_string()),
            ("acked_total", "1".to_string()),
            ("drains_total", "0".to_string()),
            ("retries_total", "4".to_string()),
            ("errors_total", "1".to_string()),
            ("awards_delivered_total", "2".to_string()),
            ("awards_failed_total", "0".to_string()),
            ("awards_retries_total", "3".to_string()),
            ("award_backlog", "7".to_string()),
        ])
        .query(&mut con)
        .unwrap();
    // Not a hash: ignored.
    let _: () = redis::cmd("SET")
        .arg("lottery-writer:x:y")
        .arg("1")
        .query(&mut con)
        .unwrap();
    let e = Exporter::start(&["--redis", &r.url()], &[]);
    let m = e.metrics();
    let l = [("group", "g"), ("consumer", "w1"), ("target", "shop")];
    for (name, v) in [
        ("lottery_writer_rows_total", 2.0),
        ("lottery_writer_read_total", 2.0),
        ("lottery_writer_acked_total", 1.0),
        ("lottery_writer_retries_total", 4.0),
        ("lottery_writer_errors_total", 1.0),
        ("lottery_writer_awards_delivered_total", 2.0),
        ("lottery_writer_awards_retries_total", 3.0),
        ("lottery_writer_award_backlog", 7.0),
    ] {
        assert_eq!(m.get(name, &l), Some(v), "{}", name);
    }
    let age = m.get("lottery_writer_last_update_age_seconds", &l).unwrap();
    assert!((2.5..30.0).contains(&age), "{}", age);
    assert_eq!(m.all("lottery_writer_rows_total").len(), 1);
    let j = e.status();
    let w = &j["writers"][0];
    assert_eq!(w["group"], "g");
    assert_eq!(w["consumer"], "w1");
    assert_eq!(w["target"], "shop");
    assert_eq!(w["rows_total"], 2);
    assert_eq!(w["retries_total"], 4);
    assert_eq!(w["errors_total"], 1);
    assert_eq!(w["lag"], 3); // 5 entries, 2 delivered to the group
    assert!(w["age_ms"].as_i64().unwrap() >= 3000);
}

/// Two databases of one server are two nodes (each read in its own database); the same
/// server given twice is refused rather than reported twice under one label.
#[test]
fn two_databases_of_one_server() {
    let r = RedisServer::start();
    let mut c0 = r.con();
    let () = redis::cmd("LOTTERY.CONFIGURE")
        .arg("db0camp")
        .arg("PRIZE")
        .arg("p")
        .arg(1)
        .arg(5)
        .query(&mut c0)
        .unwrap();
    let mut c1 = redis::Client::open(format!("{}/1", r.url()))
        .unwrap()
        .get_connection()
        .unwrap();
    let () = redis::cmd("LOTTERY.CONFIGURE")
        .arg("db1camp")
        .arg("PRIZE")
        .arg("p")
        .arg(1)
        .arg(7)
        .query(&mut c1)
        .unwrap();
    let e = Exporter::start(
        &["--redis", &r.url(), "--redis", &format!("{}/1", r.url())],
        &[],
    );
    let m = e.metrics(); // the strict parser refuses a duplicate series
    assert_eq!(m.all("lottery_up").len(), 2);
    assert_eq!(
        m.get(
            "lottery_prize_stock",
            &[("campaign", "db0camp"), ("prize", "p")]
        ),
        Some(5.0)
    );
    assert_eq!(
        m.get(
            "lottery_prize_stock",
            &[("campaign", "db1camp"), ("prize", "p")]
        ),
        Some(7.0)
    );
    let (code, err) = exporter_refuses(&["--redis", &r.url(), "--redis", &r.url()], &[]);
    assert_eq!(code, 2, "{}", err);
    assert!(err.contains("same node"), "{}", err);
}

/// A user that may not SCAN (campaigns named with --campaign) still gets its campaigns: the
/// writer status discovery failing is a scrape error, not a node down.
#[test]
fn a_user_without_scan_still_reports_named_campaigns() {
    let r = RedisServer::start();
    let mut con = r.con();
    let () = redis::cmd("LOTTERY.CONFIGURE")
        .arg("camp:a")
        .arg("PRIZE")
        .arg("p")
        .arg(1)
        .arg(5)
        .query(&mut con)
        .unwrap();
    let () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("noscan")
        .arg("on")
        .arg(">pw")
        .arg("resetkeys")
        .arg("%R~camp:*")
        .arg("-@all")
        .arg("+lottery.stats")
        .arg("+info")
        .arg("+xlen")
        .arg("+xinfo|groups")
        .arg("+xrevrange")
        .arg("+hgetall")
        .query(&mut con)
        .unwrap();
    let url = format!("redis://noscan:pw@127.0.0.1:{}", r.port);
    let e = Exporter::start(&["--redis", &url, "--campaign", "camp:a"], &[]);
    let m = e.metrics();
    let node = format!("127.0.0.1:{}", r.port);
    assert_eq!(m.get("lottery_up", &[("node", &node)]), Some(1.0));
    assert_eq!(
        m.get("lottery_draws_total", &[("campaign", "camp:a")]),
        Some(0.0)
    );
    // The refusal is counted (at each discovery, every 10 s).
    assert!(m.get("lottery_exporter_scrape_errors_total", &[]).unwrap() >= 1.0);
}
