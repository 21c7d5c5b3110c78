//! The database side: SQLite (default) and PostgreSQL, behind one trait.
//!
//! Schema (created if missing):
//!   wins(stream_id, campaign, user_id, prize, ts_ms, draw_seq, reqid,
//!        primary key (campaign, stream_id))
//!   stock_drains(campaign, seq, prize, sold, primary key (campaign, seq, prize))
//! `user_id` and `reqid` are BLOB / bytea: the exact bytes the client gave Redis.

use crate::stream::{Drain, Win};

pub type Result<T> = std::result::Result<T, String>;

/// How a drain batch was recorded.
#[derive(Debug, PartialEq, Eq)]
pub enum DrainOutcome {
    Stored,
    AlreadyStored,
    Empty,
}

pub trait Store: Send {
    /// Inserts the wins in one transaction; returns how many rows were new
    /// (the others were already there: redeliveries).
    fn write_wins(&mut self, campaign: &str, wins: &[Win]) -> Result<usize>;
    /// Records one drain batch in one transaction, unless its seq is already stored.
    fn write_drain(&mut self, campaign: &str, drain: &Drain) -> Result<DrainOutcome>;
    /// Makes sure the connection is usable again after an error (reconnects if needed).
    fn reconnect(&mut self) -> Result<()>;
    fn kind(&self) -> &'static str;
}

pub enum DbUrl {
    Sqlite(String),
    #[allow(dead_code)]
    Postgres(String),
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
    Err(format!(
        "unsupported --database {:?}: use sqlite:PATH or postgres://USER@HOST:PORT/DB",
        url
    ))
}

pub fn open(url: &str) -> Result<Box<dyn Store>> {
    match parse_url(url)? {
        DbUrl::Sqlite(path) => Ok(Box::new(Sqlite::open(&path)?)),
        #[cfg(feature = "postgres")]
        DbUrl::Postgres(u) => Ok(Box::new(pg::Postgres::open(&u)?)),
        #[cfg(not(feature = "postgres"))]
        DbUrl::Postgres(_) => {
            Err("this lottery-writer was built without the postgres feature".into())
        }
    }
}

// ---------------------------------------------------------------- SQLite

pub struct Sqlite {
    path: String,
    conn: rusqlite::Connection,
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
    PRIMARY KEY (campaign, stream_id)
);
CREATE TABLE IF NOT EXISTS stock_drains (
    campaign TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    prize    TEXT NOT NULL,
    sold     INTEGER NOT NULL,
    PRIMARY KEY (campaign, seq, prize)
);
";

impl Sqlite {
    pub fn open(path: &str) -> Result<Self> {
        if path.is_empty() {
            return Err("empty SQLite path in --database".into());
        }
        let conn = Self::connect(path)?;
        Ok(Sqlite {
            path: path.to_string(),
            conn,
        })
    }

    fn connect(path: &str) -> Result<rusqlite::Connection> {
        let e = |e: rusqlite::Error| format!("SQLite {}: {}", path, e);
        let conn = rusqlite::Connection::open(path).map_err(e)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(e)?;
        // WAL lets several writers and readers share the file; synchronous stays FULL so a
        // committed batch survives a power loss before its XACK.
        conn.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(e)?;
        conn.execute_batch(SQLITE_SCHEMA).map_err(e)?;
        Ok(conn)
    }
}

impl Store for Sqlite {
    fn write_wins(&mut self, campaign: &str, wins: &[Win]) -> Result<usize> {
        let e = |e: rusqlite::Error| format!("SQLite write of wins: {}", e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(e)?;
        let mut inserted = 0;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO wins (stream_id, campaign, user_id, prize, ts_ms, draw_seq, reqid) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(e)?;
            for w in wins {
                inserted += st
                    .execute(rusqlite::params![
                        w.id, campaign, w.user, w.prize, w.ts_ms, w.draw_seq, w.reqid
                    ])
                    .map_err(e)?;
            }
        }
        tx.commit().map_err(e)?;
        Ok(inserted)
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
        for (prize, sold) in &drain.sold {
            tx.execute(
                "INSERT INTO stock_drains (campaign, seq, prize, sold) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![campaign, drain.seq, prize, sold],
            )
            .map_err(e)?;
        }
        tx.commit().map_err(e)?;
        Ok(DrainOutcome::Stored)
    }

    fn reconnect(&mut self) -> Result<()> {
        self.conn = Self::connect(&self.path)?;
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}

// ---------------------------------------------------------------- PostgreSQL

#[cfg(feature = "postgres")]
mod pg {
    use super::{DrainOutcome, Result, Store};
    use crate::stream::{Drain, Win};
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
    PRIMARY KEY (campaign, stream_id)
);
CREATE TABLE IF NOT EXISTS stock_drains (
    campaign TEXT NOT NULL,
    seq      BIGINT NOT NULL,
    prize    TEXT NOT NULL,
    sold     BIGINT NOT NULL,
    PRIMARY KEY (campaign, seq, prize)
);
";

    pub struct Postgres {
        url: String,
        client: Client,
    }

    fn err(what: &str, e: postgres::Error) -> String {
        format!("PostgreSQL {}: {}", what, e)
    }

    impl Postgres {
        pub fn open(url: &str) -> Result<Self> {
            Ok(Postgres {
                url: url.to_string(),
                client: Self::connect(url)?,
            })
        }

        fn connect(url: &str) -> Result<Client> {
            let mut client = Client::connect(url, NoTls).map_err(|e| err("connect", e))?;
            // Two writers starting at once may race on CREATE TABLE IF NOT EXISTS
            // (a unique violation on the catalog): try again.
            let mut last = None;
            for _ in 0..5 {
                match client.batch_execute(SCHEMA) {
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

    impl Store for Postgres {
        fn write_wins(&mut self, campaign: &str, wins: &[Win]) -> Result<usize> {
            let mut tx = self.client.transaction().map_err(|e| err("begin", e))?;
            let st = tx
                .prepare(
                    "INSERT INTO wins (stream_id, campaign, user_id, prize, ts_ms, draw_seq, reqid) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
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
                        ],
                    )
                    .map_err(|e| err("insert wins", e))?;
            }
            tx.commit().map_err(|e| err("commit", e))?;
            Ok(inserted as usize)
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
            for (prize, sold) in &drain.sold {
                // ON CONFLICT: a concurrent writer storing the same batch is not an error.
                tx.execute(
                    "INSERT INTO stock_drains (campaign, seq, prize, sold) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT DO NOTHING",
                    &[&campaign, &drain.seq, prize, sold],
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
                self.client = Self::connect(&self.url)?;
            }
            Ok(())
        }

        fn kind(&self) -> &'static str {
            "postgres"
        }
    }
}
