//! The boundary with Redis: every function Redis calls into the module runs inside `guard`,
//! and every reply and log line the module sends is built here from bytes, safely.
//!
//! A panic that crossed into Redis would abort the server and take the whole dataset with
//! it. `guard` catches it instead, logs it once (what panicked, where), counts it in
//! `INFO lottery` (`lottery_internal_errors`), and the entry point answers an error (a
//! command), refuses (a load), or does nothing (a callback). The SDK's own reply and log
//! helpers are not used for text: they panic on a NUL byte and mangle every character
//! outside Latin-1 (one whose low byte is 0 becomes a NUL).
//!
//! Command entry points come in two kinds, made by macros in each command's description:
//! `generic_entry!` (arguments as a vector of strings, a reply value) and `direct_entry!`
//! (LOTTERY.DRAW, the hot path: the arguments as Redis holds them, and the handler replies
//! itself).

use crate::command_docs::Command;
use crate::ffi::Str;
use redis_module::{raw, Context, RedisError, RedisResult, RedisString, RedisValue};
use std::cell::RefCell;
use std::ffi::CString;
use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    /// What the last panic on this thread said, for `guard` to log with its context.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces the default panic hook (which prints to stderr) with one that records the
/// message and location for `guard` to log.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_string());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let text = format!("{msg}{at}");
        let _ = LAST_PANIC.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                *p = Some(text);
            }
        });
    }));
}

/// Runs `f`; if it panics, logs the panic once (naming `what`), counts it, and returns
/// `on_panic` instead of letting the panic reach Redis.
/// `what` is only written out on a panic.
pub fn guard<R>(
    what: impl std::fmt::Display,
    on_panic: impl FnOnce() -> R,
    f: impl FnOnce() -> R,
) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => {
            let why = LAST_PANIC
                .try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.take()))
                .ok()
                .flatten()
                .unwrap_or_else(|| "(no message)".to_string());
            crate::metrics::internal_error();
            log(
                std::ptr::null_mut(),
                Level::Warning,
                &format!(
                    "lottery: internal error in {what}: {why}; refused (the server keeps running). \
                     Please report this line."
                ),
            );
            on_panic()
        }
    }
}

/// A C string with nothing Redis could misread: NUL, CR and LF are written as `\x00`, `\r`,
/// `\n`; everything else (UTF-8 of any plane included) is kept as is.
pub fn c_text(s: &str) -> CString {
    let mut v = Vec::with_capacity(s.len() + 1);
    for &b in s.as_bytes() {
        match b {
            0 => v.extend_from_slice(b"\\x00"),
            b'\r' => v.extend_from_slice(b"\\r"),
            b'\n' => v.extend_from_slice(b"\\n"),
            _ => v.push(b),
        }
    }
    // No NUL is left, so this cannot fail; an empty string is the fallback all the same.
    CString::new(v).unwrap_or_default()
}

#[derive(Clone, Copy)]
pub enum Level {
    Notice,
    Warning,
}

/// Writes a line to the server log (`ctx` may be null).
pub fn log(ctx: *mut raw::RedisModuleCtx, level: Level, msg: &str) {
    let level = match level {
        Level::Notice => c"notice",
        Level::Warning => c"warning",
    };
    let msg = c_text(msg);
    if let Some(f) = unsafe { raw::RedisModule_Log } {
        // SAFETY: "%s" with one C string; a null ctx is allowed by the API.
        unsafe { f(ctx, level.as_ptr(), c"%s".as_ptr(), msg.as_ptr()) };
    }
}

/// Replies with an error. `msg` starts with its code (`ERR`, `WRONGTYPE`, ...).
pub fn reply_error(ctx: *mut raw::RedisModuleCtx, msg: &str) -> c_int {
    let msg = c_text(msg);
    if let Some(f) = unsafe { raw::RedisModule_ReplyWithError } {
        unsafe { f(ctx, msg.as_ptr()) };
    }
    raw::REDISMODULE_OK as c_int
}

fn reply_value(ctx: *mut raw::RedisModuleCtx, v: RedisValue) {
    match v {
        RedisValue::Integer(i) => {
            raw::reply_with_long_long(ctx, i);
        }
        RedisValue::Float(f) => {
            raw::reply_with_double(ctx, f);
        }
        RedisValue::Bool(b) => {
            raw::reply_with_bool(ctx, b.into());
        }
        RedisValue::SimpleStringStatic(s) => reply_simple(ctx, s),
        RedisValue::SimpleString(s) => reply_simple(ctx, &s),
        RedisValue::BulkString(s) => reply_bytes(ctx, s.as_bytes()),
        RedisValue::StringBuffer(b) => reply_bytes(ctx, &b),
        RedisValue::VerbatimString((_, b)) => reply_bytes(ctx, &b),
        RedisValue::BigNumber(s) => reply_bytes(ctx, s.as_bytes()),
        RedisValue::BulkRedisString(s) => {
            raw::reply_with_string(ctx, s.inner);
        }
        RedisValue::Array(items) => {
            raw::reply_with_array(ctx, items.len() as _);
            for item in items {
                reply_value(ctx, item);
            }
        }
        RedisValue::Null => {
            raw::reply_with_null(ctx);
        }
        RedisValue::NoReply => {}
        RedisValue::StaticError(s) => {
            reply_error(ctx, s);
        }
        // Maps and sets are not used by any command; sent as an error rather than guessed at.
        _ => {
            reply_error(ctx, "ERR internal error: unsupported reply type");
        }
    }
}

fn reply_simple(ctx: *mut raw::RedisModuleCtx, s: &str) {
    let s = c_text(s);
    raw::reply_with_simple_string(ctx, s.as_ptr());
}

fn reply_bytes(ctx: *mut raw::RedisModuleCtx, b: &[u8]) {
    raw::reply_with_string_buffer(ctx, b.as_ptr().cast::<c_char>(), b.len());
}

/// Sends a command's result as its reply.
pub fn reply(ctx: *mut raw::RedisModuleCtx, result: RedisResult) -> c_int {
    match result {
        Ok(v) => {
            reply_value(ctx, v);
            raw::REDISMODULE_OK as c_int
        }
        Err(RedisError::WrongArity) => wrong_arity(ctx),
        Err(RedisError::WrongType) => reply_error(
            ctx,
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        Err(RedisError::Str(s)) => reply_error(ctx, s),
        Err(RedisError::String(s)) => reply_error(ctx, &s),
    }
}

/// A command handler of the generic kind: arguments in, a reply value out.
pub type Handler = fn(&Context, Vec<RedisString>) -> RedisResult;

/// Runs a generic command handler inside the guard and sends its reply.
pub fn run_command(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    command: &'static Command,
    handler: Handler,
) -> c_int {
    guard(
        command.upper(),
        || reply_error(ctx, &internal_error_text(command.upper())),
        || {
            let context = Context::new(ctx);
            let args = redis_module::decode_args(ctx, argv, argc);
            let result = handler(&context, args);
            reply(ctx, result)
        },
    )
}

/// The reply to a command that panicked.
pub fn internal_error_text(name: impl std::fmt::Display) -> String {
    format!("ERR internal error in {name}: refused; see the server log")
}

/// The `extern "C"` entry point of a command, for its `Command` description: the function
/// Redis calls runs `$handler` through `$crate::entry::$runner` (`run_command` or
/// `run_direct`). Use `generic_entry!` / `direct_entry!`.
#[macro_export]
macro_rules! entry_point {
    ($runner:ident, $command:ident, $handler:path) => {{
        extern "C" fn entry(
            ctx: *mut redis_module::raw::RedisModuleCtx,
            argv: *mut *mut redis_module::raw::RedisModuleString,
            argc: std::os::raw::c_int,
        ) -> std::os::raw::c_int {
            $crate::entry::$runner(ctx, argv, argc, &$command, $handler)
        }
        entry as $crate::entry::CommandFn
    }};
}

/// The entry point of a generic command handler: `entry: generic_entry!(GRANT, grant)` runs
/// `grant` through `run_command`.
#[macro_export]
macro_rules! generic_entry {
    ($command:ident, $handler:path) => {
        $crate::entry_point!(run_command, $command, $handler)
    };
}

/// Why a direct command handler did not reply: its arguments' number (the wrong-arity
/// reply), or an error reply (with its code).
pub enum Failure {
    Arity,
    Msg(String),
}

/// A command handler of the direct kind: the arguments as Redis holds them in, and it replies
/// itself (`reply_array`, `reply_bulk`, ...) unless it fails.
pub type DirectHandler = fn(&Context, &[Str<'_>]) -> Result<(), Failure>;

/// Runs a direct command handler inside the guard (the hot path: no argument vector, no reply
/// tree, and the command's name is only written out on a panic).
pub fn run_direct(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    command: &'static Command,
    handler: DirectHandler,
) -> c_int {
    guard(
        command.upper(),
        || reply_error(ctx, &internal_error_text(command.upper())),
        || {
            if argv.is_null() || argc < 0 {
                return reply_error(ctx, "ERR bad arguments");
            }
            // SAFETY: Redis passes argc valid argument pointers for the duration of the call.
            let args = unsafe { crate::ffi::string::args(argv, argc) };
            match handler(&Context::new(ctx), args) {
                Ok(()) => raw::REDISMODULE_OK as c_int,
                Err(Failure::Arity) => wrong_arity(ctx),
                Err(Failure::Msg(m)) => reply_error(ctx, &m),
            }
        },
    )
}

/// The entry point of a direct command handler: `entry: direct_entry!(DRAW, draw)` runs
/// `draw` through `run_direct`.
#[macro_export]
macro_rules! direct_entry {
    ($command:ident, $handler:path) => {
        $crate::entry_point!(run_direct, $command, $handler)
    };
}

/// Replies Redis's wrong-number-of-arguments error.
fn wrong_arity(ctx: *mut raw::RedisModuleCtx) -> c_int {
    if let Some(f) = unsafe { raw::RedisModule_WrongArity } {
        unsafe { f(ctx) };
    }
    raw::REDISMODULE_OK as c_int
}

/// Starts an array reply of `n` elements (a direct handler's reply).
pub fn reply_array(ctx: &Context, n: usize) {
    raw::reply_with_array(ctx.ctx, n as _);
}

/// A bulk string reply (an element of a direct handler's reply).
pub fn reply_bulk(ctx: &Context, b: &[u8]) {
    reply_bytes(ctx.ctx, b);
}

/// A null reply (an element of a direct handler's reply).
pub fn reply_null(ctx: &Context) {
    raw::reply_with_null(ctx.ctx);
}

/// An integer reply (an element of a direct handler's reply).
pub fn reply_int(ctx: &Context, v: i64) {
    raw::reply_with_long_long(ctx.ctx, v);
}

/// The signature Redis calls a command with.
pub type CommandFn =
    extern "C" fn(*mut raw::RedisModuleCtx, *mut *mut raw::RedisModuleString, c_int) -> c_int;

/// Registers one command with `RedisModule_CreateCommand`.
pub fn create_command(ctx: *mut raw::RedisModuleCtx, command: &Command) -> bool {
    let (first, last, step) = command.key_positions();
    match unsafe { raw::RedisModule_CreateCommand } {
        Some(create) => {
            // SAFETY: valid C strings that Redis copies; the entry point lives as long as the
            // module.
            let status = unsafe {
                create(
                    ctx,
                    command.name.as_ptr(),
                    Some(command.entry),
                    command.flags.as_ptr(),
                    first,
                    last,
                    step,
                )
            };
            status == raw::REDISMODULE_OK as c_int
        }
        None => false,
    }
}
