//! What the engine's test files share.

use lottery_engine::alias::Uniform;
use lottery_engine::campaign::{Campaign, DrawReply, Plan, StreamId};
use lottery_engine::effect::Effect;

/// One whole draw as the command layer does it: plan, then commit (a pass) or count (a replay
/// or a refusal). A win gets the stream ID `now-seq`.
pub fn draw_full(
    c: &mut Campaign,
    user: &[u8],
    reqid: Option<&[u8]>,
    client: Option<&[u8]>,
    now: i64,
    g: &mut impl Uniform,
) -> (DrawReply, Effect) {
    let u = c.user_key(user);
    let rk = reqid.map(|r| c.request_key(u, r));
    let ck = client.map(|x| c.client_key(x));
    let plan = c.plan_draw_from(u, rk, ck, now, g);
    match plan {
        Plan::Replay(r) | Plan::Reject(r, _) => (r, c.count(&plan, now)),
        Plan::Pass { prize, seq, .. } => {
            let id = prize.map(|_| StreamId {
                ms: now as u64,
                seq,
            });
            c.commit_draw(u, rk, now, &plan, id)
        }
    }
}
