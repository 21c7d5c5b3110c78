//! The award delivery queue, kept in the `wins` table itself (the database is the backlog).
//!
//! Columns (added by `store::ADDED_COLUMNS`):
//!   award_state           NULL: to deliver; 'delivered'; 'failed' (a 4xx other than
//!                         408/425/429: not retried by itself); 'skipped': stored before these
//!                         columns existed (never delivered unless set back to NULL)
//!   award_attempts        requests made for this win
//!   award_at_ms           when it was delivered (or failed)
//!   award_error           the last failure, bounded text
//!   award_owner           the delivering thread: `<owner prefix><thread>/<pid>.<start ms>`,
//!                         the prefix `<group len>:<group>:<consumer len>:<consumer>/` naming
//!                         the writer (see `owner_prefix`)
//!   award_lease_until_ms  the owner's claim holds until then (the owner's clock)
//!
//! A delivery thread claims a batch with one UPDATE (the oldest undelivered rows of a campaign
//! whose lease expired or is its own), reads back the rows it claimed (same owner and the
//! exact lease value it just wrote, unique per claim), posts them, and records each outcome.
//! Several writers on one database therefore never post the same win at the same time.
//!
//! Every statement but the claim is the same text in every dialect (`?N` placeholders, each
//! used once and in order, so MySQL's `?` works by dropping the digits). A backend implements
//! `AwardSql`: its dialect, one statement execution, and two row readers.

use crate::store::Result;

/// The partial index that keeps claiming and counting proportional to the backlog.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub const INDEX_NAME: &str = "wins_award_todo";
pub const SQLITE_INDEX: &str = "CREATE INDEX IF NOT EXISTS wins_award_todo \
    ON wins (campaign, ts_ms, stream_id) WHERE award_state IS NULL";
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub const PG_INDEX: &str = "CREATE INDEX IF NOT EXISTS wins_award_todo \
    ON wins (campaign, ts_ms, stream_id) WHERE award_state IS NULL";

/// A statement parameter.
#[derive(Debug, Clone, Copy)]
pub enum P<'a> {
    Text(&'a str),
    Int(i64),
    /// NULL (as text).
    Null,
}

#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    /// MySQL / MariaDB: `?` placeholders; the claim is `UPDATE ... ORDER BY ... LIMIT`. Its
    /// index cannot be partial: `(award_state, campaign, ts_ms, stream_id)` (with key prefix
    /// lengths for TEXT columns) serves the same queries.
    #[allow(dead_code)]
    MySql,
}

/// One claimed win, as the webhook needs it.
#[derive(Debug, Clone)]
pub struct AwardRow {
    pub campaign: String,
    pub stream_id: String,
    pub user: Vec<u8>,
    /// The prize id's exact bytes (`prize_raw` when set, else `prize`).
    pub prize: Vec<u8>,
    pub code: Option<Vec<u8>>,
    pub ts_ms: i64,
    pub draw_seq: i64,
}

/// What a backend provides (SQLite and PostgreSQL below).
pub trait AwardSql {
    fn dialect(&self) -> Dialect;
    /// Runs one statement (its own transaction); the number of rows it changed.
    fn exec(&mut self, sql: &str, params: &[P]) -> Result<u64>;
    /// Runs `ROWS_SQL` (the columns of `AwardRow`, in order).
    fn rows(&mut self, sql: &str, params: &[P]) -> Result<Vec<AwardRow>>;
    /// Runs a query returning (text, integer) pairs.
    fn counts(&mut self, sql: &str, params: &[P]) -> Result<Vec<(String, i64)>>;
    /// This connection only records claims and outcomes: a commit lost to a power failure
    /// only means a win delivered again (same Idempotency-Key), so no fsync per commit.
    fn relax_durability(&mut self) -> Result<()>;
}

/// `?N` placeholders as the dialect writes them.
fn sql(d: Dialect, s: &str) -> String {
    match d {
        Dialect::Sqlite => s.to_string(),
        Dialect::Postgres => s.replace('?', "$"),
        // Each `?N` is used once and in order: drop the numbers.
        Dialect::MySql => {
            let mut out = String::with_capacity(s.len());
            let mut after_q = false;
            for c in s.chars() {
                if after_q && c.is_ascii_digit() {
                    continue;
                }
                after_q = c == '?';
                out.push(c);
            }
            out
        }
    }
}

/// Claims up to `limit` of the oldest undelivered wins of `campaign` whose lease expired (or
/// is `owner`'s own) until `lease_until`, then reads them back, oldest first.
pub fn claim(
    db: &mut dyn AwardSql,
    campaign: &str,
    owner: &str,
    now_ms: i64,
    lease_until: i64,
    limit: usize,
) -> Result<Vec<AwardRow>> {
    let d = db.dialect();
    let limit = limit as i64;
    match d {
        // One statement under SQLite's write lock: atomic.
        Dialect::Sqlite => db.exec(
            "UPDATE wins SET award_owner = ?1, award_lease_until_ms = ?2 WHERE rowid IN \
             (SELECT rowid FROM wins WHERE campaign = ?3 AND award_state IS NULL AND \
             (award_lease_until_ms IS NULL OR award_lease_until_ms < ?4 OR award_owner = ?1) \
             ORDER BY ts_ms, stream_id LIMIT ?5)",
            &[
                P::Text(owner),
                P::Int(lease_until),
                P::Text(campaign),
                P::Int(now_ms),
                P::Int(limit),
            ],
        )?,
        // SKIP LOCKED: concurrent claimers pass over each other's rows; the conditions again
        // outside: a row updated by a concurrent claim meanwhile is re-checked (read
        // committed). The batch is a MATERIALIZED CTE, computed once: as an `IN (sub-select)`
        // a plan may rescan it per row, each rescan skipping the rows this statement just
        // updated and returning others, so one claim could take the whole backlog.
        Dialect::Postgres => db.exec(
            "WITH batch AS MATERIALIZED (SELECT campaign, stream_id FROM wins WHERE \
             campaign = $3 AND award_state IS NULL AND (award_lease_until_ms IS NULL OR \
             award_lease_until_ms < $4 OR award_owner = $1) ORDER BY ts_ms, stream_id \
             LIMIT $5 FOR UPDATE SKIP LOCKED) \
             UPDATE wins SET award_owner = $1, award_lease_until_ms = $2 FROM batch WHERE \
             wins.campaign = batch.campaign AND wins.stream_id = batch.stream_id AND \
             wins.award_state IS NULL AND (wins.award_lease_until_ms IS NULL OR \
             wins.award_lease_until_ms < $4 OR wins.award_owner = $1)",
            &[
                P::Text(owner),
                P::Int(lease_until),
                P::Text(campaign),
                P::Int(now_ms),
                P::Int(limit),
            ],
        )?,
        // One statement, row locks held to the end: atomic (InnoDB).
        Dialect::MySql => db.exec(
            "UPDATE wins SET award_owner = ?, award_lease_until_ms = ? WHERE campaign = ? AND \
             award_state IS NULL AND (award_lease_until_ms IS NULL OR award_lease_until_ms < ? \
             OR award_owner = ?) ORDER BY ts_ms, stream_id LIMIT ?",
            &[
                P::Text(owner),
                P::Int(lease_until),
                P::Text(campaign),
                P::Int(now_ms),
                P::Text(owner),
                P::Int(limit),
            ],
        )?,
    };
    db.rows(
        &sql(
            d,
            "SELECT campaign, stream_id, user_id, prize, prize_raw, code, ts_ms, draw_seq \
             FROM wins WHERE campaign = ?1 AND award_state IS NULL AND award_owner = ?2 AND \
             award_lease_until_ms = ?3 ORDER BY ts_ms, stream_id LIMIT ?4",
        ),
        &[
            P::Text(campaign),
            P::Text(owner),
            P::Int(lease_until),
            P::Int(limit),
        ],
    )
}

/// Extends `owner`'s lease on one win; false when it is no longer `owner`'s (another writer
/// claimed it after the lease expired) or no longer undelivered.
pub fn renew(
    db: &mut dyn AwardSql,
    campaign: &str,
    stream_id: &str,
    owner: &str,
    lease_until: i64,
) -> Result<bool> {
    let d = db.dialect();
    Ok(db.exec(
        &sql(
            d,
            "UPDATE wins SET award_lease_until_ms = ?1 WHERE campaign = ?2 AND stream_id = ?3 \
             AND award_owner = ?4 AND award_state IS NULL",
        ),
        &[
            P::Int(lease_until),
            P::Text(campaign),
            P::Text(stream_id),
            P::Text(owner),
        ],
    )? == 1)
}

/// The final outcome of a win: 'delivered' (error None) or 'failed'.
pub fn finish(
    db: &mut dyn AwardSql,
    campaign: &str,
    stream_id: &str,
    owner: &str,
    now_ms: i64,
    error: Option<&str>,
) -> Result<bool> {
    let d = db.dialect();
    let state = if error.is_some() {
        "failed"
    } else {
        "delivered"
    };
    Ok(db.exec(
        &sql(
            d,
            "UPDATE wins SET award_state = ?1, award_owner = ?2, award_at_ms = ?3, \
             award_attempts = award_attempts + 1, award_error = ?4, award_lease_until_ms = NULL \
             WHERE campaign = ?5 AND stream_id = ?6 AND award_state IS NULL",
        ),
        &[
            P::Text(state),
            P::Text(owner),
            P::Int(now_ms),
            error.map_or(P::Null, P::Text),
            P::Text(campaign),
            P::Text(stream_id),
        ],
    )? == 1)
}

/// A failed attempt that will be retried: counted, its error kept.
pub fn note_retry(
    db: &mut dyn AwardSql,
    campaign: &str,
    stream_id: &str,
    error: &str,
) -> Result<()> {
    let d = db.dialect();
    db.exec(
        &sql(
            d,
            "UPDATE wins SET award_attempts = award_attempts + 1, award_error = ?1 \
             WHERE campaign = ?2 AND stream_id = ?3 AND award_state IS NULL",
        ),
        &[P::Text(error), P::Text(campaign), P::Text(stream_id)],
    )?;
    Ok(())
}

/// What every claim of a writer (group and consumer name) starts with, in every process and
/// thread of it; no other writer's claims start with it (the lengths make it unambiguous).
pub fn owner_prefix(group: &str, consumer: &str) -> String {
    format!("{}:{}:{}:{}/", group.len(), group, consumer.len(), consumer)
}

/// Releases the claims held under `prefix` (this writer's name) by earlier processes, e.g.
/// one killed mid-batch: claimable again at once instead of when their lease ends. Run before
/// this process claims anything; how many. (Each process claims under its own name, so that
/// two processes started under one consumer name never post the same win at the same time.)
pub fn release_claims(db: &mut dyn AwardSql, prefix: &str) -> Result<u64> {
    let d = db.dialect();
    // Characters, not bytes, in every dialect (MySQL's LENGTH counts bytes).
    let len = if d == Dialect::MySql {
        "char_length"
    } else {
        "length"
    };
    db.exec(
        &sql(
            d,
            &format!(
                "UPDATE wins SET award_lease_until_ms = NULL WHERE award_state IS NULL AND \
                 award_lease_until_ms IS NOT NULL AND \
                 substr(award_owner, 1, {}(CAST(?1 AS {}))) = ?2",
                len,
                if d == Dialect::MySql { "CHAR" } else { "TEXT" }
            ),
        ),
        &[P::Text(prefix), P::Text(prefix)],
    )
}

/// Puts a campaign's failed wins back in the queue; how many.
pub fn requeue_failed(db: &mut dyn AwardSql, campaign: &str) -> Result<u64> {
    let d = db.dialect();
    db.exec(
        &sql(
            d,
            "UPDATE wins SET award_state = NULL, award_lease_until_ms = NULL \
             WHERE campaign = ?1 AND award_state = 'failed'",
        ),
        &[P::Text(campaign)],
    )
}

/// Undelivered wins per campaign (the whole table's queue, read through the partial index).
pub fn backlog(db: &mut dyn AwardSql) -> Result<Vec<(String, i64)>> {
    db.counts(
        "SELECT campaign, count(*) FROM wins WHERE award_state IS NULL GROUP BY campaign",
        &[],
    )
}

// ---------------------------------------------------------------- SQLite

mod sqlite_impl {
    use super::*;
    use rusqlite::types::{ToSqlOutput, Value};

    impl rusqlite::ToSql for P<'_> {
        fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
            Ok(match *self {
                P::Text(s) => ToSqlOutput::from(s),
                P::Int(n) => ToSqlOutput::from(n),
                P::Null => ToSqlOutput::Owned(Value::Null),
            })
        }
    }

    fn e(x: rusqlite::Error) -> String {
        format!("SQLite award queue: {}", x)
    }

    impl AwardSql for crate::store::Sqlite {
        fn dialect(&self) -> Dialect {
            Dialect::Sqlite
        }
        fn exec(&mut self, sql: &str, params: &[P]) -> Result<u64> {
            let mut st = self.conn.prepare_cached(sql).map_err(e)?;
            Ok(st
                .execute(rusqlite::params_from_iter(params.iter()))
                .map_err(e)? as u64)
        }
        fn rows(&mut self, sql: &str, params: &[P]) -> Result<Vec<AwardRow>> {
            let mut st = self.conn.prepare_cached(sql).map_err(e)?;
            let rows = st
                .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                    let prize: String = r.get(3)?;
                    let raw: Option<Vec<u8>> = r.get(4)?;
                    Ok(AwardRow {
                        campaign: r.get(0)?,
                        stream_id: r.get(1)?,
                        user: r.get(2)?,
                        prize: raw.unwrap_or_else(|| prize.into_bytes()),
                        code: r.get(5)?,
                        ts_ms: r.get(6)?,
                        draw_seq: r.get(7)?,
                    })
                })
                .map_err(e)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(e)
        }
        fn counts(&mut self, sql: &str, params: &[P]) -> Result<Vec<(String, i64)>> {
            let mut st = self.conn.prepare_cached(sql).map_err(e)?;
            let rows = st
                .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(e)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(e)
        }
        fn relax_durability(&mut self) -> Result<()> {
            // WAL + NORMAL: a commit survives a crash of the process, not of the machine.
            self.conn
                .pragma_update(None, "synchronous", "NORMAL")
                .map_err(e)
        }
    }
}

// ---------------------------------------------------------------- PostgreSQL

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        let s = "SET a = ?1, b = ?2 WHERE c = ?3 AND d = ?10";
        assert_eq!(sql(Dialect::Sqlite, s), s);
        assert_eq!(
            sql(Dialect::Postgres, s),
            "SET a = $1, b = $2 WHERE c = $3 AND d = $10"
        );
        assert_eq!(
            sql(Dialect::MySql, s),
            "SET a = ?, b = ? WHERE c = ? AND d = ?"
        );
    }
}

#[cfg(feature = "postgres")]
mod pg_impl {
    use super::*;
    use crate::store::pg::{err, Postgres};
    use postgres::types::ToSql;

    fn params<'a>(p: &'a [P<'a>], none: &'a Option<&'a str>) -> Vec<&'a (dyn ToSql + Sync)> {
        p.iter()
            .map(|x| match x {
                P::Text(s) => s as &(dyn ToSql + Sync),
                P::Int(n) => n as &(dyn ToSql + Sync),
                P::Null => none as &(dyn ToSql + Sync),
            })
            .collect()
    }

    impl AwardSql for Postgres {
        fn dialect(&self) -> Dialect {
            Dialect::Postgres
        }
        fn exec(&mut self, sql: &str, p: &[P]) -> Result<u64> {
            let none: Option<&str> = None;
            self.client
                .execute(sql, &params(p, &none))
                .map_err(|x| err("award queue", x))
        }
        fn rows(&mut self, sql: &str, p: &[P]) -> Result<Vec<AwardRow>> {
            let none: Option<&str> = None;
            let rows = self
                .client
                .query(sql, &params(p, &none))
                .map_err(|x| err("award queue", x))?;
            // try_get: a column of an unexpected type is an error, not a panic.
            rows.iter()
                .map(|r| {
                    let prize: String = r.try_get(3)?;
                    let raw: Option<Vec<u8>> = r.try_get(4)?;
                    Ok(AwardRow {
                        campaign: r.try_get(0)?,
                        stream_id: r.try_get(1)?,
                        user: r.try_get(2)?,
                        prize: raw.unwrap_or_else(|| prize.into_bytes()),
                        code: r.try_get(5)?,
                        ts_ms: r.try_get(6)?,
                        draw_seq: r.try_get(7)?,
                    })
                })
                .collect::<std::result::Result<Vec<_>, postgres::Error>>()
                .map_err(|x| err("award queue", x))
        }
        fn counts(&mut self, sql: &str, p: &[P]) -> Result<Vec<(String, i64)>> {
            let none: Option<&str> = None;
            let rows = self
                .client
                .query(sql, &params(p, &none))
                .map_err(|x| err("award queue", x))?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<std::result::Result<Vec<_>, postgres::Error>>()
                .map_err(|x| err("award queue", x))
        }
        fn relax_durability(&mut self) -> Result<()> {
            // A commit is acknowledged before its WAL is flushed (only a server crash can
            // lose it; never a half-written row).
            self.client
                .batch_execute("SET synchronous_commit = off")
                .map_err(|x| err("award session", x))
        }
    }
}
