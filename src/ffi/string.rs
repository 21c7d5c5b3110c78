//! Redis strings: `Str`, one Redis holds for us (a command argument, a key name passed to a
//! callback), borrowed for `'a`; `OwnedString`, one we created, freed on drop.

use redis_module::{raw, Context, RedisString};
use std::marker::PhantomData;

/// A Redis-owned string, valid for `'a` (the command or callback that was given it).
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Str<'a> {
    raw: *mut raw::RedisModuleString,
    _life: PhantomData<&'a raw::RedisModuleString>,
}

impl<'a> Str<'a> {
    /// The string behind a pointer Redis passed in (null: the empty string).
    ///
    /// # Safety
    /// `s` must be null or a valid `RedisModuleString` for `'a`.
    pub unsafe fn from_raw(s: *mut raw::RedisModuleString) -> Str<'a> {
        Str {
            raw: s,
            _life: PhantomData,
        }
    }

    /// A string the SDK wrapped (a generic command's argument).
    pub fn of(s: &'a RedisString) -> Str<'a> {
        // SAFETY: a RedisString holds a valid string while it lives.
        unsafe { Str::from_raw(s.inner) }
    }

    /// A string we own.
    pub fn owned(s: &'a OwnedString) -> Str<'a> {
        // SAFETY: an OwnedString is valid until dropped.
        unsafe { Str::from_raw(s.0) }
    }

    /// The bytes (borrowed; never freed here).
    pub fn bytes(self) -> &'a [u8] {
        // SAFETY: `raw` is null or valid for 'a (see the constructors).
        unsafe { bytes_of(self.raw) }
    }

    pub(super) fn raw(self) -> *mut raw::RedisModuleString {
        self.raw
    }
}

/// The arguments Redis passed to a command, for the duration of the call.
///
/// # Safety
/// `argv` must hold `argc` valid strings for `'a` (or be null, then there are none).
pub unsafe fn args<'a>(argv: *mut *mut raw::RedisModuleString, argc: i32) -> &'a [Str<'a>] {
    if argv.is_null() || argc <= 0 {
        return &[];
    }
    // Str is a transparent pointer.
    std::slice::from_raw_parts(argv.cast::<Str<'a>>(), argc as usize)
}

/// The bytes of a Redis-owned string (borrowed for the duration of the call; never freed
/// here). Null gives an empty slice.
///
/// # Safety
/// `s` must be null or a valid `RedisModuleString` that outlives the returned slice.
pub(super) unsafe fn bytes_of<'a>(s: *mut raw::RedisModuleString) -> &'a [u8] {
    if s.is_null() {
        return &[];
    }
    let mut len = 0;
    let p = raw::string_ptr_len(s, &mut len);
    if p.is_null() {
        &[]
    } else {
        std::slice::from_raw_parts(p.cast::<u8>(), len)
    }
}

/// A Redis string we own, freed on drop.
pub struct OwnedString(pub(super) *mut raw::RedisModuleString);

impl OwnedString {
    pub fn new(ctx: &Context, b: &[u8]) -> Option<OwnedString> {
        let create = unsafe { raw::RedisModule_CreateString }?;
        // SAFETY: a context Redis gave us, and a buffer Redis copies.
        let p = unsafe { create(ctx.ctx, b.as_ptr().cast(), b.len()) };
        (!p.is_null()).then_some(OwnedString(p))
    }

    /// A string outside any context's automatic memory.
    pub fn detached(b: &[u8]) -> Option<OwnedString> {
        let create = unsafe { raw::RedisModule_CreateString }?;
        // SAFETY: no context: nothing frees it but our drop; Redis copies the buffer.
        let p = unsafe { create(std::ptr::null_mut(), b.as_ptr().cast(), b.len()) };
        (!p.is_null()).then_some(OwnedString(p))
    }

    pub fn as_str(&self) -> Str<'_> {
        Str::owned(self)
    }
}

/// A Redis string for `b`, from a small cache of the strings the hot path hands Redis again
/// and again (wins stream names, prize ids): the caller gets its own reference (freed on
/// drop), and a name seen before costs no allocation. None: the module API failed.
pub fn cached(b: &[u8]) -> Option<OwnedString> {
    /// Entries kept; the oldest is replaced when full.
    const SLOTS: usize = 16;
    /// Longer strings are not kept (a fresh string each time).
    const MAX_LEN: usize = 512;
    /// The entries (bytes, string), and the slot the next new entry replaces when full.
    type Cache = (Vec<(Vec<u8>, OwnedString)>, usize);
    thread_local! {
        static CACHE: std::cell::RefCell<Cache> = const { std::cell::RefCell::new((Vec::new(), 0)) };
    }
    let retain = unsafe { raw::RedisModule_RetainString }?;
    let share = |s: &OwnedString| {
        // SAFETY: a string we own; no context: a plain reference count increment.
        unsafe { retain(std::ptr::null_mut(), s.0) };
        OwnedString(s.0)
    };
    if b.len() > MAX_LEN {
        return OwnedString::detached(b);
    }
    CACHE.with(|c| {
        let Ok(mut c) = c.try_borrow_mut() else {
            return OwnedString::detached(b);
        };
        let (entries, next) = &mut *c;
        if let Some((_, s)) = entries.iter().find(|(k, _)| k.as_slice() == b) {
            return Some(share(s));
        }
        let s = OwnedString::detached(b)?;
        let out = share(&s);
        if entries.len() < SLOTS {
            entries.push((b.to_vec(), s));
        } else {
            entries[*next] = (b.to_vec(), s);
            *next = (*next + 1) % SLOTS;
        }
        Some(out)
    })
}

/// A Redis string made once and kept for the module's lifetime (never freed): names the hot
/// path hands Redis again and again.
#[derive(Clone, Copy)]
pub struct KeptString(*mut raw::RedisModuleString);

impl KeptString {
    pub fn new(b: &[u8]) -> Option<KeptString> {
        let create = unsafe { raw::RedisModule_CreateString }?;
        // SAFETY: no context: the string is not auto-managed, and Redis copies the buffer.
        let p = unsafe { create(std::ptr::null_mut(), b.as_ptr().cast(), b.len()) };
        (!p.is_null()).then_some(KeptString(p))
    }

    pub fn as_str(&self) -> Str<'static> {
        // SAFETY: never freed, so valid for the rest of the module's life.
        unsafe { Str::from_raw(self.0) }
    }
}

impl Drop for OwnedString {
    fn drop(&mut self) {
        if let Some(free) = unsafe { raw::RedisModule_FreeString } {
            unsafe { free(std::ptr::null_mut(), self.0) };
        }
    }
}

/// A fixed set of kept strings that a `static` may hold.
pub struct KeptSet<const N: usize>([KeptString; N]);

// SAFETY: the strings are created once, never freed or changed, and only handed to the module
// API from Redis's main thread (commands, events and replication run there).
unsafe impl<const N: usize> Send for KeptSet<N> {}
unsafe impl<const N: usize> Sync for KeptSet<N> {}

impl<const N: usize> KeptSet<N> {
    /// The strings of `names`, or None if the module API failed for one of them.
    pub fn new(names: [&[u8]; N]) -> Option<KeptSet<N>> {
        let mut out = Vec::with_capacity(N);
        for n in names {
            out.push(KeptString::new(n)?);
        }
        out.try_into().ok().map(KeptSet)
    }

    pub fn strings(&self) -> &[KeptString; N] {
        &self.0
    }
}
