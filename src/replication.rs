//! Replication and AOF glue: effects go out as `LOTTERY.APPLY key blob`; wins go out as the
//! XADD itself with its concrete entry ID (Redis rewrites `*` when it propagates a call made
//! with the `!` flag). Nothing random or clock-dependent is ever re-run on a replica.

use crate::engine::effect::Effect;
use redis_module::{raw, CallOptionsBuilder, CallReply, CallResult, Context, RedisString};

/// Sends an effect to replicas and the AOF. A failure is logged loudly: it means the master
/// changed state that its copies will not see.
pub fn replicate(ctx: &Context, key: &RedisString, effect: &Effect) {
    replicate_raw(ctx.ctx, key.inner, effect);
}

/// `replicate` on raw pointers: `LOTTERY.APPLY <key> <effect>` with the key string passed
/// through as is (no copy) and the effect as one binary argument.
pub fn replicate_raw(
    ctx: *mut raw::RedisModuleCtx,
    key: *mut raw::RedisModuleString,
    effect: &Effect,
) {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let status = BUF.with(|b| {
        let Ok(mut blob) = b.try_borrow_mut() else {
            return raw::REDISMODULE_ERR as i32;
        };
        effect.encode_into(&mut blob);
        replicate_blob(ctx, key, &blob)
    });
    if status != raw::REDISMODULE_OK as i32 {
        Context::new(ctx).log_warning(
            "lottery: RedisModule_Replicate failed: a replica or the AOF may miss an effect",
        );
    }
}

fn replicate_blob(
    ctx: *mut raw::RedisModuleCtx,
    key: *mut raw::RedisModuleString,
    blob: &[u8],
) -> i32 {
    match unsafe { raw::RedisModule_Replicate } {
        // SAFETY: "sb" = a RedisModuleString, then a buffer pointer and its length.
        Some(f) => unsafe {
            f(
                ctx,
                c"LOTTERY.APPLY".as_ptr(),
                c"sb".as_ptr(),
                key,
                blob.as_ptr(),
                blob.len(),
            )
        },
        None => raw::REDISMODULE_ERR as i32,
    }
}

/// Appends a win to the wins stream with XADD (propagated verbatim with its concrete ID).
/// Returns the entry ID, or the error reply's text.
pub fn xadd_win(ctx: &Context, stream: &[u8], fields: &[&[u8]]) -> Result<Vec<u8>, String> {
    let mut args: Vec<&[u8]> = Vec::with_capacity(fields.len() + 2);
    args.push(stream);
    args.push(b"*");
    args.extend_from_slice(fields);
    let opts = CallOptionsBuilder::new()
        .replicate()
        .errors_as_replies()
        .build();
    let res: CallResult = ctx.call_ext("XADD", &opts, args.as_slice());
    match res {
        Ok(CallReply::String(s)) => Ok(s.as_bytes().to_vec()),
        Ok(_) => Err("ERR unexpected XADD reply".into()),
        Err(e) => Err(e
            .to_utf8_string()
            .unwrap_or_else(|| "ERR XADD failed".into())),
    }
}
