//! Reading the entries: the campaign's wins stream (XRANGE in pages), or lottery-writer's
//! tables (`lottery_verify_log` and `wins`). Either way a list of entries in ID order.

use crate::entry::{check_limits, from_text, Entry, Id};
use redis::Value;
use std::time::Duration;

/// Entries, and those refused (ID or position, reason): over a limit, or unreadable.
#[derive(Default)]
pub struct Read {
    pub entries: Vec<Entry>,
    pub refused: Vec<(String, String)>,
}

fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn array(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) => Some(a),
        _ => None,
    }
}

pub fn connect(url: &str, timeout: Duration) -> Result<redis::Connection, String> {
    let client = redis::Client::open(url).map_err(|e| format!("--redis: {}", e))?;
    let con = client
        .get_connection_with_timeout(timeout)
        .map_err(|e| format!("cannot connect to Redis: {}", e))?;
    con.set_read_timeout(Some(timeout))
        .and_then(|()| con.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("Redis: {}", e))?;
    Ok(con)
}

/// The campaign's wins stream, asked of the module (LOTTERY.STATS field `stream`).
pub fn stream_of(con: &mut redis::Connection, campaign: &[u8]) -> Result<Vec<u8>, String> {
    let v: Value = redis::cmd("LOTTERY.STATS")
        .arg(campaign)
        .query(con)
        .map_err(|e| {
            format!(
                "LOTTERY.STATS (give --stream to read a stream by name): {}",
                e
            )
        })?;
    let pairs: Vec<(&Value, &Value)> = match &v {
        Value::Array(a) => a
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (&c[0], &c[1]))
            .collect(),
        Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
        _ => Vec::new(),
    };
    pairs
        .into_iter()
        .find(|(k, _)| bytes(k) == Some(&b"stream"[..]))
        .and_then(|(_, v)| bytes(v))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| "LOTTERY.STATS has no stream field".into())
}

/// The stream's last entry ID now (None: the stream is empty or does not exist). The audit
/// reads up to it: entries appended meanwhile are left for the next run, so a stream growing
/// faster than it is read cannot keep the audit going.
pub fn last_id(con: &mut redis::Connection, stream: &[u8]) -> Result<Option<Id>, String> {
    let v: Value = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query(con)
        .map_err(|e| format!("XREVRANGE: {}", e))?;
    let list = array(&v).ok_or_else(|| format!("unexpected XREVRANGE reply: {:.200?}", v))?;
    match list.first() {
        None => Ok(None),
        Some(e) => array(e)
            .and_then(|p| p.first())
            .and_then(bytes)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(Id::parse)
            .map(Some)
            .ok_or_else(|| "unexpected XREVRANGE entry".into()),
    }
}

/// Every entry of `stream` up to `end` (`last_id`), by XRANGE pages of `page` entries, handed
/// to `each` in ID order and not kept; returns the entries refused (over a limit, or not
/// name/value strings). A reply whose IDs do not increase, or go past `end`, is an error.
pub fn read_stream(
    con: &mut redis::Connection,
    stream: &[u8],
    page: usize,
    end: Option<Id>,
    each: &mut dyn FnMut(&Entry),
) -> Result<Vec<(String, String)>, String> {
    let mut refused = Vec::new();
    let Some(end) = end else {
        return Ok(refused);
    };
    let mut start = "-".to_string();
    let mut prev: Option<Id> = None;
    loop {
        let v: Value = redis::cmd("XRANGE")
            .arg(stream)
            .arg(&start)
            .arg(end.to_string())
            .arg("COUNT")
            .arg(page)
            .query(con)
            .map_err(|e| format!("XRANGE: {}", e))?;
        let list = array(&v).ok_or_else(|| format!("unexpected XRANGE reply: {:.200?}", v))?;
        for e in list {
            let parts = array(e).filter(|p| p.len() == 2);
            let id = parts
                .and_then(|p| bytes(&p[0]))
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(Id::parse)
                .ok_or_else(|| "unexpected XRANGE entry".to_string())?;
            if prev.is_some_and(|p| id <= p) || id > end {
                return Err(format!(
                    "unexpected XRANGE reply: entry {} out of order (after {}, up to {})",
                    id,
                    prev.map_or("-".into(), |p| p.to_string()),
                    end
                ));
            }
            prev = Some(id);
            let raw = parts.and_then(|p| array(&p[1])).unwrap_or_default();
            let size: usize = raw.iter().map(|f| bytes(f).map_or(0, <[u8]>::len)).sum();
            if let Err(why) = check_limits(raw.len(), size) {
                refused.push((id.to_string(), why));
                continue;
            }
            if !raw.len().is_multiple_of(2) || raw.iter().any(|f| bytes(f).is_none()) {
                refused.push((id.to_string(), "fields are not name/value strings".into()));
                continue;
            }
            let fields = raw
                .chunks(2)
                .map(|kv| {
                    (
                        bytes(&kv[0]).unwrap_or_default().to_vec(),
                        bytes(&kv[1]).unwrap_or_default().to_vec(),
                    )
                })
                .collect();
            each(&Entry { id, fields });
        }
        match prev {
            // Exclusive start after the last ID read.
            Some(id) if list.len() >= page && id < end => start = format!("({}", id),
            _ => return Ok(refused),
        }
    }
}

/// One row of `lottery_verify_log` (entry_id, fields JSON) as an entry.
fn verify_row(id: &str, fields: &str, out: &mut Read) {
    let Some(pid) = Id::parse(id) else {
        out.refused
            .push((id.to_string(), "entry_id is not <ms>-<seq>".into()));
        return;
    };
    if let Err(why) = check_limits(0, fields.len()) {
        out.refused.push((id.to_string(), why));
        return;
    }
    let list: Vec<String> = match serde_json::from_str(fields) {
        Ok(l) => l,
        Err(e) => {
            out.refused.push((
                id.to_string(),
                format!("fields is not a JSON array of strings: {}", e),
            ));
            return;
        }
    };
    if let Err(why) = check_limits(list.len(), 0) {
        out.refused.push((id.to_string(), why));
        return;
    }
    let decoded: Option<Vec<Vec<u8>>> = list.iter().map(|s| from_text(s)).collect();
    match decoded {
        Some(d) if d.len().is_multiple_of(2) => {
            let mut it = d.into_iter();
            let mut fields = Vec::new();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                fields.push((k, v));
            }
            out.entries.push(Entry { id: pid, fields });
        }
        _ => out.refused.push((
            id.to_string(),
            "fields are not text-form name/value pairs".into(),
        )),
    }
}

/// One row of `wins` as the win entry it came from (`user prize draw`).
fn win_row(
    id: &str,
    user: Vec<u8>,
    prize: String,
    raw: Option<Vec<u8>>,
    draw: i64,
    out: &mut Read,
) {
    let Some(pid) = Id::parse(id) else {
        out.refused
            .push((id.to_string(), "stream_id is not <ms>-<seq>".into()));
        return;
    };
    let prize = raw.unwrap_or_else(|| prize.into_bytes());
    out.entries.push(Entry {
        id: pid,
        fields: vec![
            (b"user".to_vec(), user),
            (b"prize".to_vec(), prize),
            (b"draw".to_vec(), draw.to_string().into_bytes()),
        ],
    });
}

const VERIFY_SQL: &str = "SELECT entry_id, fields FROM lottery_verify_log WHERE campaign = ";
const WINS_SQL: &str =
    "SELECT stream_id, user_id, prize, prize_raw, draw_seq FROM wins WHERE campaign = ";

/// Every row of `campaign` in the writer's database (`sqlite:PATH`, `postgres://`,
/// `mysql://`), as entries in ID order.
pub fn read_db(url: &str, campaign: &str, timeout: Duration) -> Result<Read, String> {
    let mut out = Read::default();
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let e = |e: rusqlite::Error| format!("SQLite {}: {}", path, e);
        let c =
            rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(e)?;
        c.busy_timeout(timeout).map_err(e)?;
        let mut st = c.prepare(&format!("{VERIFY_SQL}?1")).map_err(e)?;
        let mut rows = st.query([campaign]).map_err(e)?;
        while let Some(r) = rows.next().map_err(e)? {
            verify_row(
                &r.get::<_, String>(0).map_err(e)?,
                &r.get::<_, String>(1).map_err(e)?,
                &mut out,
            );
        }
        let mut st = c.prepare(&format!("{WINS_SQL}?1")).map_err(e)?;
        let mut rows = st.query([campaign]).map_err(e)?;
        while let Some(r) = rows.next().map_err(e)? {
            win_row(
                &r.get::<_, String>(0).map_err(e)?,
                r.get(1).map_err(e)?,
                r.get(2).map_err(e)?,
                r.get(3).map_err(e)?,
                r.get(4).map_err(e)?,
                &mut out,
            );
        }
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // The server's own message when there is one ("db error" alone says nothing).
        let e = |e: postgres::Error| match e.as_db_error() {
            Some(d) => format!("PostgreSQL: {} (SQLSTATE {})", d.message(), d.code().code()),
            None => format!("PostgreSQL: {}", e),
        };
        let mut config: postgres::Config = url.parse().map_err(e)?;
        config.connect_timeout(timeout);
        let mut c = config.connect(postgres::NoTls).map_err(e)?;
        for r in c
            .query(&format!("{VERIFY_SQL}$1"), &[&campaign])
            .map_err(e)?
        {
            verify_row(r.try_get(0).map_err(e)?, r.try_get(1).map_err(e)?, &mut out);
        }
        for r in c.query(&format!("{WINS_SQL}$1"), &[&campaign]).map_err(e)? {
            win_row(
                r.try_get(0).map_err(e)?,
                r.try_get(1).map_err(e)?,
                r.try_get(2).map_err(e)?,
                r.try_get(3).map_err(e)?,
                r.try_get(4).map_err(e)?,
                &mut out,
            );
        }
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        use mysql::prelude::Queryable;
        let u = url.replacen("mariadb://", "mysql://", 1);
        // The parser's message may quote the URL, password included: not shown.
        let opts = mysql::Opts::from_url(&u)
            .map_err(|_| "invalid MySQL URL (mysql://USER:PASSWORD@HOST:PORT/DB)".to_string())?;
        let opts = mysql::OptsBuilder::from_opts(opts)
            .prefer_socket(false)
            .tcp_connect_timeout(Some(timeout))
            .read_timeout(Some(timeout))
            .write_timeout(Some(timeout));
        let e = |e: mysql::Error| format!("MySQL: {}", e);
        let mut c = mysql::Conn::new(opts).map_err(e)?;
        let by_hash = " campaign_hash = UNHEX(SHA2(?, 256))";
        let v: Vec<(String, String)> = c
            .exec(VERIFY_SQL.replace(" campaign = ", by_hash), (campaign,))
            .map_err(e)?;
        for (id, f) in v {
            verify_row(&id, &f, &mut out);
        }
        type W = (String, Vec<u8>, String, Option<Vec<u8>>, i64);
        let w: Vec<W> = c
            .exec(WINS_SQL.replace(" campaign = ", by_hash), (campaign,))
            .map_err(e)?;
        for (id, u, p, raw, d) in w {
            win_row(&id, u, p, raw, d, &mut out);
        }
    } else {
        return Err(
            "unsupported --db: use sqlite:PATH, postgres://USER@HOST:PORT/DB or \
             mysql://USER:PASSWORD@HOST:PORT/DB"
                .into(),
        );
    }
    out.entries.sort_by_key(|e| e.id);
    Ok(out)
}
