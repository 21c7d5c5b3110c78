//! The descriptor of a sharded campaign and where its shards live (the `LOTTERY.CONFIGURE`
//! options given to them are in [`crate::configure`]). Everything here is pure.
//!
//! Descriptor: the hash `lottery:shards:NAME` with `format=1`, `name`, `shards=N`,
//! `shard:<i>=<shard key>`, `route=fnv1a64-splitmix-mul/1`, `stock:<prize>=<total units ever
//! put in>` (or `INF`) and `created_ms`. lottery-shards writes it; lottery-shards and
//! lottery-writer read it with [`Descriptor::parse`], so both accept the same descriptors.

use std::collections::BTreeMap;

use crate::keyslot::key_slot;
use crate::route::ROUTE_NAME;

pub const PREFIX: &str = "lottery:shards:";
pub const FORMAT: &str = "1";
/// A shard is a key, and more shards than slots buy nothing.
pub const MAX_SHARDS: u32 = 16384;
/// Placement gives up after this many candidate keys for one shard (never reached while the
/// shard's master serves at least one slot in a few hundred).
const MAX_CANDIDATES: u32 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stock {
    Finite(u64),
    Inf,
}

impl Stock {
    pub fn parse(s: &str) -> Option<Stock> {
        if s.eq_ignore_ascii_case("INF") {
            return Some(Stock::Inf);
        }
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        match s.parse::<u64>() {
            Ok(v) if v <= i64::MAX as u64 => Some(Stock::Finite(v)),
            _ => None,
        }
    }

    /// The redis-lottery reply convention: -1 for INF.
    pub fn as_i64(self) -> i64 {
        match self {
            Stock::Finite(v) => v as i64,
            Stock::Inf => -1,
        }
    }
}

impl std::fmt::Display for Stock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stock::Finite(v) => write!(f, "{v}"),
            Stock::Inf => f.write_str("INF"),
        }
    }
}

pub fn validate_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad campaign name {name:?}: 1 to 64 characters of A-Z a-z 0-9 _ . : -"
        ))
    }
}

pub fn descriptor_key(name: &str) -> String {
    format!("{PREFIX}{name}")
}

/// The error for a campaign whose descriptor hash is missing (empty).
pub fn missing(name: &str) -> String {
    format!(
        "no sharded campaign '{name}' (no key {})",
        descriptor_key(name)
    )
}

/// Candidate `k` for shard `i`: `{NAME.i}` for k = 0, else `{NAME.i.k}`.
pub fn shard_key_candidate(name: &str, i: u32, k: u32) -> String {
    if k == 0 {
        format!("{{{name}.{i}}}")
    } else {
        format!("{{{name}.{i}.{k}}}")
    }
}

/// Whether `key` is a key `create` can make for shard `i` of campaign `name`: `{NAME.i}` or
/// `{NAME.i.k}` with k in 1..1000000 written without leading zeros. (Another campaign's shard
/// key, or a key of this one under another index, is not.)
pub fn is_shard_key(name: &str, i: u32, key: &str) -> bool {
    let Some(inner) = key
        .strip_prefix('{')
        .and_then(|k| k.strip_suffix('}'))
        .and_then(|k| k.strip_prefix(name))
        .and_then(|k| k.strip_prefix('.'))
    else {
        return false;
    };
    let index = i.to_string();
    let Some(rest) = inner.strip_prefix(index.as_str()) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(k) = rest.strip_prefix('.') else {
        return false;
    };
    !k.is_empty()
        && !k.starts_with('0')
        && k.len() <= 7
        && k.bytes().all(|b| b.is_ascii_digit())
        && k.parse::<u32>()
            .is_ok_and(|k| (1..MAX_CANDIDATES).contains(&k))
}

/// Shard keys for `n` shards over `masters` masters (sorted by node id): shard i goes to master
/// i % masters, under the first candidate key whose slot that master serves.
pub fn place_shards(
    name: &str,
    n: u32,
    masters: usize,
    owner_of_slot: impl Fn(u16) -> Option<usize>,
) -> Result<Vec<String>, String> {
    if masters == 0 {
        return Err("the cluster has no master serving slots".into());
    }
    let mut keys = Vec::with_capacity(n as usize);
    for i in 0..n {
        let want = i as usize % masters;
        let key = (0..MAX_CANDIDATES)
            .map(|k| shard_key_candidate(name, i, k))
            .find(|key| owner_of_slot(key_slot(key.as_bytes())) == Some(want))
            .ok_or_else(|| format!("no key for shard {i} on master {want}"))?;
        keys.push(key);
    }
    Ok(keys)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub name: String,
    pub shards: u32,
    pub keys: Vec<String>,
    /// Total units ever put in, per prize (the campaign's whole stock, all shards).
    pub stock: BTreeMap<String, Stock>,
    pub created_ms: u64,
}

impl Descriptor {
    /// Parses and validates the fields of the descriptor hash: `format`, `route` and `name`
    /// as written, `shards` in 1..=16384 with exactly the fields `shard:0`..`shard:<N-1>`,
    /// each shard key exactly of the form [`is_shard_key`] for that name and index (so no
    /// duplicates and no other campaign's key), each `stock:<prize>` a stock.
    pub fn parse(name: &str, fields: &[(String, String)]) -> Result<Descriptor, String> {
        validate_name(name)?;
        let map: BTreeMap<&str, &str> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let get = |f: &str| {
            map.get(f)
                .copied()
                .ok_or_else(|| format!("descriptor of {name:?} has no {f} field"))
        };
        let format = get("format")?;
        if format != FORMAT {
            return Err(format!(
                "descriptor of {name:?} has format {format:?}; this tool reads format {FORMAT}"
            ));
        }
        let route = get("route")?;
        if route != ROUTE_NAME {
            return Err(format!(
                "descriptor of {name:?} uses route {route:?}; this tool knows {ROUTE_NAME}"
            ));
        }
        let stored = get("name")?;
        if stored != name {
            return Err(format!("descriptor of {name:?} names campaign {stored:?}"));
        }
        let shards = get("shards")?;
        let shards = shards
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_SHARDS).contains(n))
            .ok_or_else(|| format!("descriptor of {name:?} has a bad shard count {shards:?}"))?;
        let mut keys: Vec<String> = Vec::with_capacity(shards as usize);
        for i in 0..shards {
            let key = get(&format!("shard:{i}"))?;
            if key.is_empty() {
                return Err(format!("descriptor of {name:?} has an empty shard:{i}"));
            }
            if keys.iter().any(|k| k == key) {
                return Err(format!(
                    "descriptor of {name:?} lists shard key {key:?} twice"
                ));
            }
            if !is_shard_key(name, i, key) {
                return Err(format!(
                    "descriptor of {name:?} has shard:{i} = {key:?}, which is not a key of \
                     shard {i} of {name:?} (expected {} or {{{name}.{i}.<k>}})",
                    shard_key_candidate(name, i, 0)
                ));
            }
            keys.push(key.to_string());
        }
        // No shard field beyond the count (a shard count lowered by hand would leave shards
        // and their stock out of every reading), and none spelled another way.
        for f in map.keys().filter(|f| f.starts_with("shard:")) {
            let ok = f["shard:".len()..]
                .parse::<u32>()
                .is_ok_and(|i| i < shards && f == &format!("shard:{i}"));
            if !ok {
                return Err(format!(
                    "descriptor of {name:?} has a field {f:?} that does not fit shards = {shards}"
                ));
            }
        }
        let mut stock = BTreeMap::new();
        for (k, v) in &map {
            if let Some(prize) = k.strip_prefix("stock:") {
                let s = Stock::parse(v)
                    .ok_or_else(|| format!("descriptor of {name:?}: bad {k} {v:?}"))?;
                stock.insert(prize.to_string(), s);
            }
        }
        let created_ms = map
            .get("created_ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok(Descriptor {
            name: name.to_string(),
            shards,
            keys,
            stock,
            created_ms,
        })
    }

    /// The hash fields, in the order `describe` prints them.
    pub fn fields(&self) -> Vec<(String, String)> {
        let mut f = vec![
            ("format".to_string(), FORMAT.to_string()),
            ("name".to_string(), self.name.clone()),
            ("shards".to_string(), self.shards.to_string()),
            ("route".to_string(), ROUTE_NAME.to_string()),
            ("created_ms".to_string(), self.created_ms.to_string()),
        ];
        for (i, k) in self.keys.iter().enumerate() {
            f.push((format!("shard:{i}"), k.clone()));
        }
        for (p, s) in &self.stock {
            f.push((format!("stock:{p}"), s.to_string()));
        }
        f
    }

    pub fn shard_of(&self, user: &[u8]) -> (u32, &str) {
        let i = crate::route::shard_index(user, self.shards);
        (i, &self.keys[i as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("spring-2026:a_b.c").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name(&"a".repeat(65)).is_err());
        assert!(validate_name("a{b}").is_err());
        assert!(validate_name("a b").is_err());
        assert_eq!(descriptor_key("x"), "lottery:shards:x");
        assert_eq!(
            missing("x"),
            "no sharded campaign 'x' (no key lottery:shards:x)"
        );
        assert_eq!(shard_key_candidate("x", 2, 0), "{x.2}");
        assert_eq!(shard_key_candidate("x", 2, 5), "{x.2.5}");
    }

    #[test]
    fn placement_follows_masters() {
        // Three masters with thirds of the slots.
        let owner = |s: u16| Some(usize::from(s) * 3 / 16384);
        let keys = place_shards("spring", 7, 3, owner).unwrap();
        assert_eq!(keys.len(), 7);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(owner(key_slot(k.as_bytes())), Some(i % 3), "{k}");
            assert!(k.starts_with(&format!("{{spring.{i}")));
        }
        // One master: every shard keeps its plain key.
        let keys = place_shards("spring", 3, 1, |_| Some(0)).unwrap();
        assert_eq!(keys, ["{spring.0}", "{spring.1}", "{spring.2}"]);
        assert!(place_shards("spring", 3, 0, |_| None).is_err());
        assert!(place_shards("spring", 2, 2, |_| Some(0)).is_err());
    }

    fn fields(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut f: Vec<(String, String)> = [
            ("format", "1"),
            ("name", "spring"),
            ("shards", "2"),
            ("route", ROUTE_NAME),
            ("shard:0", "{spring.0}"),
            ("shard:1", "{spring.1.4}"),
            ("stock:phone", "10"),
            ("stock:points", "INF"),
            ("created_ms", "123"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            f.retain(|(fk, _)| fk != k);
            f.push((k.to_string(), v.to_string()));
        }
        f
    }

    #[test]
    fn descriptor_round_trip() {
        let d = Descriptor::parse("spring", &fields(&[])).unwrap();
        assert_eq!(d.shards, 2);
        assert_eq!(d.keys, ["{spring.0}", "{spring.1.4}"]);
        assert_eq!(d.stock["phone"], Stock::Finite(10));
        assert_eq!(d.stock["points"], Stock::Inf);
        assert_eq!(d.created_ms, 123);
        assert_eq!(Descriptor::parse("spring", &d.fields()).unwrap(), d);
        let (i, k) = d.shard_of(b"alice");
        assert_eq!(k, d.keys[i as usize]);
    }

    #[test]
    fn descriptor_rejects() {
        for bad in [
            ("format", "2"),
            ("route", "crc/1"),
            ("name", "other"),
            ("shards", "3"),
            ("shards", "0"),
            ("shards", "x"),
            ("stock:phone", "-1"),
            ("shard:1", ""),
            ("shard:1", "{spring.0}"),
            // another campaign's key, another index's key, odd spellings
            ("shard:1", "{autumn.1}"),
            ("shard:1", "{spring.2}"),
            ("shard:1", "{spring.1.0}"),
            ("shard:1", "{spring.1.04}"),
            ("shard:1", "{spring.1.1000000}"),
            ("shard:1", "{spring.1.x}"),
            ("shard:1", "{spring.1}x"),
            ("shard:1", "spring.1"),
            ("shard:1", "{spring.1.}"),
            ("shard:1", "{spring.01}"),
            // count inconsistent with the shard fields
            ("shard:2", "{spring.2}"),
            ("shard:01", "{spring.1}"),
            ("shards", "1"),
        ] {
            assert!(
                Descriptor::parse("spring", &fields(&[bad])).is_err(),
                "{bad:?}"
            );
        }
        assert!(Descriptor::parse("spring", &[]).is_err());
        assert!(Descriptor::parse("a b", &fields(&[("name", "a b")])).is_err());
    }

    #[test]
    fn shard_key_forms() {
        assert!(is_shard_key("spring", 0, "{spring.0}"));
        assert!(is_shard_key("spring", 12, "{spring.12.999999}"));
        assert!(is_shard_key("a.b", 3, "{a.b.3.7}"));
        for bad in [
            "{spring.0.0}",
            "{spring.0.1000000}",
            "{spring.00}",
            "{spring.0.01}",
            "{spring.1}",
            "{spring0}",
            "{spring.0",
            "spring.0}",
            "{other.0}",
            "{spring.0.1.2}",
            "",
        ] {
            assert!(!is_shard_key("spring", 0, bad), "{bad:?}");
        }
        // Every key placement makes has the form.
        let keys = place_shards("c-1", 20, 3, |s| Some(usize::from(s) * 3 / 16384)).unwrap();
        for (i, k) in keys.iter().enumerate() {
            assert!(is_shard_key("c-1", i as u32, k), "{k}");
        }
    }
}
