//! What one sample holds, and the parsing of the Redis replies it comes from. Every parser
//! takes any reply shape: a field it does not understand is skipped, never a panic.

use redis::Value;

/// Longest text kept from a Redis reply (stream entry fields, hash fields): longer values
/// are cut (at a character boundary) so that a hostile entry cannot grow the JSON.
pub const MAX_TEXT: usize = 4096;

/// Longest text kept of a recent win's user, prize and code (prize ids and codes are at most
/// 512 bytes; a user id can be of any length): the JSON of the 20 wins of each of
/// `--max-campaigns` campaigns stays bounded (at most about 30 KiB per campaign).
pub const MAX_WIN_TEXT: usize = 512;

#[derive(Clone, Debug, Default)]
pub struct Prize {
    pub id: Vec<u8>,
    /// None: INF stock.
    pub stock: Option<i64>,
    pub sold: i64,
}

#[derive(Clone, Debug, Default)]
pub struct Win {
    pub id: String,
    pub user: String,
    pub prize: String,
    pub ts_ms: Option<i64>,
    pub code: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Group {
    pub name: Vec<u8>,
    pub lag: Option<i64>,
    pub pending: Option<i64>,
}

#[derive(Clone, Debug, Default)]
pub struct Campaign {
    pub key: Vec<u8>,
    pub state: String,
    pub draws: i64,
    pub wins: i64,
    pub losses: i64,
    pub replays: i64,
    pub users: i64,
    /// `(outcome, count)` for each `rejected_<outcome>` field of STATS, in its order.
    pub rejections: Vec<(String, i64)>,
    pub prizes: Vec<Prize>,
    pub stream: Option<Vec<u8>>,
    pub stream_length: Option<i64>,
    pub groups: Vec<Group>,
    pub recent_wins: Vec<Win>,
}

#[derive(Clone, Debug, Default)]
pub struct Writer {
    pub group: String,
    pub consumer: String,
    pub target: String,
    pub stream: String,
    pub updated_ms: Option<i64>,
    /// `(status hash field, value)` for the fields of `names::WRITER_FIELDS` present.
    pub counters: Vec<(&'static str, i64)>,
}

#[derive(Clone, Debug, Default)]
pub struct Node {
    pub addr: String,
    pub up: bool,
    pub version: Option<String>,
    pub module_version: Option<i64>,
    /// `INFO lottery` numeric fields, without the `lottery_` prefix.
    pub info: Vec<(String, i64)>,
    pub campaigns: Vec<Campaign>,
    pub dropped: u64,
    pub writers: Vec<Writer>,
}

/// One sample of every node.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub time_ms: i64,
    pub duration_s: f64,
    pub nodes: Vec<Node>,
    pub errors: Vec<String>,
}

pub fn lossy(b: &[u8]) -> String {
    lossy_cut(b, MAX_TEXT)
}

/// `lossy` with another bound.
pub fn lossy_cut(b: &[u8], max: usize) -> String {
    let b = &b[..b.len().min(max)];
    String::from_utf8_lossy(b).into_owned()
}

pub fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

pub fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => std::str::from_utf8(bytes(other)?).ok()?.parse().ok(),
    }
}

pub fn array(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) | Value::Set(a) => Some(a),
        _ => None,
    }
}

/// Field/value pairs of a flat array or a RESP3 map.
pub fn pairs(v: &Value) -> Vec<(&[u8], &Value)> {
    match v {
        Value::Map(m) => m.iter().filter_map(|(k, v)| Some((bytes(k)?, v))).collect(),
        other => array(other)
            .unwrap_or(&[])
            .chunks_exact(2)
            .filter_map(|c| Some((bytes(&c[0])?, &c[1])))
            .collect(),
    }
}

/// A LOTTERY.STATS reply. None when it is not one (an error, another shape).
pub fn parse_stats(key: &[u8], v: &Value) -> Option<Campaign> {
    let fields = pairs(v);
    if fields.is_empty() {
        return None;
    }
    let mut c = Campaign {
        key: key.to_vec(),
        ..Default::default()
    };
    let mut saw_draws = false;
    for (name, val) in fields {
        match name {
            b"state" => c.state = lossy(bytes(val).unwrap_or(b"")),
            b"draws" => {
                saw_draws = true;
                c.draws = int(val).unwrap_or(0)
            }
            b"wins" => c.wins = int(val).unwrap_or(0),
            b"losses" => c.losses = int(val).unwrap_or(0),
            b"replays" => c.replays = int(val).unwrap_or(0),
            b"users" => c.users = int(val).unwrap_or(0),
            b"stream" => c.stream = bytes(val).map(|b| b.to_vec()),
            b"prizes" => {
                for p in array(val).unwrap_or(&[]) {
                    let Some([id, _weight, stock, sold, ..]) = array(p) else {
                        continue;
                    };
                    let (Some(id), Some(stock), Some(sold)) = (bytes(id), int(stock), int(sold))
                    else {
                        continue;
                    };
                    c.prizes.push(Prize {
                        id: id.to_vec(),
                        stock: (stock >= 0).then_some(stock),
                        sold,
                    });
                }
            }
            n => {
                if let (Some(outcome), Some(x)) = (n.strip_prefix(b"rejected_"), int(val)) {
                    c.rejections.push((lossy(outcome), x));
                }
            }
        }
    }
    saw_draws.then_some(c)
}

/// An `XINFO GROUPS` reply.
pub fn parse_groups(v: &Value) -> Vec<Group> {
    let mut out = Vec::new();
    for g in array(v).unwrap_or(&[]) {
        let mut group = Group::default();
        for (name, val) in pairs(g) {
            match name {
                b"name" => group.name = bytes(val).unwrap_or(b"").to_vec(),
                b"lag" => group.lag = int(val),
                b"pending" => group.pending = int(val),
                _ => {}
            }
        }
        out.push(group);
    }
    out
}

/// An `XREVRANGE` reply: entries `[id, [field, value, ...]]` (fields: user, prize, draw,
/// then code, reqid, ts as the entry has them; the time is the id's first part unless `ts`).
/// Entries whose first field is `type` (a VERIFIABLE campaign's epoch, table, draw and
/// reveal entries) are not wins: left out.
pub fn parse_wins(v: &Value) -> Vec<Win> {
    let mut out = Vec::new();
    for e in array(v).unwrap_or(&[]) {
        let Some([id, fields, ..]) = array(e) else {
            continue;
        };
        if array(fields)
            .and_then(<[Value]>::first)
            .and_then(bytes)
            .is_some_and(|f| f == b"type")
        {
            continue;
        }
        let Some(id) = bytes(id) else { continue };
        let id = lossy(id);
        let mut w = Win {
            ts_ms: id.split('-').next().and_then(|t| t.parse().ok()),
            id,
            ..Default::default()
        };
        for (name, val) in pairs(fields) {
            let text = || lossy_cut(bytes(val).unwrap_or(b""), MAX_WIN_TEXT);
            match name {
                b"user" => w.user = text(),
                b"prize" => w.prize = text(),
                b"code" => w.code = Some(text()),
                b"ts" => w.ts_ms = int(val).or(w.ts_ms),
                _ => {}
            }
        }
        out.push(w);
    }
    out
}

/// An `HGETALL` of a writer status hash.
pub fn parse_writer(v: &Value) -> Option<Writer> {
    let fields = pairs(v);
    if fields.is_empty() {
        return None; // expired between SCAN and HGETALL
    }
    let mut w = Writer::default();
    for (name, val) in fields {
        let text = || lossy(bytes(val).unwrap_or(b""));
        match name {
            b"group" => w.group = text(),
            b"consumer" => w.consumer = text(),
            b"target" => w.target = text(),
            b"stream" => w.stream = text(),
            b"updated_ms" => w.updated_ms = int(val),
            n => {
                if let Some((f, _)) = crate::names::WRITER_FIELDS
                    .iter()
                    .find(|(f, _)| f.as_bytes() == n)
                {
                    if let Some(x) = int(val) {
                        w.counters.push((f, x));
                    }
                }
            }
        }
    }
    Some(w)
}

/// `INFO` text: `name:value` lines. Returns the fields whose name starts with `prefix`
/// (prefix removed) and whose value is an integer.
pub fn info_ints(text: &[u8], prefix: &str) -> Vec<(String, i64)> {
    info_lines(text)
        .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.parse().ok()?)))
        .collect()
}

pub fn info_field(text: &[u8], name: &str) -> Option<String> {
    info_lines(text)
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn info_lines(text: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    std::str::from_utf8(text)
        .unwrap_or("")
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').split_once(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_replies_are_skipped() {
        let b = |s: &[u8]| Value::BulkString(s.to_vec());
        assert!(parse_stats(b"k", &Value::Nil).is_none());
        assert!(parse_stats(b"k", &Value::Array(vec![b(b"draws")])).is_none());
        let c = parse_stats(
            b"k",
            &Value::Array(vec![
                b(b"draws"),
                Value::Int(3),
                b(b"prizes"),
                Value::Array(vec![
                    Value::Array(vec![b(b"p"), Value::Int(1), Value::Int(-1), Value::Int(2)]),
                    Value::Array(vec![b(b"short")]),
                    Value::Int(7),
                ]),
                b(b"rejected_x"),
                b(b"notanumber"),
            ]),
        )
        .unwrap();
        assert_eq!(c.draws, 3);
        assert_eq!(c.prizes.len(), 1);
        assert_eq!(c.prizes[0].stock, None);
        assert!(c.rejections.is_empty());
        let w = parse_wins(&Value::Array(vec![
            Value::Array(vec![b(b"5-0"), Value::Array(vec![b(b"user"), b(b"\xff")])]),
            Value::Array(vec![b(b"x")]),
            Value::Array(vec![b(b"9-1"), Value::Array(vec![b(b"ts"), b(b"12")])]),
            Value::Array(vec![
                b(b"9-2"),
                Value::Array(vec![b(b"type"), b(b"draw"), b(b"user"), b(b"u")]),
            ]),
        ]));
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].ts_ms, Some(5));
        assert_eq!(w[0].user, "\u{FFFD}");
        assert_eq!(w[1].ts_ms, Some(12));
        assert_eq!(lossy(&[b'a'; 5000]).len(), MAX_TEXT);
        assert_eq!(lossy_cut(&[b'a'; 5000], MAX_WIN_TEXT).len(), MAX_WIN_TEXT);
    }
}
