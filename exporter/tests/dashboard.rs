//! docs/grafana-lottery.json and the metric list of docs/operations.md name exactly the
//! metrics a live exporter emits (its `# TYPE` lines): no panel queries a metric that does
//! not exist, no metric is missing from the docs.

mod common;
use common::*;
use std::collections::BTreeSet;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Every `lottery_...` identifier in `s`.
fn metric_names(s: &str, out: &mut BTreeSet<String>) {
    let b = s.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut i = 0;
    while i < b.len() {
        if ident(b[i]) && (i == 0 || !ident(b[i - 1])) {
            let start = i;
            while i < b.len() && ident(b[i]) {
                i += 1;
            }
            let w = &s[start..i];
            if w.starts_with("lottery_") {
                out.insert(w.to_string());
            }
        } else {
            i += 1;
        }
    }
}

/// The strings of the dashboard that are PromQL: panel targets' `expr`, the template
/// variables' `query` / `definition`.
fn queries(v: &serde_json::Value, key: Option<&str>, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                queries(x, Some(k), out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| queries(x, key, out)),
        serde_json::Value::String(s) if matches!(key, Some("expr" | "query" | "definition")) => {
            out.push(s.clone())
        }
        _ => {}
    }
}

fn live_names() -> BTreeSet<String> {
    let r = RedisServer::start();
    let e = Exporter::start(&["--redis", &r.url()], &[]);
    let names: BTreeSet<String> = e.metrics().types.keys().cloned().collect();
    assert!(names.len() > 30, "{:?}", names);
    names
}

#[test]
fn dashboard_and_docs_use_exactly_the_exported_metrics() {
    let live = live_names();

    let text = std::fs::read_to_string(root().join("docs/grafana-lottery.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut qs = Vec::new();
    queries(&dash, None, &mut qs);
    assert!(qs.len() > 20, "{:?}", qs);
    let mut used = BTreeSet::new();
    for q in &qs {
        let mut here = BTreeSet::new();
        metric_names(q, &mut here);
        assert!(
            !here.is_empty() || q == "prometheus",
            "a query without a lottery metric: {:?}",
            q
        );
        used.extend(here);
    }
    let unknown: Vec<_> = used.difference(&live).collect();
    assert!(
        unknown.is_empty(),
        "dashboard queries metrics the exporter does not emit: {:?}",
        unknown
    );
    let unused: Vec<_> = live.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "metrics no dashboard panel shows: {:?}",
        unused
    );

    // The metric list of docs/operations.md, "Metrics and the status page": table rows
    // starting with | `lottery_...`.
    let ops = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
    let section = ops
        .split("\n## Metrics and the status page\n")
        .nth(1)
        .expect("docs/operations.md has a section \"Metrics and the status page\"");
    let section = section.split("\n## ").next().unwrap();
    let documented: BTreeSet<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|n| n.starts_with("lottery_"))
        .map(|n| n.split('{').next().unwrap().to_string())
        .collect();
    assert_eq!(
        documented, live,
        "docs/operations.md's metric list differs from /metrics"
    );
}
