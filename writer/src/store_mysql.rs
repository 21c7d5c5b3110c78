//! The MySQL / MariaDB store (`mysql://` or `mariadb://` URLs), behind the `Store` trait.
//!
//! Schema (created if missing; InnoDB, utf8mb4):
//!   wins(campaign_hash, stream_id, campaign, user_id, prize, ts_ms, draw_seq, reqid, prize_raw,
//!        code, primary key (campaign_hash, stream_id))
//!   stock_drains(campaign_hash, seq, prize_hash, campaign, prize, sold, prize_raw,
//!        primary key (campaign_hash, seq, prize_hash))
//!   lottery_verify_log(campaign_hash, entry_id, campaign, kind, epoch, draw, fields,
//!        primary key (campaign_hash, entry_id))
//! The columns mean what they mean in SQLite and PostgreSQL. A campaign key is up to 4096 bytes
//! and a prize id text of any length, more than an InnoDB key may hold (3072 bytes), so the keys
//! use their SHA-256 instead: `campaign_hash = UNHEX(SHA2(campaign, 256))` (readers can look a
//! campaign up by it with that expression), `prize_hash` the SHA-256 of the prize id's bytes,
//! `UNHEX(SHA2(COALESCE(prize_raw, prize), 256))`: its text alone is not unique (the text
//! `\xff` and the byte 0xff, escaped, read the same).
//!
//! Every session runs with a strict `sql_mode` (a value that does not fit is an error, never
//! silently truncated), `utf8mb4`, READ COMMITTED, `innodb_lock_wait_timeout` (row locks) and
//! `lock_wait_timeout` (table metadata locks) from `--db-timeout-ms`, which is also the
//! connect, read and write timeout. Tables in another
//! engine than InnoDB (MyISAM has no transactions) and a server that does not make a commit
//! durable (`innodb_flush_log_at_trx_commit = 0`) are refused at open.
//!
//! Duplicates (a redelivered entry, a drain batch stored twice) are skipped with
//! `ON DUPLICATE KEY UPDATE` of a column to itself: unlike `INSERT IGNORE`, it turns no other
//! error (a value too long, a NULL in a NOT NULL column) into a warning.

use crate::store::{DrainOutcome, Result, Store, ADDED_COLUMNS};
use crate::stream::{Drain, Win};
use crate::verify_log::VerifyEntry;
use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder, TxOpts, Value};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

const SCHEMA: [(&str, &str); 3] = [
    (
        "wins",
        "CREATE TABLE IF NOT EXISTS wins (
    campaign_hash BINARY(32) NOT NULL,
    stream_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    campaign  TEXT NOT NULL,
    user_id   LONGBLOB NOT NULL,
    prize     LONGTEXT NOT NULL,
    ts_ms     BIGINT NOT NULL,
    draw_seq  BIGINT NOT NULL,
    reqid     LONGBLOB,
    prize_raw LONGBLOB,
    code      LONGBLOB,
    PRIMARY KEY (campaign_hash, stream_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    ),
    (
        "stock_drains",
        "CREATE TABLE IF NOT EXISTS stock_drains (
    campaign_hash BINARY(32) NOT NULL,
    seq       BIGINT NOT NULL,
    prize_hash BINARY(32) NOT NULL,
    campaign  TEXT NOT NULL,
    prize     LONGTEXT NOT NULL,
    sold      BIGINT NOT NULL,
    prize_raw LONGBLOB,
    PRIMARY KEY (campaign_hash, seq, prize_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    ),
    (
        "lottery_verify_log",
        "CREATE TABLE IF NOT EXISTS lottery_verify_log (
    campaign_hash BINARY(32) NOT NULL,
    entry_id  VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    campaign  TEXT NOT NULL,
    kind      LONGTEXT NOT NULL,
    epoch     BIGINT,
    draw      BIGINT,
    fields    LONGTEXT NOT NULL,
    PRIMARY KEY (campaign_hash, entry_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    ),
];

/// `award_state` NULL: every win stored is to be delivered when `--award-url` is given (rows
/// stored before the column existed got its default, 'skipped').
const WINS_COLUMNS: &str = "wins (campaign_hash, stream_id, campaign, user_id, prize, ts_ms, \
                            draw_seq, reqid, prize_raw, code, award_state)";
const VERIFY_COLUMNS: &str =
    "lottery_verify_log (campaign_hash, entry_id, campaign, kind, epoch, draw, fields)";
const DRAINS_COLUMNS: &str =
    "stock_drains (campaign_hash, seq, prize_hash, campaign, prize, sold, prize_raw)";

/// Rows per INSERT statement at most; a batch is split into statements of 128, 64, ... 1 rows,
/// so a few prepared statements serve every batch size (and stay in the statement cache).
const MAX_ROWS_PER_STATEMENT: usize = 128;

/// The MySQL type of a column of `ADDED_COLUMNS` (given there with its PostgreSQL type).
/// `award_state` is a VARCHAR: it leads the award queue's index.
fn added_column_type(pg_type: &str) -> Option<&'static str> {
    match pg_type {
        "BYTEA" => Some("LONGBLOB"),
        "TEXT" => Some("LONGTEXT"),
        "BIGINT" => Some("BIGINT"),
        "TEXT DEFAULT 'skipped'" => Some("VARCHAR(16) DEFAULT 'skipped'"),
        "BIGINT NOT NULL DEFAULT 0" => Some("BIGINT NOT NULL DEFAULT 0"),
        _ => None,
    }
}

/// The award queue's index (award_store.rs): not partial in MySQL, so `award_state` leads it;
/// claiming and counting stay proportional to a campaign's backlog.
const AWARD_INDEX: &str = "CREATE INDEX wins_award_todo ON wins \
                           (award_state, campaign_hash, ts_ms, stream_id)";

fn sha256(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

/// The server's error number and message, or the client-side cause. Never the URL.
fn err(what: &str, e: mysql::Error) -> String {
    match e {
        mysql::Error::MySqlError(m) => format!(
            "MySQL {}: ERROR {} ({}): {}",
            what, m.code, m.state, m.message
        ),
        other if timed_out(&other) => format!(
            "MySQL {}: no answer within --db-timeout-ms ({})",
            what, other
        ),
        other => format!("MySQL {}: {}", what, other),
    }
}

/// A read or write that timed out (the socket's timeouts say EAGAIN, `os error 11`; the client
/// wraps it in its codec's error, so its text is looked at too).
fn timed_out(e: &mysql::Error) -> bool {
    if let mysql::Error::IoError(io) = e {
        if matches!(
            io.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            return true;
        }
    }
    let s = e.to_string();
    s.contains("(os error 11)") || s.contains("(os error 110)")
}

/// A percent-decoded URL part as UTF-8 (the client would silently replace invalid bytes).
fn decoded_utf8(part: &str, what: &str) -> Result<()> {
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(part).collect();
    std::str::from_utf8(&bytes).map(|_| ()).map_err(|_| {
        format!(
            "the {} in --database is not UTF-8 once percent-decoded",
            what
        )
    })
}

/// The connection options of a `mysql://` or `mariadb://` URL; `timeout` is the connect, read
/// and write timeout. Errors never quote the URL (it may hold a password).
pub fn opts(url: &str, timeout: Duration) -> Result<Opts> {
    let url = match url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{}", rest),
        None => url.to_string(),
    };
    let parsed = url::Url::parse(&url).map_err(|e| format!("invalid MySQL URL: {}", e))?;
    decoded_utf8(parsed.username(), "user name")?;
    decoded_utf8(parsed.password().unwrap_or(""), "password")?;
    let opts = Opts::from_url(&url).map_err(|e| format!("invalid MySQL URL: {}", e))?;
    if opts.get_db_name().is_none() {
        return Err("the MySQL URL names no database: mysql://USER:PASSWORD@HOST:PORT/DB".into());
    }
    let lock_wait_s = timeout.as_millis().div_ceil(1000).clamp(1, 1_073_741_824);
    let mut b = OptsBuilder::from_opts(opts)
        .tcp_connect_timeout(Some(timeout))
        .read_timeout(Some(timeout))
        .write_timeout(Some(timeout))
        .init(vec![
            "SET NAMES utf8mb4".to_string(),
            "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'".to_string(),
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED".to_string(),
            format!("SET SESSION innodb_lock_wait_timeout = {}", lock_wait_s),
            // A table's metadata lock (LOCK TABLES, ALTER TABLE) is waited for up to
            // lock_wait_timeout, a day by default: a session the writer gave up on (read
            // timeout, retried on a new one) would keep waiting, one more each retry, until the
            // server has no connection left.
            format!("SET SESSION lock_wait_timeout = {}", lock_wait_s),
        ]);
    // TCP to the host and port the URL names, unless it asks for the local socket.
    if !parsed.query_pairs().any(|(k, _)| k == "prefer_socket") {
        b = b.prefer_socket(false);
    }
    Ok(b.into())
}

pub struct Mysql {
    opts: Opts,
    /// None after a connection-level failure (the protocol state is unknown): reconnected
    /// before the next statement.
    conn: Option<Conn>,
    /// The server's `max_allowed_packet` as the session saw it at connect: no statement is
    /// built larger (a batch of big rows is split into more statements).
    max_packet: usize,
    /// When the session last answered: after `IDLE_CHECK` without a statement it is pinged
    /// first (the server may have closed it: `wait_timeout`).
    last_used: Instant,
}

/// A session unused this long is pinged before the next transaction, and replaced if the
/// server closed it meanwhile (`wait_timeout`, 1 s at the least): a lull in the wins is not a
/// failed attempt, a `retry` line and an error counted.
const IDLE_CHECK: Duration = Duration::from_secs(1);

impl Mysql {
    pub fn open(url: &str, timeout: Duration) -> Result<Self> {
        let opts = opts(url, timeout)?;
        let (conn, max_packet) = Self::connect(&opts)?;
        Ok(Mysql {
            opts,
            conn: Some(conn),
            max_packet,
            last_used: Instant::now(),
        })
    }

    /// A new session, and its `max_allowed_packet`.
    fn connect(opts: &Opts) -> Result<(Conn, usize)> {
        let mut conn = Conn::new(opts.clone()).map_err(|e| err("connect", e))?;
        // A commit must survive a crash of the server before the XACK that follows it.
        let vars: Option<(Option<i64>, Option<u64>)> = conn
            .query_first("SELECT @@innodb_flush_log_at_trx_commit, @@max_allowed_packet")
            .map_err(|e| err("read innodb_flush_log_at_trx_commit", e))?;
        let (flush, max_packet) = vars.unwrap_or((None, None));
        // 1 GiB is the largest the server takes; 1 KiB its smallest.
        let max_packet = max_packet.unwrap_or(1 << 30).clamp(1024, 1 << 30) as usize;
        if flush == Some(0) {
            return Err(
                "MySQL: innodb_flush_log_at_trx_commit = 0: a commit is lost if the server \
                 crashes within a second, after its entries were acknowledged; set it to 1"
                    .into(),
            );
        }
        // Only the missing tables are created: CREATE TABLE IF NOT EXISTS needs the CREATE
        // privilege even when the table is there.
        let mut engines = tables(&mut conn)?;
        for (name, sql) in SCHEMA {
            if !engines.iter().any(|(t, _)| t == name) {
                conn.query_drop(sql).map_err(|e| err("create tables", e))?;
            }
        }
        if engines.len() < SCHEMA.len() {
            engines = tables(&mut conn)?;
        }
        for (table, engine) in engines {
            if !engine
                .as_deref()
                .unwrap_or("")
                .eq_ignore_ascii_case("InnoDB")
            {
                return Err(format!(
                    "MySQL: table {} uses the {} engine, not InnoDB: without transactions a \
                     batch could be half stored; convert it (ALTER TABLE {} ENGINE=InnoDB)",
                    table,
                    engine.as_deref().unwrap_or("unknown"),
                    table
                ));
            }
        }
        add_columns(&mut conn)?;
        add_award_index(&mut conn)?;
        Ok((conn, max_packet))
    }

    fn conn(&mut self) -> Result<&mut Conn> {
        if self.conn.is_none() {
            let (conn, max_packet) = Self::connect(&self.opts)?;
            self.conn = Some(conn);
            self.max_packet = max_packet;
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    /// Runs `f` on the connection; a failure other than the server's own error drops the
    /// connection (its state is unknown), so the next call reconnects.
    fn with_conn<T>(
        &mut self,
        f: impl FnOnce(&mut Conn, usize) -> std::result::Result<T, (&'static str, mysql::Error)>,
    ) -> Result<T> {
        if self.last_used.elapsed() >= IDLE_CHECK {
            if let Some(c) = self.conn.as_mut() {
                if c.ping().is_err() {
                    self.conn = None;
                }
            }
        }
        self.conn()?;
        let max_packet = self.max_packet;
        let conn = self.conn.as_mut().expect("connected above");
        let r = f(conn, max_packet);
        self.last_used = Instant::now();
        match r {
            Ok(v) => Ok(v),
            Err((what, e)) => {
                if !matches!(e, mysql::Error::MySqlError(_)) {
                    self.conn = None;
                }
                Err(err(what, e))
            }
        }
    }
}

/// The writer's tables in the database, with their engines.
fn tables(conn: &mut Conn) -> Result<Vec<(String, Option<String>)>> {
    conn.query(
        "SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('wins', 'stock_drains', 'lottery_verify_log')",
    )
    .map_err(|e| err("read the tables", e))
}

/// Adds the columns of `ADDED_COLUMNS` the tables lack (tables made by an earlier version).
fn add_columns(conn: &mut Conn) -> Result<()> {
    for (table, column, _, pg_type) in ADDED_COLUMNS {
        let ty = added_column_type(pg_type)
            .ok_or_else(|| format!("MySQL: no column type for {} {}", column, pg_type))?;
        let has: Option<i64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
                 AND TABLE_NAME = ? AND COLUMN_NAME = ?",
                (table, column),
            )
            .map_err(|e| err("read columns", e))?;
        if has.unwrap_or(0) == 0 {
            match conn.query_drop(format!("ALTER TABLE {table} ADD COLUMN {column} {ty}")) {
                Ok(()) => {}
                // ER_DUP_FIELDNAME: another writer added it meanwhile.
                Err(mysql::Error::MySqlError(m)) if m.code == 1060 => {}
                Err(e) => return Err(err("add column", e)),
            }
        }
    }
    Ok(())
}

/// Creates the award queue's index when it is missing (looked up first: creating it needs the
/// INDEX privilege, which a writer that finds it there does not need).
fn add_award_index(conn: &mut Conn) -> Result<()> {
    let has: Option<i64> = conn
        .query_first(
            "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = 'wins' AND INDEX_NAME = 'wins_award_todo'",
        )
        .map_err(|e| err("read indexes", e))?;
    if has.unwrap_or(0) == 0 {
        match conn.query_drop(AWARD_INDEX) {
            Ok(()) => {}
            // ER_DUP_KEYNAME: another writer created it meanwhile.
            Err(mysql::Error::MySqlError(m)) if m.code == 1061 => {}
            Err(e) => return Err(err("create the award index", e)),
        }
    }
    Ok(())
}

/// `INSERT INTO <columns> VALUES (?, ...), ... ON DUPLICATE KEY UPDATE <noop>` for `rows` rows
/// of `n` columns.
fn insert_sql(columns: &str, n: usize, rows: usize, noop: &str) -> String {
    let row = format!("({})", vec!["?"; n].join(", "));
    format!(
        "INSERT INTO {} VALUES {} ON DUPLICATE KEY UPDATE {}",
        columns,
        vec![row; rows].join(", "),
        noop
    )
}

/// What a value adds to a COM_STMT_EXECUTE packet at most: its bytes, their length prefix
/// (up to 9 bytes), its type (2) and its bit in the NULL bitmap (counted as a byte).
fn value_size(v: &Value) -> usize {
    12 + match v {
        Value::Bytes(b) => b.len(),
        _ => 8,
    }
}

/// Room kept in a packet for the command's header and the statement id.
const PACKET_HEADER: usize = 1024;

/// Inserts `rows` (each `n` values) in statements of at most `MAX_ROWS_PER_STATEMENT` rows,
/// and of fewer when their values would not fit in a packet of `max_packet` bytes (the
/// server's `max_allowed_packet`: it refuses a larger one, and closes the connection);
/// returns the rows newly inserted (a duplicate updated to itself counts 0). A single row
/// larger than that is sent alone, and its failure says which setting to raise.
fn insert_rows(
    tx: &mut mysql::Transaction<'_>,
    columns: &str,
    n: usize,
    noop: &str,
    rows: Vec<Vec<Value>>,
    max_packet: usize,
) -> std::result::Result<u64, mysql::Error> {
    let budget = max_packet.saturating_sub(PACKET_HEADER);
    let sizes: Vec<usize> = rows
        .iter()
        .map(|r| r.iter().map(value_size).sum())
        .collect();
    let mut inserted = 0;
    let mut start = 0;
    while start < rows.len() {
        let k = chunk_len(&sizes[start..], budget);
        let chunk = &rows[start..start + k];
        let params: Vec<Value> = chunk.iter().flatten().cloned().collect();
        match tx.exec_drop(insert_sql(columns, n, k, noop), params) {
            Ok(()) => {}
            // The server closes the connection after a packet too large: it is dropped (an
            // error other than the server's own) and the batch retried on a new one.
            Err(e) if sizes[start] > budget => {
                return Err(mysql::Error::IoError(std::io::Error::other(format!(
                    "a row of about {} bytes does not fit in the server's max_allowed_packet \
                     ({} bytes): raise it (SET GLOBAL max_allowed_packet; at most 1 GiB) and \
                     the batch is stored at the next retry ({})",
                    sizes[start], max_packet, e
                ))));
            }
            Err(e) => return Err(e),
        }
        inserted += tx.affected_rows();
        start += k;
    }
    Ok(inserted)
}

/// How many of the rows whose sizes are `sizes` go into the next statement: a power of two
/// (a few prepared statements serve every batch), at most `MAX_ROWS_PER_STATEMENT`, whose
/// values fit in `budget` bytes; at least 1.
fn chunk_len(sizes: &[usize], budget: usize) -> usize {
    let k = sizes.len().min(MAX_ROWS_PER_STATEMENT);
    // The largest power of two <= k.
    let mut k = 1usize << (usize::BITS - 1 - k.leading_zeros());
    while k > 1 && sizes[..k].iter().sum::<usize>() > budget {
        k /= 2;
    }
    k
}

/// The session's isolation level (READ COMMITTED, set at connect): no extra round trip.
fn tx_opts() -> TxOpts {
    TxOpts::default()
}

/// The rows of `lottery_verify_log` for `entries`.
fn verify_rows(campaign: &str, hash: &[u8], entries: &[VerifyEntry]) -> Vec<Vec<Value>> {
    entries
        .iter()
        .map(|v| {
            vec![
                Value::Bytes(hash.to_vec()),
                Value::from(&v.id),
                Value::from(campaign),
                Value::from(&v.kind),
                Value::from(v.epoch),
                Value::from(v.draw),
                Value::from(&v.fields),
            ]
        })
        .collect()
}

impl Store for Mysql {
    fn write_batch(
        &mut self,
        campaign: &str,
        wins: &[Win],
        verify: &[VerifyEntry],
    ) -> Result<(usize, usize)> {
        let hash = sha256(campaign.as_bytes());
        let rows: Vec<Vec<Value>> = wins
            .iter()
            .map(|w| {
                vec![
                    Value::Bytes(hash.clone()),
                    Value::from(&w.id),
                    Value::from(campaign),
                    Value::Bytes(w.user.clone()),
                    Value::from(&w.prize),
                    Value::Int(w.ts_ms),
                    Value::Int(w.draw_seq),
                    Value::from(w.reqid.clone()),
                    Value::from(w.prize_raw.clone()),
                    Value::from(w.code.clone()),
                    Value::NULL,
                ]
            })
            .collect();
        let verify_rows = verify_rows(campaign, &hash, verify);
        self.with_conn(|conn, max_packet| {
            let mut tx = conn
                .start_transaction(tx_opts())
                .map_err(|e| ("begin", e))?;
            let n = insert_rows(
                &mut tx,
                WINS_COLUMNS,
                11,
                "stream_id = stream_id",
                rows,
                max_packet,
            )
            .map_err(|e| ("insert wins", e))?;
            let v = insert_rows(
                &mut tx,
                VERIFY_COLUMNS,
                7,
                "entry_id = entry_id",
                verify_rows,
                max_packet,
            )
            .map_err(|e| ("insert lottery_verify_log", e))?;
            tx.commit().map_err(|e| ("commit", e))?;
            Ok((n as usize, v as usize))
        })
    }

    fn write_drain(&mut self, campaign: &str, drain: &Drain) -> Result<DrainOutcome> {
        if drain.sold.is_empty() {
            return Ok(DrainOutcome::Empty);
        }
        let hash = sha256(campaign.as_bytes());
        let rows: Vec<Vec<Value>> = drain
            .sold
            .iter()
            .map(|s| {
                vec![
                    Value::Bytes(hash.clone()),
                    Value::Int(drain.seq),
                    // The id's bytes, not its text: two ids may share a text (the text
                    // `\xff` and the byte 0xff, escaped).
                    Value::Bytes(sha256(s.prize_raw.as_deref().unwrap_or(s.prize.as_bytes()))),
                    Value::from(campaign),
                    Value::from(&s.prize),
                    Value::Int(s.n),
                    Value::from(s.prize_raw.clone()),
                ]
            })
            .collect();
        self.with_conn(|conn, max_packet| {
            let mut tx = conn.start_transaction(tx_opts()).map_err(|e| ("begin", e))?;
            let exists: Option<i64> = tx
                .exec_first(
                    "SELECT EXISTS (SELECT 1 FROM stock_drains WHERE campaign_hash = ? AND seq = ?)",
                    (hash.clone(), drain.seq),
                )
                .map_err(|e| ("select drain", e))?;
            if exists.unwrap_or(0) != 0 {
                return Ok(DrainOutcome::AlreadyStored);
            }
            // A concurrent writer storing the same batch is not an error.
            insert_rows(&mut tx, DRAINS_COLUMNS, 7, "sold = sold", rows, max_packet)
                .map_err(|e| ("insert drain", e))?;
            tx.commit().map_err(|e| ("commit", e))?;
            Ok(DrainOutcome::Stored)
        })
    }

    fn reconnect(&mut self) -> Result<()> {
        if let Some(c) = self.conn.as_mut() {
            if c.ping().is_ok() {
                return Ok(());
            }
        }
        self.conn = None;
        self.conn()?;
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "mysql"
    }

    fn award(&mut self) -> Option<&mut dyn crate::award_store::AwardSql> {
        Some(self)
    }
}

/// The award queue (award_store.rs) in MySQL / MariaDB.
mod award_impl {
    use super::*;
    use crate::award_store::{AwardRow, AwardSql, Dialect, P};

    /// The statements name a campaign by its key; the tables are keyed by its SHA-256.
    fn by_hash(sql: &str) -> String {
        sql.replace("campaign = ?", "campaign_hash = UNHEX(SHA2(?, 256))")
    }

    fn values(p: &[P]) -> Vec<Value> {
        p.iter()
            .map(|x| match *x {
                P::Text(s) => Value::from(s),
                P::Int(n) => Value::Int(n),
                P::Null => Value::NULL,
            })
            .collect()
    }

    /// Column `i` of `row` as `T`; a NULL or a value of another type is an error, never a
    /// panic.
    fn col<T: mysql::prelude::FromValue>(row: &mysql::Row, i: usize) -> Result<T> {
        match row.get_opt::<T, usize>(i) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(format!("MySQL award queue: column {}: {}", i, e)),
            None => Err(format!("MySQL award queue: no column {}", i)),
        }
    }

    impl AwardSql for Mysql {
        fn dialect(&self) -> Dialect {
            Dialect::MySql
        }

        fn exec(&mut self, sql: &str, params: &[P]) -> Result<u64> {
            let (sql, params) = (by_hash(sql), values(params));
            self.with_conn(|conn, _| {
                conn.exec_drop(sql, params)
                    .map_err(|e| ("award queue", e))?;
                Ok(conn.affected_rows())
            })
        }

        fn rows(&mut self, sql: &str, params: &[P]) -> Result<Vec<AwardRow>> {
            let (sql, params) = (by_hash(sql), values(params));
            let rows: Vec<mysql::Row> =
                self.with_conn(|conn, _| conn.exec(sql, params).map_err(|e| ("award queue", e)))?;
            rows.iter()
                .map(|r| {
                    let prize: String = col(r, 3)?;
                    let raw: Option<Vec<u8>> = col(r, 4)?;
                    Ok(AwardRow {
                        campaign: col(r, 0)?,
                        stream_id: col(r, 1)?,
                        user: col(r, 2)?,
                        prize: raw.unwrap_or_else(|| prize.into_bytes()),
                        code: col(r, 5)?,
                        ts_ms: col(r, 6)?,
                        draw_seq: col(r, 7)?,
                    })
                })
                .collect()
        }

        fn counts(&mut self, sql: &str, params: &[P]) -> Result<Vec<(String, i64)>> {
            let (sql, params) = (by_hash(sql), values(params));
            let rows: Vec<mysql::Row> =
                self.with_conn(|conn, _| conn.exec(sql, params).map_err(|e| ("award queue", e)))?;
            rows.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?))).collect()
        }

        /// MySQL's commit durability is a server setting, not a session's. What this
        /// connection needs instead: an UPDATE's row count counts the rows it matched, not only
        /// those it changed (a lease renewed to the value it has is still held). Set here, on
        /// the delivery threads' own connections only: the storing connection counts a
        /// redelivered entry as not inserted by that very difference.
        fn relax_durability(&mut self) -> Result<()> {
            let found = mysql::consts::CapabilityFlags::CLIENT_FOUND_ROWS;
            let flags = self.opts.get_additional_capabilities();
            if !flags.contains(found) {
                self.opts = OptsBuilder::from_opts(self.opts.clone())
                    .additional_capabilities(flags | found)
                    .into();
                self.conn = None;
            }
            Ok(())
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn statements_use_the_hash() {
            assert_eq!(
                super::by_hash("UPDATE wins SET a = ? WHERE campaign = ? AND stream_id = ?"),
                "UPDATE wins SET a = ? WHERE campaign_hash = UNHEX(SHA2(?, 256)) AND stream_id = ?"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_added_column_has_a_mysql_type() {
        for (_, column, _, pg_type) in ADDED_COLUMNS {
            assert!(added_column_type(pg_type).is_some(), "{column} {pg_type}");
        }
    }

    #[test]
    fn urls() {
        let t = Duration::from_secs(1);
        let o = opts("mariadb://w:p%40ss%3Aw%2Fd@127.0.0.1:3307/lottery", t).unwrap();
        assert_eq!(o.get_user(), Some("w"));
        assert_eq!(o.get_pass(), Some("p@ss:w/d"));
        assert_eq!(o.get_tcp_port(), 3307);
        assert_eq!(o.get_db_name(), Some("lottery"));
        assert!(!o.get_prefer_socket());
        assert_eq!(o.get_read_timeout(), Some(&t));
        assert_eq!(o.get_write_timeout(), Some(&t));
        assert_eq!(o.get_tcp_connect_timeout(), Some(t));
        let e = opts("mysql://w:secret@127.0.0.1:3307", t).unwrap_err();
        assert!(e.contains("names no database"), "{e}");
        let e = opts("mysql://w:s%ffecret@h/db", t).unwrap_err();
        assert!(e.contains("password") && !e.contains("ecret"), "{e}");
        let e = opts("mysql://w:secret@h/db?nonsense=1", t).unwrap_err();
        assert!(!e.contains("secret@"), "{e}");
        assert!(opts("mysql://w:secret@h:99999/db", t).is_err());
        assert!(opts("mysql://w:secret@h/db?prefer_socket=true", t)
            .unwrap()
            .get_prefer_socket());
        // IPv6, no port (3306), every reserved character and non-ASCII in the password.
        let o = opts(
            "mysql://w:%40%3A%2F%3F%23%25%2B%20%C3%A9%F0%9F%8E%81@[::1]/d%20b",
            t,
        )
        .unwrap();
        assert_eq!(o.get_pass(), Some("@:/?#%+ é🎁"));
        assert_eq!(o.get_ip_or_hostname(), "[::1]");
        assert_eq!(o.get_tcp_port(), 3306);
        assert_eq!(o.get_db_name(), Some("d b"));
        // A socket path as a query option.
        let o = opts(
            "mysql://w:p@localhost/db?socket=%2Frun%2Fmysqld%2Fm.sock",
            t,
        )
        .unwrap();
        assert_eq!(o.get_socket(), Some("/run/mysqld/m.sock"));
        // Unencoded reserved characters in the password: an error that does not quote it.
        for url in [
            "mysql://w:se?cret@h/db",
            "mysql://w:se#cret@h/db",
            "mysql://w:se/cret@h/db",
            "mysql://w:12#cret@h/db",
        ] {
            let e = opts(url, t).unwrap_err();
            assert!(!e.contains("cret"), "{url}: {e}");
        }
    }

    #[test]
    fn chunks_fit_the_packet() {
        assert_eq!(chunk_len(&[10; 500], 1 << 20), 128);
        assert_eq!(chunk_len(&[10; 100], 1 << 20), 64);
        assert_eq!(chunk_len(&[10; 1], 1 << 20), 1);
        assert_eq!(chunk_len(&[200_000; 40], 1 << 20), 4);
        assert_eq!(chunk_len(&[2 << 20; 40], 1 << 20), 1);
        assert_eq!(chunk_len(&[10, 10, 10, 1 << 20], 100), 2);
        assert_eq!(value_size(&Value::Bytes(vec![0; 100])), 112);
        assert_eq!(value_size(&Value::NULL), 20);
    }

    #[test]
    fn timeouts_are_named() {
        let e = mysql::Error::IoError(std::io::ErrorKind::WouldBlock.into());
        assert!(err("begin", e).contains("no answer within --db-timeout-ms"));
        let e = mysql::Error::IoError(std::io::ErrorKind::ConnectionReset.into());
        assert!(!err("begin", e).contains("no answer"));
    }

    #[test]
    fn statements() {
        assert_eq!(
            insert_sql("t (a, b)", 2, 2, "a = a"),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ON DUPLICATE KEY UPDATE a = a"
        );
    }
}
