//! Structured log lines on stderr: `ts=... level=... event=... key=value ...`.
//! Values that are not plain tokens are quoted with Rust string escapes.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// A value rendered as a token, or quoted when it has spaces, quotes, `=` or is empty.
pub fn v(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'=' && b != b'\\');
    if plain {
        s.to_string()
    } else {
        format!("{:?}", s)
    }
}

/// A URL with its password hidden, for the logs: the one in the user info, and the value of
/// a `password=` query parameter (MySQL URLs take one). The user info is taken to end at the
/// last `@`: a password may hold `?`, `#`, `/` or `@` left unencoded by mistake (the URL is
/// logged before it is parsed). An `@` in a query hides more than the password, never less.
pub fn mask_url(url: &str) -> String {
    // redis://user:secret@host -> redis://user:***@host
    let (mut out, rest) = match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let auth = &url[scheme_end + 3..at];
            match auth.find(':') {
                Some(colon) => (
                    format!("{}{}:***", &url[..scheme_end + 3], &auth[..colon]),
                    &url[at..],
                ),
                None => (url[..at].to_string(), &url[at..]),
            }
        }
        _ => (String::new(), url),
    };
    let (base, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    out.push_str(base);
    if let Some(q) = query {
        let q: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _))
                    if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("pass") =>
                {
                    format!("{}=***", k)
                }
                _ => kv.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&q.join("&"));
    }
    out
}

fn now_utc() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let ms = d.subsec_millis();
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    // civil_from_days (Howard Hinnant)
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let dd = doy - (153 * mp + 2) / 5 + 1;
    let mm = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mm <= 2 { y + 1 } else { y };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        y,
        mm,
        dd,
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        ms
    )
}

thread_local! {
    /// The shard this thread consumes (sharded mode): every line it logs carries `shard=KEY`.
    static SHARD: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Tags this thread's log lines with `shard=KEY` (None: no tag).
pub fn set_shard(key: Option<&str>) {
    SHARD.with(|s| *s.borrow_mut() = key.map(v));
}

pub fn line(level: &str, event: &str, fields: &[(&str, String)]) {
    let mut s = String::with_capacity(128);
    let _ = write!(s, "ts={} level={} event={}", now_utc(), level, event);
    SHARD.with(|k| {
        if let Some(k) = k.borrow().as_ref() {
            let _ = write!(s, " shard={}", k);
        }
    });
    for (k, val) in fields {
        let _ = write!(s, " {}={}", k, val);
    }
    eprintln!("{}", s);
}

#[macro_export]
macro_rules! log {
    ($level:expr, $event:expr $(, $k:ident = $val:expr)* $(,)?) => {
        $crate::log::line($level, $event, &[$((stringify!($k), $crate::log::v(&$val.to_string()))),*])
    };
}

#[cfg(test)]
mod tests {
    use super::mask_url;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(mask_url("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(mask_url("redis://h:1"), "redis://h:1");
        assert_eq!(mask_url("mysql://u:p@ss@h/db"), "mysql://u:***@h/db");
        assert_eq!(
            mask_url("mysql://u@h/db?prefer_socket=false&password=secret"),
            "mysql://u@h/db?prefer_socket=false&password=***"
        );
        assert_eq!(mask_url("sqlite:wins.db"), "sqlite:wins.db");
    }

    /// A password with reserved characters left unencoded (`?`, `#`, `/`, `@`): nothing of it
    /// shows (the URL is logged before it is parsed, and may not parse at all).
    #[test]
    fn unencoded_reserved_characters_in_a_password_are_masked() {
        for (url, secret) in [
            ("mysql://writer:Secr3t?Pass@h:3306/db", "Secr3t?Pass"),
            ("mysql://writer:Sec?r3t#P/a@ss@h/db", "Sec?r3t#P/a@ss"),
            ("redis://u:Xq#Zk@h:1", "Xq#Zk"),
            ("postgres://u:Xq/Zk?Wv=Yj@h/db", "Xq/Zk?Wv=Yj"),
        ] {
            let m = mask_url(url);
            for part in secret.split(['?', '#', '/', '@', '=']) {
                assert!(!m.contains(part), "{url} -> {m}");
            }
            assert!(
                m.ends_with("@h:3306/db") || m.contains(":***@h"),
                "{url} -> {m}"
            );
        }
        assert_eq!(
            mask_url("mysql://u:p?w@h/db?password=secret"),
            "mysql://u:***@h/db?password=***"
        );
    }
}
