//! The Prometheus text exposition format (version 0.0.4) of a sample: one `# HELP` and one
//! `# TYPE` line per metric of `names::ALL` (always, even without series), then its series,
//! contiguous. Label values are text (keys and ids made UTF-8 lossily) with `\`, `"` and
//! newline escaped, so no byte of a key can break a line or a label.
//!
//! Bounded: the series of campaigns and writers (whose number and label sizes clients
//! control: 65,536 prizes per campaign, keys of 4096 bytes) stop at [`MAX_BYTES`] of text;
//! the series left out are counted in `lottery_exporter_series_dropped`. The node and
//! exporter series are always there.

use crate::model::Sample;
use crate::names::{self, Metric};
use std::fmt::Write;

/// `s` as a label value, between the quotes.
pub fn escape_label(out: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Size of the exposition past which campaign and writer series are left out.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;

struct Out {
    text: String,
    /// Where the sample age series goes (it is written at each request).
    age_at: usize,
    dropped: u64,
}

impl Out {
    /// A series of a campaign or writer: left out (and counted) past [`MAX_BYTES`].
    fn bounded(&mut self, m: &Metric, labels: &[(&str, &str)], value: &str) {
        if self.text.len() >= MAX_BYTES {
            self.dropped += 1;
        } else {
            self.series(m, labels, value);
        }
    }

    fn bounded_int(&mut self, m: &Metric, labels: &[(&str, &str)], v: i64) {
        self.bounded(m, labels, &v.to_string());
    }

    fn header(&mut self, m: &Metric) {
        let _ = writeln!(self.text, "# HELP {} {}", m.name, m.help);
        let _ = writeln!(self.text, "# TYPE {} {}", m.name, m.kind.as_str());
    }

    fn series(&mut self, m: &Metric, labels: &[(&str, &str)], value: &str) {
        self.text.push_str(m.name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                self.text.push_str(k);
                self.text.push_str("=\"");
                escape_label(&mut self.text, v);
                self.text.push('"');
            }
            self.text.push('}');
        }
        self.text.push(' ');
        self.text.push_str(value);
        self.text.push('\n');
    }

    fn int(&mut self, m: &Metric, labels: &[(&str, &str)], v: i64) {
        self.series(m, labels, &v.to_string());
    }
}

/// Renders `s` with the age of the sample (for tests; the server renders once per sample
/// with [`render_parts`] and adds [`age_line`] at each request).
#[cfg(test)]
pub fn render(s: &Sample, errors_total: u64, age_s: f64) -> String {
    let (a, b) = render_parts(s, errors_total);
    format!("{}{}{}", a, age_line(age_s), b)
}

/// The series of the sample's age (`age_s`: how old it is).
pub fn age_line(age_s: f64) -> String {
    format!("{} {}\n", names::SAMPLE_AGE.name, age_s)
}

/// Renders `s`, in two parts that go on either side of [`age_line`]. `errors_total`: the
/// exporter's running count of sampling problems.
pub fn render_parts(s: &Sample, errors_total: u64) -> (String, String) {
    let mut o = Out {
        text: String::with_capacity(4096),
        age_at: 0,
        dropped: 0,
    };
    let up_nodes = || s.nodes.iter().filter(|n| n.up);
    let campaigns = || up_nodes().flat_map(|n| n.campaigns.iter());
    let writers = || up_nodes().flat_map(|n| n.writers.iter());
    for m in names::ALL {
        o.header(m);
        match m.name {
            n if n == names::UP.name => {
                for node in &s.nodes {
                    o.int(m, &[("node", &node.addr)], i64::from(node.up));
                }
            }
            n if n == names::REJECTIONS.name => {
                for c in campaigns() {
                    let key = crate::model::lossy(&c.key);
                    for (outcome, x) in &c.rejections {
                        o.bounded_int(m, &[("campaign", &key), ("outcome", outcome)], *x);
                    }
                }
            }
            n if n == names::PRIZE_STOCK.name || n == names::PRIZE_SOLD.name => {
                for c in campaigns() {
                    let key = crate::model::lossy(&c.key);
                    let mut seen = std::collections::HashSet::new();
                    for p in &c.prizes {
                        let id = crate::model::lossy(&p.id);
                        let v = if n == names::PRIZE_SOLD.name {
                            Some(p.sold)
                        } else {
                            p.stock
                        };
                        // Two ids that differ only in invalid UTF-8 render alike: keep the first.
                        if !seen.insert(id.clone()) {
                            continue;
                        }
                        if let Some(v) = v {
                            o.bounded_int(m, &[("campaign", &key), ("prize", &id)], v);
                        }
                    }
                }
            }
            n if n == names::GROUP_LAG.name || n == names::GROUP_PENDING.name => {
                for c in campaigns() {
                    let key = crate::model::lossy(&c.key);
                    let mut seen = std::collections::HashSet::new();
                    for g in &c.groups {
                        let name = crate::model::lossy(&g.name);
                        let v = if n == names::GROUP_LAG.name {
                            g.lag
                        } else {
                            g.pending
                        };
                        if !seen.insert(name.clone()) {
                            continue;
                        }
                        if let Some(v) = v {
                            o.bounded_int(m, &[("campaign", &key), ("group", &name)], v);
                        }
                    }
                }
            }
            n if n == names::MODULE_REJECTIONS.name => {
                for node in up_nodes() {
                    for (f, x) in &node.info {
                        if let Some(outcome) = f.strip_prefix("rejected_") {
                            o.int(m, &[("node", &node.addr), ("outcome", outcome)], *x);
                        }
                    }
                }
            }
            n if n == names::WRITER_AGE.name => {
                for w in writers() {
                    if let Some(u) = w.updated_ms {
                        let age = (s.time_ms.saturating_sub(u)).max(0) as f64 / 1000.0;
                        o.bounded(m, &writer_labels(w), &format!("{}", age));
                    }
                }
            }
            n if n == names::SCRAPE_DURATION.name => o.series(m, &[], &format!("{}", s.duration_s)),
            n if n == names::SCRAPE_ERRORS.name => o.int(m, &[], errors_total as i64),
            n if n == names::SAMPLE_AGE.name => o.age_at = o.text.len(),
            n if n == names::SERIES_DROPPED.name => o.int(m, &[], o.dropped as i64),
            n if n == names::CAMPAIGNS.name => o.int(m, &[], campaigns().count() as i64),
            n if n == names::CAMPAIGNS_DROPPED.name => {
                o.int(m, &[], s.nodes.iter().map(|n| n.dropped as i64).sum())
            }
            _ => {
                if let Some((field, _)) =
                    names::MODULE_FIELDS.iter().find(|(_, x)| x.name == m.name)
                {
                    for node in up_nodes() {
                        if let Some((_, x)) = node.info.iter().find(|(f, _)| f == field) {
                            o.int(m, &[("node", &node.addr)], *x);
                        }
                    }
                } else if let Some((field, _)) =
                    names::WRITER_FIELDS.iter().find(|(_, x)| x.name == m.name)
                {
                    for w in writers() {
                        if let Some((_, x)) = w.counters.iter().find(|(f, _)| f == field) {
                            o.bounded_int(m, &writer_labels(w), *x);
                        }
                    }
                } else {
                    for c in campaigns() {
                        let key = crate::model::lossy(&c.key);
                        let v = match m.name {
                            x if x == names::DRAWS.name => Some(c.draws),
                            x if x == names::WINS.name => Some(c.wins),
                            x if x == names::LOSSES.name => Some(c.losses),
                            x if x == names::REPLAYS.name => Some(c.replays),
                            x if x == names::USERS.name => Some(c.users),
                            x if x == names::PAUSED.name => Some(i64::from(c.state == "paused")),
                            x if x == names::ACTIVE.name => Some(i64::from(c.state == "active")),
                            x if x == names::STREAM_LENGTH.name => c.stream_length,
                            _ => None,
                        };
                        if let Some(v) = v {
                            o.bounded_int(m, &[("campaign", &key)], v);
                        }
                    }
                }
            }
        }
    }
    let b = o.text.split_off(o.age_at);
    (o.text, b)
}

fn writer_labels(w: &crate::model::Writer) -> [(&'static str, &str); 3] {
    [
        ("group", &w.group),
        ("consumer", &w.consumer),
        ("target", &w.target),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_escaping() {
        let mut out = String::new();
        escape_label(&mut out, "a\"b\nc}\\d\u{FFFD}\0");
        assert_eq!(out, "a\\\"b\\nc}\\\\d\u{FFFD}\0");
    }

    #[test]
    fn every_metric_has_a_header_even_without_data() {
        let text = render(&Sample::default(), 0, 0.0);
        for m in names::ALL {
            assert!(text.contains(&format!("# TYPE {} {}\n", m.name, m.kind.as_str())));
            assert!(m.name.starts_with("lottery_"));
            assert_eq!(
                m.kind == names::Kind::Counter,
                m.name.ends_with("_total"),
                "{}",
                m.name
            );
        }
    }
}
