//! `codes add` and `codes count`: the code pools of `PRIZE id weight CODES` prizes, spread over
//! the shards.
//!
//! Each code goes to the shard its bytes route to (the users' routing function over the
//! shard count), so the same code always goes to the same shard: a code given twice, in one
//! file or in two runs, meets the first copy there and the server skips it (a shard refuses a
//! code it holds or has handed out, but cannot see the other shards' codes). The codes of one
//! shard are sent in file order, in batches of `--batch` per `LOTTERY.CODES ADD`.

use std::io::Read;
use std::path::Path;

use lottery_cluster::descriptor::{descriptor_key, Descriptor};
use lottery_cluster::route::shard_index;
use lottery_shards::cluster::Cluster;
use lottery_shards::error::{shard_error, Error, Result};
use lottery_shards::lease::Lease;
use lottery_shards::rebalance::Shards;

use super::{load, recover_first};

/// A code is 1 to 512 bytes (docs/rules.md).
pub const MAX_CODE_LEN: usize = 512;
pub const DEFAULT_BATCH: u64 = 1000;
pub const MAX_BATCH: u64 = 100_000;

/// Sets `stock:<prize>` only while the descriptor exists (a campaign deleted meanwhile is not
/// made again as a one-field hash).
const SET_STOCK: &str = "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end \
     redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1";

/// The codes of a file: one per line, the raw bytes up to the newline, a trailing `\r`
/// stripped, blank lines skipped. Returns the codes and the number of blank lines; a line over
/// 512 bytes is an error naming it (nothing is sent then).
pub fn parse_codes(data: &[u8]) -> std::result::Result<(Vec<&[u8]>, usize), String> {
    let mut codes = Vec::new();
    let mut blank = 0;
    let mut lines = data.split(|&b| b == b'\n').enumerate().peekable();
    while let Some((n, line)) = lines.next() {
        // The empty piece after a final newline is not a line.
        if line.is_empty() && lines.peek().is_none() {
            break;
        }
        let code = line.strip_suffix(b"\r").unwrap_or(line);
        if code.is_empty() {
            blank += 1;
            continue;
        }
        if code.len() > MAX_CODE_LEN {
            return Err(format!(
                "line {}: a code of {} bytes; codes are 1 to {MAX_CODE_LEN} bytes; nothing was \
                 added",
                n + 1,
                code.len()
            ));
        }
        codes.push(code);
    }
    Ok((codes, blank))
}

/// The batches to send: (shard index, codes), each shard's codes in file order, at most
/// `batch` per batch. A batch is sent as soon as it is full, the rest at the end by shard.
pub fn plan<'a>(codes: &[&'a [u8]], shards: u32, batch: usize) -> Vec<(u32, Vec<&'a [u8]>)> {
    let batch = batch.max(1);
    let mut open: Vec<Vec<&[u8]>> = vec![Vec::new(); shards.max(1) as usize];
    let mut out = Vec::new();
    for &code in codes {
        let i = shard_index(code, shards.max(1));
        let b = &mut open[i as usize];
        b.push(code);
        if b.len() == batch {
            out.push((i, std::mem::take(b)));
        }
    }
    for (i, b) in open.into_iter().enumerate() {
        if !b.is_empty() {
            out.push((i as u32, b));
        }
    }
    out
}

fn read_input(file: &Path) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    let r = if file.as_os_str() == "-" {
        std::io::stdin().lock().read_to_end(&mut data).map(|_| ())
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_end(&mut data).map(|_| ()))
    };
    r.map_err(|e| Error::Usage(format!("cannot read {}: {e}", file.display())))?;
    Ok(data)
}

fn known_prize(d: &Descriptor, prize: &str) -> Result<()> {
    if d.stock.contains_key(prize) {
        Ok(())
    } else {
        Err(Error::Campaign(format!("no such prize '{prize}'")))
    }
}

/// `LOTTERY.CODES <shard> <prize> COUNT`.
fn count_on(c: &mut Cluster, i: usize, key: &str, prize: &str) -> Result<i64> {
    c.query(redis::cmd("LOTTERY.CODES").arg(key).arg(prize).arg("COUNT"))
        .map_err(|e| shard_error(e, key).context(format!("shard {i} ({key})")))
}

/// `codes add NAME PRIZE FILE`, under the tool lease (no transfer moves codes meanwhile).
pub fn add(
    c: &mut Cluster,
    name: &str,
    prize: &str,
    file: &Path,
    batch: u64,
    l: &mut Lease,
) -> Result<u8> {
    let d = load(c, name)?;
    known_prize(&d, prize)?;
    let data = read_input(file)?;
    let (codes, blank) = parse_codes(&data).map_err(Error::Usage)?;
    // A prize that is not a code prize (or a server without LOTTERY.CODES) is refused here,
    // before anything is added.
    count_on(c, 0, &d.keys[0], prize)?;
    // Transfers left pending are finished first: codes in flight are in no shard's count.
    recover_first(c, &d)?;
    let mut sent = vec![0u64; d.keys.len()];
    let mut added = vec![0u64; d.keys.len()];
    let result = (|| -> Result<()> {
        for (i, b) in plan(&codes, d.shards, batch as usize) {
            let key = &d.keys[i as usize];
            l.keep(c);
            let mut cmd = redis::cmd("LOTTERY.CODES");
            cmd.arg(key).arg(prize).arg("ADD");
            for code in &b {
                cmd.arg(*code);
            }
            // Idempotent (a code there already is skipped), so a resend after a broken
            // connection adds nothing twice.
            let n: i64 = c.query(&cmd).map_err(|e| {
                shard_error(e, key).context(format!(
                    "shard {i} ({key}); {} codes were added before this batch, running again \
                     with the same file skips them",
                    added.iter().sum::<u64>()
                ))
            })?;
            sent[i as usize] += b.len() as u64;
            added[i as usize] += n.max(0) as u64;
        }
        Ok(())
    })();
    for (i, key) in d.keys.iter().enumerate() {
        println!(
            "shard {i} {key} added {} skipped {}",
            added[i],
            sent[i] - added[i].min(sent[i])
        );
    }
    let (a, s): (u64, u64) = (added.iter().sum(), sent.iter().sum());
    println!(
        "added {a} skipped {} (codes read {}, blank lines {blank})",
        s - a.min(s),
        codes.len()
    );
    // The descriptor counts the codes ever put in, as it counts units: unused + handed out,
    // read from every shard (so a run cut short is made good by the next one).
    let recount = stock_total(c, &d, prize).and_then(|total| {
        c.eval::<i64>(
            SET_STOCK,
            &descriptor_key(name),
            &[format!("stock:{prize}"), total.to_string()],
        )?;
        println!("stock:{prize} = {total}");
        Ok(())
    });
    match (result, recount) {
        (Err(e), Err(r)) => {
            // The first failure is the one to report; the recount is left to the next run.
            eprintln!("lottery-shards: stock:{prize} not recounted: {r}");
            Err(e)
        }
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(())) => Ok(0),
    }
}

/// Unused + handed out over the shards (each shard's two figures from one `LOTTERY.STATS`).
fn stock_total(c: &mut Cluster, d: &Descriptor, prize: &str) -> Result<i64> {
    let mut total: i64 = 0;
    for (i, key) in d.keys.iter().enumerate() {
        let s = c
            .stats(key)
            .map_err(|e| e.context(format!("shard {i} ({key})")))?;
        if let Some(p) = s.prizes.iter().find(|p| p.id == prize) {
            total = total.saturating_add(p.stock.max(0)).saturating_add(p.sold);
        }
    }
    Ok(total)
}

/// `codes count NAME PRIZE`: every shard's unused codes and their sum.
pub fn count(c: &mut Cluster, name: &str, prize: &str) -> Result<u8> {
    let d = load(c, name)?;
    known_prize(&d, prize)?;
    let mut sum: i64 = 0;
    for (i, key) in d.keys.iter().enumerate() {
        let n = count_on(c, i, key, prize)?;
        println!("shard {i} {key} {n}");
        sum = sum.saturating_add(n);
    }
    println!("total {sum}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_to_codes() {
        let (codes, blank) =
            parse_codes(b"A1\r\n\nB2\n\r\n  C3 \n\0\xff\nlast-without-newline").unwrap();
        assert_eq!(
            codes,
            [
                &b"A1"[..],
                b"B2",
                b"  C3 ",
                b"\0\xff",
                b"last-without-newline"
            ]
        );
        assert_eq!(blank, 2);
        // Only one trailing \r is stripped; a final newline makes no blank line.
        assert_eq!(parse_codes(b"x\r\r\n").unwrap().0, [&b"x\r"[..]]);
        assert_eq!(parse_codes(b"x\n").unwrap(), (vec![&b"x"[..]], 0));
        assert_eq!(parse_codes(b"").unwrap(), (vec![], 0));
        assert_eq!(parse_codes(b"\n\n").unwrap(), (vec![], 2));
        let long = [b'a'; MAX_CODE_LEN];
        assert_eq!(parse_codes(&long).unwrap().0.len(), 1);
        let mut over = b"ok\n".to_vec();
        over.extend_from_slice(&[b'a'; MAX_CODE_LEN + 1]);
        over.extend_from_slice(b"\r\n");
        let e = parse_codes(&over).unwrap_err();
        assert!(e.starts_with("line 2: a code of 513 bytes"), "{e}");
    }

    #[test]
    fn batches_by_shard_in_file_order() {
        let owned: Vec<Vec<u8>> = (0..2500)
            .map(|i| format!("code-{i}").into_bytes())
            .collect();
        let codes: Vec<&[u8]> = owned.iter().map(|c| c.as_slice()).collect();
        let p = plan(&codes, 3, 100);
        // Every code once, on the shard it routes to, at most 100 per batch, and each shard's
        // codes in file order.
        let mut seen: Vec<&[u8]> = p.iter().flat_map(|(_, b)| b.iter().copied()).collect();
        assert_eq!(seen.len(), 2500);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 2500);
        for (i, b) in &p {
            assert!(!b.is_empty() && b.len() <= 100);
            assert!(b.iter().all(|c| shard_index(c, 3) == *i));
        }
        for shard in 0..3 {
            let mine: Vec<&[u8]> = p
                .iter()
                .filter(|(i, _)| *i == shard)
                .flat_map(|(_, b)| b.iter().copied())
                .collect();
            let want: Vec<&[u8]> = codes
                .iter()
                .copied()
                .filter(|c| shard_index(c, 3) == shard)
                .collect();
            assert_eq!(mine, want);
            // Spread: each shard near a third.
            assert!((700..=970).contains(&mine.len()), "{}", mine.len());
        }
        // The same code, wherever it is in whichever file, goes to the same shard.
        let again = plan(&[b"code-7", b"zzz", b"code-7"], 3, 1000);
        let owner = shard_index(b"code-7", 3);
        assert!(again
            .iter()
            .filter(|(_, b)| b.contains(&&b"code-7"[..]))
            .all(|(i, _)| *i == owner));
        assert_eq!(plan(&[], 3, 10), vec![]);
        assert_eq!(plan(&[b"a"], 1, 1), vec![(0, vec![&b"a"[..]])]);
    }
}
