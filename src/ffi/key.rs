//! An open key, `Key<'ctx>`: valid while the command's context is, closed on drop. The
//! campaign stored in it is borrowed from the handle (`campaign_mut(&mut self)`), so no
//! reference to it can outlive the key.

use super::string::Str;
use crate::datatype::LOTTERY_TYPE;
use crate::engine::campaign::Campaign;
use redis_module::{raw, Context};
use std::marker::PhantomData;
use std::os::raw::c_int;

/// Why a key does not hold a campaign we can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// The key holds another type.
    WrongType,
    /// The module API lacks a function this needs.
    Unavailable,
}

/// What a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Empty,
    Stream,
    /// A value of our data type.
    Campaign,
    Other,
}

/// An open key (read-write, or read-only), closed on drop.
pub struct Key<'ctx> {
    raw: *mut raw::RedisModuleKey,
    _ctx: PhantomData<&'ctx Context>,
}

impl<'ctx> Key<'ctx> {
    fn open(ctx: &'ctx Context, name: Str<'_>, mode: u32) -> Key<'ctx> {
        let raw = match unsafe { raw::RedisModule_OpenKey } {
            // SAFETY: the command's context and a valid name (Redis copies what it keeps).
            Some(open) => unsafe { open(ctx.ctx, name.raw(), mode as c_int) }.cast(),
            None => std::ptr::null_mut(),
        };
        Key {
            raw,
            _ctx: PhantomData,
        }
    }

    /// Opens `name` for reading and writing.
    pub fn write(ctx: &'ctx Context, name: Str<'_>) -> Key<'ctx> {
        Key::open(ctx, name, raw::REDISMODULE_READ | raw::REDISMODULE_WRITE)
    }

    /// Opens `name` for reading (a missing key reads as empty).
    pub fn read(ctx: &'ctx Context, name: Str<'_>) -> Key<'ctx> {
        Key::open(ctx, name, raw::REDISMODULE_READ)
    }

    /// What the key holds (a key that could not be opened is empty).
    pub fn kind(&self) -> Result<KeyKind, KeyError> {
        if self.raw.is_null() {
            return Ok(KeyKind::Empty);
        }
        let (Some(key_type), Some(get_type)) = (unsafe { raw::RedisModule_KeyType }, unsafe {
            raw::RedisModule_ModuleTypeGetType
        }) else {
            return Err(KeyError::Unavailable);
        };
        // SAFETY: an open key.
        let t = unsafe { key_type(self.raw) } as isize;
        Ok(match t {
            raw::REDISMODULE_KEYTYPE_EMPTY => KeyKind::Empty,
            raw::REDISMODULE_KEYTYPE_STREAM => KeyKind::Stream,
            raw::REDISMODULE_KEYTYPE_MODULE
                if unsafe { get_type(self.raw) } == *LOTTERY_TYPE.raw_type.borrow() =>
            {
                KeyKind::Campaign
            }
            _ => KeyKind::Other,
        })
    }

    /// The stored campaign: None if the key is empty, `WrongType` if it holds anything else.
    fn value(&self) -> Result<Option<*mut Campaign>, KeyError> {
        match self.kind()? {
            KeyKind::Empty => Ok(None),
            KeyKind::Campaign => {
                let get =
                    unsafe { raw::RedisModule_ModuleTypeGetValue }.ok_or(KeyError::Unavailable)?;
                // SAFETY: a value of our type is a Box<Campaign> we stored.
                let v = unsafe { get(self.raw) }.cast::<Campaign>();
                Ok((!v.is_null()).then_some(v))
            }
            _ => Err(KeyError::WrongType),
        }
    }

    /// The campaign, for reading, borrowed from this handle.
    pub fn campaign(&self) -> Result<Option<&Campaign>, KeyError> {
        // SAFETY: the value lives in the keyspace while the key is open, and the command runs
        // alone (Redis's main thread): nothing else touches it while borrowed from here.
        Ok(self.value()?.map(|v| unsafe { &*v }))
    }

    /// The campaign, for writing (the key must have been opened with `write`).
    pub fn campaign_mut(&mut self) -> Result<Option<&mut Campaign>, KeyError> {
        // SAFETY: as `campaign`, and `&mut self` makes the borrow exclusive.
        Ok(self.value()?.map(|v| unsafe { &mut *v }))
    }

    /// Stores `c` in the (empty) key. Err: Redis refused it (the campaign is dropped).
    pub fn set_campaign(&mut self, c: Campaign) -> Result<(), KeyError> {
        let set = unsafe { raw::RedisModule_ModuleTypeSetValue }.ok_or(KeyError::Unavailable)?;
        if self.raw.is_null() {
            return Err(KeyError::Unavailable);
        }
        let value = Box::into_raw(Box::new(c));
        // SAFETY: an open key; Redis owns the box from here on (freed by `datatype::free`).
        let status = unsafe { set(self.raw, *LOTTERY_TYPE.raw_type.borrow(), value.cast()) };
        if status == raw::REDISMODULE_OK as c_int {
            Ok(())
        } else {
            // SAFETY: Redis did not take it.
            drop(unsafe { Box::from_raw(value) });
            Err(KeyError::WrongType)
        }
    }

    /// Appends an entry to the stream at this key (`argv`: field, value, ...), with the ID
    /// `id`, or an automatic one when None.
    pub fn stream_add(
        &mut self,
        id: Option<(u64, u64)>,
        argv: &[Str<'_>],
    ) -> Result<Appended, KeyError> {
        let add = unsafe { raw::RedisModule_StreamAdd }.ok_or(KeyError::Unavailable)?;
        let (flags, (ms, seq)) = match id {
            Some(id) => (0, id),
            None => (raw::REDISMODULE_STREAM_ADD_AUTOID as c_int, (0, 0)),
        };
        let mut id = raw::RedisModuleStreamID { ms, seq };
        // SAFETY: an open key; `argv` holds valid strings, in pairs (a `Str` is a transparent
        // pointer, and Redis only reads the array).
        let ok = unsafe {
            add(
                self.raw,
                flags,
                &mut id,
                argv.as_ptr().cast_mut().cast(),
                (argv.len() / 2) as i64,
            )
        };
        if ok == raw::REDISMODULE_OK as c_int {
            return Ok(Appended::At(id.ms, id.seq));
        }
        // The module API reports why in errno: EDOM for an ID not above the stream's last.
        const EDOM: i32 = 33;
        Ok(match std::io::Error::last_os_error().raw_os_error() {
            Some(EDOM) if flags == 0 => Appended::IdTooSmall,
            _ => Appended::Refused,
        })
    }
}

impl Key<'_> {
    /// The ID of the last entry of the stream at this key (None: empty, not a stream, or the
    /// module API unavailable). An entry deleted from the stream's end (XDEL) is not seen:
    /// the stream's own last ID may then be higher.
    pub fn stream_last_entry(&mut self) -> Option<(u64, u64)> {
        let start = unsafe { raw::RedisModule_StreamIteratorStart }?;
        let next = unsafe { raw::RedisModule_StreamIteratorNextID }?;
        let stop = unsafe { raw::RedisModule_StreamIteratorStop }?;
        // SAFETY: an open key (a key of another type or no key makes the start fail); the
        // iterator is stopped before returning.
        unsafe {
            let flags = raw::REDISMODULE_STREAM_ITERATOR_REVERSE as c_int;
            if start(self.raw, flags, std::ptr::null_mut(), std::ptr::null_mut())
                != raw::REDISMODULE_OK as c_int
            {
                return None;
            }
            let mut id = raw::RedisModuleStreamID { ms: 0, seq: 0 };
            let mut fields: std::os::raw::c_long = 0;
            let got = next(self.raw, &mut id, &mut fields) == raw::REDISMODULE_OK as c_int;
            stop(self.raw);
            got.then_some((id.ms, id.seq))
        }
    }
}

/// How `Key::stream_add` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Appended with this ID.
    At(u64, u64),
    /// The explicit ID was not above the stream's last ID: nothing appended.
    IdTooSmall,
    /// Nothing appended (the stream's IDs are exhausted, or the entry is too large).
    Refused,
}

impl Drop for Key<'_> {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            if let Some(close) = unsafe { raw::RedisModule_CloseKey } {
                // SAFETY: opened by us, closed once.
                unsafe { close(self.raw) };
            }
        }
    }
}
