//! Flow control and anti-abuse, decided inside the draw:
//!
//! - `RATE per-second [BURST n]`: a campaign-wide rate limit (GCRA, the token bucket as one
//!   number: the theoretical arrival time). Draws over it get `BUSY` and consume nothing.
//! - `ADMIT p1 [p2]`: multi-round probabilistic admission. A user's first try passes with
//!   probability p1; a user turned away is remembered and passes with p2 on later tries.
//!   Turned-away draws get `RETRY` and consume nothing.
//! - `CLIENTLIMIT n window-ms` with `DRAW ... CLIENT id`: at most n requests per client (an
//!   IP, a device) per fixed window; over it, `LIMITED`. `PENALTY ms` then bans the client and
//!   the user for that long (the "little black room").
//! - `PACE prize LINEAR`: a prize's units are released evenly over the WINDOW.
//!
//! Everything here is plain arithmetic on values passed in; the state changes a draw makes
//! travel to replicas as a `Gate` inside its effect, as absolute values.
//!
//! Memory a hostile client can grow here is reclaimed as draws go by: a client record goes
//! once it carries nothing (no penalty running, its CLIENTLIMIT window over or CLIENTLIMIT
//! off), a user remembered by ADMIT once `ADMIT_MEMORY_MS` have passed since it was turned
//! away (or at once under ADMIT OFF). Each draw or refusal walks a few slots of each map
//! (`SWEEP_SLOTS`, removing at most `SWEEP_MAX`) from a cursor kept on the master, and the
//! keys it removed travel in its effect (`Swept`), so replicas and the AOF remove exactly
//! those.

use super::codec::{DResult, DecodeError, Reader, Writer};

/// How long ADMIT remembers a user it turned away: a day from the refusal. Later tries
/// inside it pass with p2; after it, the user is a first-timer again (p1).
pub const ADMIT_MEMORY_MS: i64 = 86_400_000;
/// Slots of the client map, and of the ADMIT map, looked at per draw or refusal.
pub const SWEEP_SLOTS: usize = 32;
/// Entries of each map removed per draw or refusal at most (bounds the effect's size).
pub const SWEEP_MAX: usize = 16;

/// Probabilities are parts per million: exact, and exactly reproducible.
pub const PPM: u32 = 1_000_000;
/// The largest RATE: one draw per nanosecond.
pub const MAX_RATE: u64 = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_sec: u64,
    /// Draws that may arrive at once (the bucket's size), >= 1.
    pub burst: u64,
}

impl Rate {
    /// Nanoseconds between two draws at the steady rate.
    pub fn interval_ns(&self) -> u64 {
        1_000_000_000 / self.per_sec.clamp(1, MAX_RATE)
    }

    /// GCRA at `now_ms` with the theoretical arrival time `tat_ns`: Ok(new tat) when a draw
    /// may go now, Err(ms to wait) when it is over the limit.
    pub fn admit(&self, tat_ns: u64, now_ms: i64) -> Result<u64, i64> {
        let t = self.interval_ns();
        let tau = t.saturating_mul(self.burst.max(1) - 1);
        let now_ns = u64::try_from(now_ms.max(0))
            .unwrap_or(0)
            .saturating_mul(1_000_000);
        let tat = tat_ns.max(now_ns);
        if tat - now_ns > tau {
            let wait_ns = tat - now_ns - tau;
            return Err(i64::try_from(wait_ns.div_ceil(1_000_000)).unwrap_or(i64::MAX));
        }
        Ok(tat.saturating_add(t))
    }
}

/// One client's request window and penalty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, packed(4))]
pub struct ClientState {
    /// Start of the current window (Unix ms).
    pub window_start: i64,
    /// Penalty until (Unix ms); 0 = none.
    pub banned_until: i64,
    /// Requests in the current window.
    pub count: u32,
}

impl ClientState {
    /// True when the record holds nothing a later request could see at `now`: no penalty
    /// running, and its window over (or no CLIENTLIMIT). `client_check` treats such a
    /// record exactly as a missing one, so it can be dropped.
    pub fn idle(&self, limit: Option<(u32, u64)>, now: i64) -> bool {
        let (banned, start) = (self.banned_until, self.window_start);
        if banned > now {
            return false;
        }
        match limit {
            None => true,
            Some((_, window)) => {
                let window = i64::try_from(window).unwrap_or(i64::MAX);
                now.saturating_sub(start) >= window || now < start
            }
        }
    }
}

/// Whether ADMIT still remembers a user turned away at `since`, at `now`.
pub fn admit_remembers(since: i64, now: i64) -> bool {
    now.saturating_sub(since) < ADMIT_MEMORY_MS
}

/// Keys a draw's sweep removed (clients, ADMIT memory); carried in its effect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub clients: Vec<u128>,
    pub waiting: Vec<u128>,
}

impl Swept {
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty() && self.waiting.is_empty()
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        for keys in [&self.clients, &self.waiting] {
            w.u8(keys.len().min(usize::from(u8::MAX)) as u8);
            for &k in keys.iter().take(usize::from(u8::MAX)) {
                w.u128(k);
            }
        }
    }

    pub(crate) fn decode(r: &mut Reader) -> DResult<Swept> {
        let mut s = Swept::default();
        for keys in [&mut s.clients, &mut s.waiting] {
            let n = r.u8()?;
            for _ in 0..n {
                let k = r.u128()?;
                if k == 0 {
                    return Err(DecodeError("zero swept key"));
                }
                keys.push(k);
            }
        }
        Ok(s)
    }
}

/// A client key and its state, as encoded everywhere (effects, gates, chunks).
pub(crate) fn write_client(w: &mut Writer, key: u128, s: &ClientState) {
    w.u128(key);
    w.i64(s.window_start);
    w.i64(s.banned_until);
    w.u32(s.count);
}

pub(crate) fn read_client(r: &mut Reader) -> DResult<(u128, ClientState)> {
    let key = r.u128()?;
    let s = ClientState {
        window_start: r.i64()?,
        banned_until: r.i64()?,
        count: r.u32()?,
    };
    if key == 0 {
        return Err(DecodeError("zero client key"));
    }
    Ok((key, s))
}

/// The client check of one request: the client's new state, and whether it is refused
/// (`Some(wait ms)`). `limit` = (n, window ms).
pub fn client_check(
    st: ClientState,
    limit: Option<(u32, u64)>,
    penalty_ms: u64,
    now: i64,
) -> (ClientState, Option<i64>) {
    let mut s = st;
    let banned = s.banned_until;
    if banned > now {
        return (s, Some(banned - now));
    }
    let Some((n, window)) = limit else {
        return (s, None);
    };
    let window = i64::try_from(window).unwrap_or(i64::MAX);
    let start = s.window_start;
    if now.saturating_sub(start) >= window || now < start {
        s.window_start = now;
        s.count = 0;
    }
    s.count = s.count.saturating_add(1);
    if s.count <= n {
        return (s, None);
    }
    if penalty_ms > 0 {
        let until = now.saturating_add(i64::try_from(penalty_ms).unwrap_or(i64::MAX));
        s.banned_until = until;
        return (s, Some(until - now));
    }
    let end = s.window_start.saturating_add(window);
    (s, Some(end.saturating_sub(now).max(1)))
}

/// Units of a paced prize that may have been won by `now`: `total * elapsed / duration`
/// (rounded down) over the window `[start, end)`; all of them from `end` on.
pub fn paced_allowance(total: u64, window: (i64, i64), now: i64) -> u64 {
    let (start, end) = window;
    if now < start {
        return 0;
    }
    if now >= end {
        return total;
    }
    let elapsed = (now - start) as u128;
    let duration = (end - start) as u128;
    (u128::from(total) * elapsed / duration) as u64
}

/// Parses a probability: `0`, `1`, or a decimal `0.d` / `1.0` with at most 6 decimals.
pub fn parse_ppm(b: &[u8]) -> Option<u32> {
    let (int, frac) = match b.iter().position(|&c| c == b'.') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b""[..]),
    };
    if int.len() != 1 || frac.len() > 6 || (b.contains(&b'.') && frac.is_empty()) {
        return None;
    }
    if !int[0].is_ascii_digit() || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v = u32::from(int[0] - b'0') * PPM;
    let mut scale = PPM / 10;
    for &d in frac {
        v += u32::from(d - b'0') * scale;
        scale /= 10;
    }
    (v <= PPM).then_some(v)
}

/// A ppm value as the decimal it came from (`0.25`, `1`, `0.000001`).
pub fn ppm_text(v: u32) -> String {
    if v >= PPM {
        return "1".into();
    }
    if v == 0 {
        return "0".into();
    }
    let s = format!("0.{v:06}");
    s.trim_end_matches('0').to_string()
}

/// State changes a draw makes besides the chance it consumes: the rate limiter, a client's
/// window or penalty, the user's admission memory, a penalty ban of the user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gate {
    /// The user `waiting` and `user_ban` are about (0 when neither is set).
    pub user: u128,
    pub tat_ns: Option<u64>,
    pub client: Option<(u128, ClientState)>,
    /// Some(true): the user was turned away (remembered); Some(false): admitted (forgotten).
    pub waiting: Option<bool>,
    /// Penalty ban of the user until (Unix ms).
    pub user_ban: Option<i64>,
}

impl Gate {
    /// True when it changes nothing (the user field alone changes nothing).
    pub fn is_empty(&self) -> bool {
        self.tat_ns.is_none()
            && self.client.is_none()
            && self.waiting.is_none()
            && self.user_ban.is_none()
    }

    /// The same changes, with `user` cleared unless a change needs it (what is encoded).
    pub fn without_user(&self) -> Gate {
        let mut g = *self;
        if g.waiting.is_none() && g.user_ban.is_none() {
            g.user = 0;
        }
        g
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        let flags = u8::from(self.tat_ns.is_some())
            | u8::from(self.client.is_some()) << 1
            | u8::from(self.waiting.is_some()) << 2
            | u8::from(self.waiting == Some(true)) << 3
            | u8::from(self.user_ban.is_some()) << 4;
        w.u8(flags);
        if let Some(t) = self.tat_ns {
            w.u64(t);
        }
        if let Some((k, s)) = self.client {
            write_client(w, k, &s);
        }
        if let Some(u) = self.user_ban {
            w.i64(u);
        }
        if self.waiting.is_some() || self.user_ban.is_some() {
            w.u128(self.user);
        }
    }

    pub(crate) fn decode(r: &mut Reader) -> DResult<Gate> {
        let flags = r.u8()?;
        if flags & !0b1_1111 != 0 || (flags & 0b1000 != 0 && flags & 0b100 == 0) {
            return Err(DecodeError("bad gate flags"));
        }
        let tat_ns = if flags & 1 != 0 { Some(r.u64()?) } else { None };
        let client = if flags & 2 != 0 {
            Some(read_client(r)?)
        } else {
            None
        };
        let waiting = (flags & 4 != 0).then_some(flags & 8 != 0);
        let user_ban = if flags & 16 != 0 {
            Some(r.i64()?)
        } else {
            None
        };
        let user = if waiting.is_some() || user_ban.is_some() {
            let u = r.u128()?;
            if u == 0 {
                return Err(DecodeError("zero user key"));
            }
            u
        } else {
            0
        };
        Ok(Gate {
            user,
            tat_ns,
            client,
            waiting,
            user_ban,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_admits_the_burst_then_the_rate() {
        let r = Rate {
            per_sec: 10,
            burst: 5,
        };
        let mut tat = 0;
        let now = 1_000;
        for _ in 0..5 {
            tat = r.admit(tat, now).unwrap();
        }
        assert_eq!(
            r.admit(tat, now),
            Err(100),
            "one interval (100 ms) to the next token"
        );
        assert!(r.admit(tat, now + 99).is_err());
        tat = r.admit(tat, now + 100).unwrap();
        assert!(r.admit(tat, now + 100).is_err());
        // Over a long run: at most burst + rate * seconds.
        let (mut tat, mut ok) = (0u64, 0);
        for ms in 0..10_000i64 {
            for _ in 0..3 {
                if let Ok(t) = r.admit(tat, ms) {
                    tat = t;
                    ok += 1;
                }
            }
        }
        assert_eq!(
            ok,
            5 + 10 * 10 - 1,
            "burst + rate x 10 s (the last token is at 10 s)"
        );
    }

    #[test]
    fn clients_window_and_penalty() {
        let lim = Some((3, 1000));
        let mut s = ClientState::default();
        for i in 0..3 {
            let (n, refused) = client_check(s, lim, 0, 5_000 + i);
            assert_eq!(refused, None);
            s = n;
        }
        let (n, refused) = client_check(s, lim, 0, 5_500);
        assert_eq!(refused, Some(500), "until the window ends");
        let (n, refused) = client_check(n, lim, 0, 6_000);
        assert_eq!((refused, n.count), (None, 1), "a new window");
        let (p, refused) = client_check(n, Some((1, 1000)), 60_000, 6_001);
        assert_eq!(refused, Some(60_000));
        let (_, refused) = client_check(p, Some((1, 1000)), 60_000, 50_000);
        assert_eq!(refused, Some(16_001), "still in the penalty box");
        assert_eq!(client_check(p, None, 0, 70_000).1, None);
    }

    #[test]
    fn pacing_allowance() {
        let w = (1_000, 11_000);
        assert_eq!(paced_allowance(100, w, 999), 0);
        assert_eq!(paced_allowance(100, w, 1_000), 0);
        assert_eq!(paced_allowance(100, w, 1_099), 0);
        assert_eq!(paced_allowance(100, w, 1_100), 1);
        assert_eq!(paced_allowance(100, w, 6_000), 50);
        assert_eq!(paced_allowance(100, w, 10_999), 99);
        assert_eq!(paced_allowance(100, w, 11_000), 100);
        assert_eq!(
            paced_allowance(u64::MAX, (0, i64::MAX), i64::MAX - 1),
            u64::MAX - 3
        );
    }

    #[test]
    fn probabilities() {
        assert_eq!(parse_ppm(b"0"), Some(0));
        assert_eq!(parse_ppm(b"1"), Some(PPM));
        assert_eq!(parse_ppm(b"1.0"), Some(PPM));
        assert_eq!(parse_ppm(b"0.25"), Some(250_000));
        assert_eq!(parse_ppm(b"0.000001"), Some(1));
        for bad in [
            &b""[..],
            b".5",
            b"0.",
            b"1.5",
            b"2",
            b"0.0000001",
            b"-0.5",
            b"0,5",
            b"00.5",
            b"1e-3",
        ] {
            assert_eq!(parse_ppm(bad), None, "{bad:?}");
        }
        for v in [0, 1, 10, 250_000, 999_999, PPM] {
            assert_eq!(parse_ppm(ppm_text(v).as_bytes()), Some(v));
        }
    }

    #[test]
    fn gate_roundtrip() {
        let g = Gate {
            user: 5,
            tat_ns: Some(7),
            client: Some((
                9,
                ClientState {
                    window_start: 1,
                    banned_until: 2,
                    count: 3,
                },
            )),
            waiting: Some(false),
            user_ban: Some(44),
        };
        let mut w = Writer::new();
        g.encode(&mut w);
        let mut r = Reader::new(&w.buf);
        assert_eq!(Gate::decode(&mut r).unwrap(), g);
        let mut w = Writer::new();
        Gate::default().encode(&mut w);
        assert_eq!(w.buf, vec![0]);
        assert!(Gate::decode(&mut Reader::new(&[0x08])).is_err());
        assert!(Gate::decode(&mut Reader::new(&[0x20])).is_err());
    }
}
