//! The database side: SQLite (default), PostgreSQL and MySQL / MariaDB (store_mysql.rs),
//! behind one trait.
//!
//! Schema (created if missing):
//!   wins(stream_id, campaign, user_id, prize, ts_ms, draw_seq, reqid, prize_raw, code,
//!        primary key (campaign, stream_id))
//!   stock_drains(campaign, seq, prize, sold, prize_raw, primary key (campaign, seq, prize))
//!   lottery_verify_log(campaign, entry_id, kind, epoch, draw, fields,
//!        primary key (campaign, entry_id)): the stream's entries that have a `type` field
//!        (verify_log.rs). A table missing from a database made by an earlier version is
//!        created at open.
//! `user_id`, `reqid` and `code` are BLOB / bytea: the exact bytes the client gave Redis (the
//! code: the one a win of a code prize handed out, NULL for other wins). `prize_raw` holds a
//! prize id's bytes when it is not plain text (see `stream::prize_text`). Columns added after
//! the first version (`ADDED_COLUMNS`) are added at open to tables that lack them.
//!
//! Durability: an entry is acknowledged only after the transaction holding its row committed.
//! SQLite runs in WAL (or a rollback journal) with `synchronous=FULL`, checked at open; an
//! in-memory database is refused; the file's identity (device, inode) is remembered at open and
//! `verify` fails once the path no longer names that file (removed, or replaced), so nothing is
//! acknowledged into a file nobody will read.

use crate::stream::{Drain, Win};
use crate::verify_log::VerifyEntry;

pub type Result<T> = std::result::Result<T, String>;

/// Columns added by later versions: (table, column, SQLite type, PostgreSQL type). Tables made
/// by an earlier version get them at open (`ALTER TABLE ... ADD COLUMN`), existing rows NULL.
/// The award columns (see award_store.rs): rows stored before they existed get `award_state`
/// 'skipped' (never delivered by themselves); the writer inserts NULL (to be delivered).
pub(crate) const ADDED_COLUMNS: [(&str, &str, &str, &str); 9] = [
    ("wins", "prize_raw", "BLOB", "BYTEA"),
    ("stock_drains", "prize_raw", "BLOB", "BYTEA"),
    ("wins", "code", "BLOB", "BYTEA"),
    (
        "wins",
        "award_state",
        "TEXT DEFAULT 'skipped'",
        "TEXT DEFAULT 'skipped'",
    ),
    (
        "wins",
        "award_attempts",
        "INTEGER NOT NULL DEFAULT 0",
        "BIGINT NOT NULL DEFAULT 0",
    ),
    ("wins", "award_at_ms", "INTEGER", "BIGINT"),
    ("wins", "award_error", "TEXT", "TEXT"),
    ("wins", "award_owner", "TEXT", "TEXT"),
    ("wins", "award_lease_until_ms", "INTEGER", "BIGINT"),
];

/// How a drain batch was recorded.
#[derive(Debug, PartialEq, Eq)]
pub enum DrainOutcome {
    Stored,
    AlreadyStored,
    Empty,
}

pub trait Store: Send {
    /// Inserts the wins in one transaction; returns how many rows were new
    /// (the others were already there: redeliveries). A batch without typed entries.
    #[cfg(test)]
    fn write_wins(&mut self, campaign: &str, wins: &[Win]) -> Result<usize> {
        Ok(self.write_batch(campaign, wins, &[])?.0)
    }
    /// Inserts the wins and the typed entries (verify_log.rs, into `lottery_verify_log`) of a
    /// batch in one transaction; returns how many of each were new.
    fn write_batch(
        &mut self,
        campaign: &str,
        wins: &[Win],
        verify: &[VerifyEntry],
    ) -> Result<(usize, usize)>;
    /// Records one drain batch in one transaction, unless its seq is already stored.
    fn write_drain(&mut self, campaign: &str, drain: &Drain) -> Result<DrainOutcome>;
    /// Makes sure the connection is usable again after an error (reconnects if needed).
    fn reconnect(&mut self) -> Result<()>;
    /// Err when the database the writer opened is gone (SQLite: the file was removed or
    /// replaced): nothing more may be acknowledged. Checked before each batch and each XACK.
    fn verify(&self) -> Result<()> {
        Ok(())
    }
    fn kind(&self) -> &'static str;
    /// The award delivery queue in this database (award_store.rs); None: not supported.
    fn award(&mut self) -> Option<&mut dyn crate::award_store::AwardSql> {
        None
    }
}

pub enum DbUrl {
    Sqlite(String),
    #[allow(dead_code)]
    Postgres(String),
    #[allow(dead_code)]
    Mysql(String),
}

pub fn parse_url(url: &str) -> Result<DbUrl> {
    if let Some(rest) = url.strip_prefix("sqlite://") {
        return Ok(DbUrl::Sqlite(rest.to_string()));
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        return Ok(DbUrl::Sqlite(rest.to_string()));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(DbUrl::Postgres(url.to_string()));
    }
    if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        return Ok(DbUrl::Mysql(url.to_string()));
    }
    Err(format!(
        "unsupported --database {:?}: use sqlite:PATH, postgres://USER@HOST:PORT/DB or \
         mysql://USER:PASSWORD@HOST:PORT/DB",
        crate::log::mask_url(url)
    ))
}

/// Refuses databases that cannot keep what is acknowledged: SQLite in memory (`:memory:`,
/// `file::memory:`, a `mode=memory` URI) or an empty path (a temporary database).
pub fn check_url(url: &str) -> Result<()> {
    #[cfg(feature = "mysql")]
    if let DbUrl::Mysql(u) = parse_url(url)? {
        // A malformed URL is a configuration error, not an unreachable database.
        crate::store_mysql::opts(&u, std::time::Duration::from_secs(1))?;
    }
    if let DbUrl::Sqlite(path) = parse_url(url)? {
        let lower = path.to_ascii_lowercase();
        let in_memory = path.is_empty()
            || path == ":memory:"
            || lower.starts_with("file::memory:")
            || (lower.starts_with("file:")
                && lower
                    .split_once('?')
                    .is_some_and(|(_, q)| q.split('&').any(|kv| kv == "mode=memory")));
        if in_memory {
            return Err(format!(
                "--database {:?} is an in-memory (or temporary) SQLite database: acknowledged \
                 wins would be lost at exit; give a file path",
                url
            ));
        }
    }
    Ok(())
}

pub fn open(url: &str, timeout: std::time::Duration) -> Result<Box<dyn Store>> {
    check_url(url)?;
    match parse_url(url)? {
        DbUrl::Sqlite(path) => Ok(Box::new(Sqlite::open(&path, timeout)?)),
        #[cfg(feature = "postgres")]
        DbUrl::Postgres(u) => Ok(Box::new(pg::Postgres::open(&u, timeout)?)),
        #[cfg(not(feature = "postgres"))]
        DbUrl::Postgres(_) => {
            Err("this lottery-writer was built without the postgres feature".into())
        }
        #[cfg(feature = "mysql")]
        DbUrl::Mysql(u) => Ok(Box::new(crate::store_mysql::Mysql::open(&u, timeout)?)),
        #[cfg(not(feature = "mysql"))]
        DbUrl::Mysql(_) => Err("this lottery-writer was built without the mysql feature".into()),
    }
}

// ---------------------------------------------------------------- SQLite

pub struct Sqlite {
    path: String,
    pub(crate) conn: rusqlite::Connection,
    timeout: std::time::Duration,
    /// (device, inode) of the file opened first.
    identity: (u64, u64),
}

/// The file a SQLite path names (a `file:` URI: its path part).
fn sqlite_file(path: &str) -> &str {
    match path.strip_prefix("file:") {
        Some(rest) => {
            let rest = rest.split('?').next().unwrap_or("");
            rest.strip_prefix("//localhost")
                .or_else(|| rest.strip_prefix("//"))
                .unwrap_or(rest)
        }
        None => path,
    }
}

fn file_identity(path: &str) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(sqlite_file(path)).map_err(|e| {
        format!(
            "SQLite {}: the database file is gone ({}): it was removed, or its directory was",
            path, e
        )
    })?;
    Ok((m.dev(), m.ino()))
}

const SQLITE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS wins (
    stream_id TEXT NOT NULL,
    campaign  TEXT NOT NULL,
    user_id   BLOB NOT NULL,
    prize     TEXT NOT NULL,
    ts_ms     INTEGER NOT NULL,
    draw_seq  INTEGER NOT NULL,
    reqid     BLOB,
    prize_raw BLOB,
    code      BLOB,
    award_state TEXT DEFAULT 'skipped',
    award_attempts INTEGER NOT NULL DEFAULT 0,
    award_at_ms INTEGER,
    award_error TEXT,
    award_owner TEXT,
    award_lease_until_ms INTEGER,
    PRIMARY KEY (campaign, stream_id)
);
CREATE TABLE IF NOT EXISTS stock_drains (
    campaign TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    prize    TEXT NOT NULL,
    sold     INTEGER NOT NULL,
    prize_raw BLOB,
    PRIMARY KEY (campaign, seq, prize)
);
CREATE TABLE IF NOT EXISTS lottery_verify_log (
    campaign TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    kind     TEXT NOT NULL,
    epoch    INTEGER,
    draw     INTEGER,
    fields   TEXT NOT NULL,
    PRIMARY KEY (campaign, entry_id)
);
";

impl Sqlite {
    pub fn open(path: &str, timeout: std::time::Duration) -> Result<Self> {
        let conn = Self::connect(path, timeout)?;
        let identity = file_identity(path)?;
        Ok(Sqlite {
            path: path.to_string(),
            conn,
            timeout,
            identity,
        })
    }

    /// `connect_once`, again while another writer holds the file's lock for longer than the
    /// busy handler waits: switching a new file to WAL and creating the schema can report
    /// "database is locked" at once when two writers start together.
    fn connect(path: &str, timeout: std::time::Duration) -> Result<rusqlite::Connection> {
        let start = std::time::Instant::now();
        loop {
            match Self::connect_once(path, timeout) {
                Err(m)
                    if (m.contains("database is locked") || m.contains("database is busy"))
                        && start.elapsed() < timeout =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                r => return r,
            }
        }
    }

    fn connect_once(path: &str, timeout: std::time::Duration) -> Result<rusqlite::Connection> {
        let e = |e: rusqlite::Error| format!("SQLite {}: {}", path, e);
        let conn = rusqlite::Connection::open(path).map_err(e)?;
        conn.busy_timeout(timeout).map_err(e)?;
        // WAL lets several writers and readers share the file; synchronous FULL so a committed
        // batch survives a power loss before its XACK.
        conn.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(e)?;
        // Both are checked: a journal mode can be refused (WAL on some file systems) or
        // forced (an in-memory database keeps `memory`).
        let journal: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .map_err(e)?;
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .map_err(e)?;
        let journal = journal.to_ascii_lowercase();
        if !["wal", "delete", "truncate", "persist"].contains(&journal.as_str()) || sync < 2 {
            return Err(format!(
                "SQLite {}: not durable (journal_mode={}, synchronous={}): a commit could be \
                 lost after its XACK",
                path, journal, sync
            ));
        }
        conn.execute_batch(SQLITE_SCHEMA).map_err(e)?;
        // Tables made by an earlier version lack the columns added since.
        for (table, column, ty, _) in ADDED_COLUMNS {
            let has: bool = conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
                    [table, column],
                    |r| r.get(0),
                )
                .map_err(e)?;
            if !has {
                match conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}")) {
                    Ok(()) => {}
                    // Another writer added it meanwhile.
                    Err(x) if x.to_string().contains("duplicate column") => {}
                    Err(x) => return Err(e(x)),
                }
            }
        }
        // After the columns: the index names award_state.
        conn.execute_batch(crate::award_store::SQLITE_INDEX)
            .map_err(e)?;
        Ok(conn)
    }
}

impl Store for Sqlite {
    fn write_batch(
        &mut self,
        campaign: &str,
        wins: &[Win],
        verify: &[VerifyEntry],
    ) -> Result<(usize, usize)> {
        let e = |e: rusqlite::Error| format!("SQLite write of wins: {}", e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(e)?;
        let mut inserted = 0;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO wins (stream_id, campaign, user_id, prize, ts_ms, draw_seq, reqid, prize_raw, code, award_state) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL)",
                )
                .map_err(e)?;
            for w in wins {
                inserted += st
                    .execute(rusqlite::params![
                        w.id,
                        campaign,
                        w.user,
                        w.prize,
                        w.ts_ms,
                        w.draw_seq,
                        w.reqid,
                        w.prize_raw,
                        w.code
                    ])
                    .map_err(e)?;
            }
        }
        let mut verify_inserted = 0;
        if !verify.is_empty() {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO lottery_verify_log (campaign, entry_id, kind, epoch, draw, fields) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(e)?;
            for v in verify {
                verify_inserted += st
                    .execute(rusqlite::params![
                        campaign, v.id, v.kind, v.epoch, v.draw, v.fields
                    ])
                    .map_err(e)?;
            }
        }
        tx.commit().map_err(e)?;
        Ok((inserted, verify_inserted))
    }

    fn write_drain(&mut self, campaign: &str, drain: &Drain) -> Result<DrainOutcome> {
        if drain.sold.is_empty() {
            return Ok(DrainOutcome::Empty);
        }
        let e = |e: rusqlite::Error| format!("SQLite write of drain: {}", e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(e)?;
        let exists: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM stock_drains WHERE campaign = ?1 AND seq = ?2)",
                rusqlite::params![campaign, drain.seq],
                |r| r.get(0),
            )
            .map_err(e)?;
        if exists {
            return Ok(DrainOutcome::AlreadyStored);
        }
        for s in &drain.sold {
            tx.execute(
                "INSERT INTO stock_drains (campaign, seq, prize, sold, prize_raw) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![campaign, drain.seq, s.prize, s.n, s.prize_raw],
            )
            .map_err(e)?;
        }
        tx.commit().map_err(e)?;
        Ok(DrainOutcome::Stored)
    }

    fn reconnect(&mut self) -> Result<()> {
        // Not into a file that replaced the one opened first.
        self.verify()?;
        self.conn = Self::connect(&self.path, self.timeout)?;
        self.verify()
    }

    fn verify(&self) -> Result<()> {
        if file_identity(&self.path)? != self.identity {
            return Err(format!(
                "SQLite {}: the path now names another file (the database was replaced)",
                self.path
            ));
        }
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn award(&mut self) -> Option<&mut dyn crate::award_store::AwardSql> {
        Some(self)
    }
}

// ---------------------------------------------------------------- PostgreSQL

#[cfg(feature = "postgres")]
pub(crate) mod pg {
    use super::{DrainOutcome, Result, Store};
    use crate::stream::{Drain, Win};
    use crate::verify_log::VerifyEntry;
    use postgres::{Client, NoTls};

    const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS wins (
    stream_id TEXT NOT NULL,
    campaign  TEXT NOT NULL,
    user_id   BYTEA NOT NULL,
    prize     TEXT NOT NULL,
    ts_ms     BIGINT NOT NULL,
    draw_seq  BIGINT NOT NULL,
    reqid     BYTEA,
    prize_raw BYTEA,
    code      BYTEA,
    award_state TEXT DEFAULT 'skipped',
    award_attempts BIGINT NOT NULL DEFAULT 0,
    award_at_ms BIGINT,
    award_error TEXT,
    award_owner TEXT,
    award_lease_until_ms BIGINT,
    PRIMARY KEY (campaign, stream_id)
);
CREATE TABLE IF NOT EXISTS stock_drains (
    campaign TEXT NOT NULL,
    seq      BIGINT NOT NULL,
    prize    TEXT NOT NULL,
    sold     BIGINT NOT NULL,
    prize_raw BYTEA,
    PRIMARY KEY (campaign, seq, prize)
);
CREATE TABLE IF NOT EXISTS lottery_verify_log (
    campaign TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    kind     TEXT NOT NULL,
    epoch    BIGINT,
    draw     BIGINT,
    fields   TEXT NOT NULL,
    PRIMARY KEY (campaign, entry_id)
);
";

    pub struct Postgres {
        url: String,
        timeout: std::time::Duration,
        pub(crate) client: Client,
    }

    /// The database's own words: the server's message and SQLSTATE, or the client-side cause
    /// (postgres::Error alone displays as just "db error").
    pub(crate) fn err(what: &str, e: postgres::Error) -> String {
        if let Some(db) = e.as_db_error() {
            let mut s = format!(
                "PostgreSQL {}: {} {}: {} (SQLSTATE {})",
                what,
                db.severity(),
                db.code().code(),
                db.message(),
                db.code().code()
            );
            if let Some(d) = db.detail() {
                s.push_str(&format!("; detail: {}", d));
            }
            return s;
        }
        let mut s = format!("PostgreSQL {}: {}", what, e);
        let mut src = std::error::Error::source(&e);
        while let Some(x) = src {
            s.push_str(&format!(": {}", x));
            src = x.source();
        }
        s
    }

    impl Postgres {
        pub fn open(url: &str, timeout: std::time::Duration) -> Result<Self> {
            Ok(Postgres {
                url: url.to_string(),
                timeout,
                client: Self::connect(url, timeout)?,
            })
        }

        fn connect(url: &str, timeout: std::time::Duration) -> Result<Client> {
            let mut config: postgres::Config = url.parse().map_err(|e| err("URL", e))?;
            config.connect_timeout(timeout);
            let mut client = config.connect(NoTls).map_err(|e| err("connect", e))?;
            // Two writers starting at once may race on CREATE TABLE IF NOT EXISTS
            // (a unique violation on the catalog): try again.
            let mut last = None;
            for _ in 0..5 {
                match client
                    .batch_execute(SCHEMA)
                    .and_then(|()| add_columns(&mut client))
                {
                    Ok(()) => return Ok(client),
                    Err(e) => {
                        last = Some(e);
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                }
            }
            Err(err("create tables", last.unwrap()))
        }
    }

    /// Adds the columns of `ADDED_COLUMNS` that the tables (made by an earlier version) lack.
    /// Looked up first: `ALTER TABLE` takes an exclusive lock on the table even when the column
    /// is there, which would wait behind (and hold up) every reader of `wins` at each start.
    fn add_columns(client: &mut Client) -> std::result::Result<(), postgres::Error> {
        for (table, column, _, ty) in super::ADDED_COLUMNS {
            // The table as an unqualified name resolves (search_path), like the statements do.
            let has: bool = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) \
                     AND attname = $2 AND NOT attisdropped)",
                    &[&table, &column],
                )?
                .get(0);
            if !has {
                // IF NOT EXISTS: another writer may add it meanwhile.
                client.batch_execute(&format!(
                    "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {ty}"
                ))?;
            }
        }
        // The award queue's index, looked up first for the same reason (CREATE INDEX takes a
        // lock that blocks writes to the table).
        let has: bool = client
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&crate::award_store::INDEX_NAME],
            )?
            .get(0);
        if !has {
            client.batch_execute(crate::award_store::PG_INDEX)?;
        }
        Ok(())
    }

    impl Store for Postgres {
        fn write_batch(
            &mut self,
            campaign: &str,
            wins: &[Win],
            verify: &[VerifyEntry],
        ) -> Result<(usize, usize)> {
            let mut tx = self.client.transaction().map_err(|e| err("begin", e))?;
            let st = tx
                .prepare(
                    "INSERT INTO wins (stream_id, campaign, user_id, prize, ts_ms, draw_seq, reqid, prize_raw, code, award_state) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL) ON CONFLICT DO NOTHING",
                )
                .map_err(|e| err("prepare", e))?;
            let mut inserted = 0u64;
            for w in wins {
                inserted += tx
                    .execute(
                        &st,
                        &[
                            &w.id,
                            &campaign,
                            &w.user,
                            &w.prize,
                            &w.ts_ms,
                            &w.draw_seq,
                            &w.reqid,
                            &w.prize_raw,
                            &w.code,
                        ],
                    )
                    .map_err(|e| err("insert wins", e))?;
            }
            let mut verify_inserted = 0u64;
            if !verify.is_empty() {
                let st = tx
                .prepare(
                    "INSERT INTO lottery_verify_log (campaign, entry_id, kind, epoch, draw, fields) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .map_err(|e| err("prepare", e))?;
                for v in verify {
                    verify_inserted += tx
                        .execute(
                            &st,
                            &[&campaign, &v.id, &v.kind, &v.epoch, &v.draw, &v.fields],
                        )
                        .map_err(|e| err("insert lottery_verify_log", e))?;
                }
            }
            tx.commit().map_err(|e| err("commit", e))?;
            Ok((inserted as usize, verify_inserted as usize))
        }

        fn write_drain(&mut self, campaign: &str, drain: &Drain) -> Result<DrainOutcome> {
            if drain.sold.is_empty() {
                return Ok(DrainOutcome::Empty);
            }
            let mut tx = self.client.transaction().map_err(|e| err("begin", e))?;
            let row = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM stock_drains WHERE campaign = $1 AND seq = $2)",
                    &[&campaign, &drain.seq],
                )
                .map_err(|e| err("select drain", e))?;
            if row.get::<_, bool>(0) {
                return Ok(DrainOutcome::AlreadyStored);
            }
            for s in &drain.sold {
                // ON CONFLICT: a concurrent writer storing the same batch is not an error.
                tx.execute(
                    "INSERT INTO stock_drains (campaign, seq, prize, sold, prize_raw) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT DO NOTHING",
                    &[&campaign, &drain.seq, &s.prize, &s.n, &s.prize_raw],
                )
                .map_err(|e| err("insert drain", e))?;
            }
            tx.commit().map_err(|e| err("commit", e))?;
            Ok(DrainOutcome::Stored)
        }

        fn reconnect(&mut self) -> Result<()> {
            if self.client.is_closed()
                || self
                    .client
                    .is_valid(std::time::Duration::from_secs(2))
                    .is_err()
            {
                self.client = Self::connect(&self.url, self.timeout)?;
            }
            Ok(())
        }

        fn kind(&self) -> &'static str {
            "postgres"
        }

        fn award(&mut self) -> Option<&mut dyn crate::award_store::AwardSql> {
            Some(self)
        }
    }
}
