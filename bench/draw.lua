-- The peer approach: the same draw as LOTTERY.DRAW, written the way Redis + Lua lottery
-- systems do it (cooldown key per user, daily counter key per user, a winners set, stock and
-- sold counters in hashes, a wins stream). Used by bench/run.py as the baseline; loaded with
-- SCRIPT LOAD by bench/setup_lua.py, which also writes the campaign hashes.
--
-- EVALSHA <sha> 7 <cfg> <table> <stock> <sold> <winners> <wins> <counters> <user>
--
-- KEYS (all share one hash tag, e.g. {bench}, so they live in one cluster slot):
--   1 cfg      hash: n (prize count), total (sum of all weights incl. NOTHING), cooldown (ms),
--                    daily (-1 = INF), maxwins (-1 = INF, or 1), dayoffset (minutes), prefix
--                    (per-user key prefix, e.g. "{bench}:")
--   2 table    hash: the integer alias table over n+1 entries (entry n = NOTHING):
--                    k<c> = mass kept by column c (out of total), a<c> = its alias entry,
--                    i<e> = prize id of entry e, f<e> = "inf" when that prize has INF stock
--   3 stock    hash: prize id -> remaining stock
--   4 sold     hash: prize id -> sold counter (read back and reset by a GETDEL-style job)
--   5 winners  set:  users who won (MAXWINS 1)
--   6 wins     stream: one entry per win (user, prize, ts, draw)
--   7 counters hash: draws (the draw sequence number), wins (losses = draws - wins)
-- ARGV[1]: the user id.
-- Per-user keys, built from cfg.prefix (same hash tag, so same slot; Lua systems build them
-- inside the script because the user id only arrives as an argument):
--   <prefix>cd:<user>   cooldown: SET ... PX cooldown NX
--   <prefix>day:<user>  draws today: INCR, PEXPIREAT at the start of the next day
--
-- Reply: the same five elements as LOTTERY.DRAW:
--   outcome, prize id or nil, win id (stream entry ID) or nil, chances left today (-1: INF),
--   ms until the user can draw again.
--
-- Randomness: Redis 7 scripts are replicated by effects, so TIME and math.random are allowed,
-- but math.random is DETERMINISTIC in Redis scripts (Redis reseeds it with the same value
-- before every script run). So the script seeds it itself from the server's clock
-- (microseconds) mixed with a hash of the user id. That is what Lua-based systems do, and it
-- is the baseline's weakness, not the module's: two draws of the same user in the same
-- microsecond get the same outcome, the seed space is 31 bits, anyone who knows the server
-- time can predict a draw, and math.random(m, n) maps a 48-bit double onto the range with
-- floating point (not exactly uniform). LOTTERY.DRAW uses a CSPRNG seeded from the OS and
-- unbiased integer ranges.

local cfg_key, table_key, stock_key, sold_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local winners_key, wins_key, counters_key = KEYS[5], KEYS[6], KEYS[7]
local user = ARGV[1]

local cfg = redis.call('HMGET', cfg_key, 'n', 'total', 'cooldown', 'daily', 'maxwins',
    'dayoffset', 'prefix')
if not cfg[1] then
    return redis.error_reply('ERR no such campaign')
end
local n = tonumber(cfg[1])
local total = tonumber(cfg[2])
local cooldown = tonumber(cfg[3])
local daily = tonumber(cfg[4])
local maxwins = tonumber(cfg[5])
local offset_ms = tonumber(cfg[6]) * 60000
local prefix = cfg[7]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local day_ms = 86400000
local next_day = (math.floor((now + offset_ms) / day_ms) + 1) * day_ms - offset_ms

local cd_key = prefix .. 'cd:' .. user
local day_key = prefix .. 'day:' .. user

local used = tonumber(redis.call('GET', day_key) or '0')
local function chances(u)
    if daily < 0 then return -1 end
    if u >= daily then return 0 end
    return daily - u
end

-- MAXWINS (1 or INF in this baseline).
if maxwins == 1 and redis.call('SISMEMBER', winners_key, user) == 1 then
    return { 'ALREADY_WON', false, false, chances(used), 0 }
elseif maxwins == 0 then
    return { 'ALREADY_WON', false, false, chances(used), 0 }
end

-- Cooldown first, then the daily quota (the module's check order).
if daily >= 0 and used >= daily then
    if cooldown > 0 then
        local left = redis.call('PTTL', cd_key)
        if left > 0 then return { 'COOLDOWN', false, false, chances(used), left } end
    end
    return { 'QUOTA', false, false, 0, next_day - now }
end
if cooldown > 0 then
    -- Checks the cooldown and starts it in one call.
    if not redis.call('SET', cd_key, now, 'PX', cooldown, 'NX') then
        return { 'COOLDOWN', false, false, chances(used), redis.call('PTTL', cd_key) }
    end
end

-- Consume a chance.
used = redis.call('INCR', day_key)
if used == 1 then
    redis.call('PEXPIREAT', day_key, next_day)
end
local seq = redis.call('HINCRBY', counters_key, 'draws', 1)

-- The pick: alias table, column then coin. Seeded per call (see the header).
local h = tonumber(string.sub(redis.sha1hex(user), 1, 7), 16)
math.randomseed((tonumber(t[2]) + (tonumber(t[1]) % 2000) * 1000000 + h) % 2147483647)
local col = math.random(0, n) -- n+1 columns: 0..n-1 prizes, n = NOTHING
local r = math.random(0, total - 1)
local ka = redis.call('HMGET', table_key, 'k' .. col, 'a' .. col)
local entry = col
if r >= tonumber(ka[1]) then entry = tonumber(ka[2]) end

local wait = cooldown
if entry < n then
    local pf = redis.call('HMGET', table_key, 'i' .. entry, 'f' .. entry)
    local id = pf[1]
    local in_stock = true
    if pf[2] ~= 'inf' then
        -- Checked decrement: never oversell.
        if redis.call('HINCRBY', stock_key, id, -1) < 0 then
            redis.call('HINCRBY', stock_key, id, 1)
            in_stock = false
        end
    end
    if in_stock then
        redis.call('HINCRBY', sold_key, id, 1)
        if maxwins == 1 then redis.call('SADD', winners_key, user) end
        redis.call('HINCRBY', counters_key, 'wins', 1)
        local win_id = redis.call('XADD', wins_key, '*', 'user', user, 'prize', id,
            'ts', now, 'draw', seq)
        return { 'WIN', id, win_id, chances(used), wait }
    end
end
return { 'LOSE', false, false, chances(used), wait }
