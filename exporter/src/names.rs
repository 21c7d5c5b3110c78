//! Every metric the exporter emits: name, type and help text, in one place. The rendering
//! (prom.rs) refers to these constants only; the list in docs/operations.md mirrors this one.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

#[derive(Debug)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

macro_rules! metrics {
    ($($id:ident = $name:literal, $kind:ident, $help:literal;)*) => {
        $(pub const $id: Metric = Metric { name: $name, kind: Kind::$kind, help: $help };)*
        /// Every metric, in the order they are rendered.
        pub const ALL: &[Metric] = &[$($id),*];
    };
}

metrics! {
    UP = "lottery_up", Gauge, "1 when the Redis node answered the last sample, else 0";
    DRAWS = "lottery_draws_total", Counter, "Draws that passed every check (wins + losses), from LOTTERY.STATS";
    WINS = "lottery_wins_total", Counter, "Draws that won a prize, from LOTTERY.STATS";
    LOSSES = "lottery_losses_total", Counter, "Draws that won nothing, from LOTTERY.STATS";
    REPLAYS = "lottery_replays_total", Counter, "REQID replays answered from memory, from LOTTERY.STATS";
    REJECTIONS = "lottery_rejections_total", Counter, "Draws refused, by outcome (each rejected_<outcome> of LOTTERY.STATS)";
    USERS = "lottery_users", Gauge, "Users with state in the campaign";
    PAUSED = "lottery_campaign_paused", Gauge, "1 when the campaign is paused, else 0";
    ACTIVE = "lottery_campaign_active", Gauge, "1 when the campaign is active (started, not ended, not paused), else 0";
    PRIZE_STOCK = "lottery_prize_stock", Gauge, "Remaining stock of a prize (prizes with INF stock have no series)";
    PRIZE_SOLD = "lottery_prize_sold_total", Counter, "Units of a prize won";
    STREAM_LENGTH = "lottery_stream_length", Gauge, "Entries in the campaign's wins stream (XLEN)";
    GROUP_LAG = "lottery_stream_group_lag", Gauge, "Entries of the wins stream not yet delivered to the consumer group (XINFO GROUPS lag)";
    GROUP_PENDING = "lottery_stream_group_pending", Gauge, "Entries delivered to the consumer group and not yet acknowledged";
    MODULE_CAMPAIGNS = "lottery_module_campaigns", Gauge, "Campaign values alive in the Redis node (INFO lottery)";
    MODULE_DRAWS = "lottery_module_draws_total", Counter, "Draws the node served since it started (INFO lottery)";
    MODULE_WINS = "lottery_module_wins_total", Counter, "Wins the node served since it started (INFO lottery)";
    MODULE_LOSSES = "lottery_module_losses_total", Counter, "Losses the node served since it started (INFO lottery)";
    MODULE_REPLAYS = "lottery_module_replays_total", Counter, "REQID replays the node served since it started (INFO lottery)";
    MODULE_REJECTIONS = "lottery_module_rejections_total", Counter, "Draws the node refused since it started, by outcome (INFO lottery)";
    MODULE_INTERNAL_ERRORS = "lottery_module_internal_errors_total", Counter, "Panics caught by the module (anything but 0 is a bug)";
    WRITER_READ = "lottery_writer_read_total", Counter, "Stream entries the writer read";
    WRITER_ROWS = "lottery_writer_rows_total", Counter, "Win rows the writer inserted";
    WRITER_DUPLICATES = "lottery_writer_duplicates_total", Counter, "Redelivered entries the writer found already stored";
    WRITER_ACKED = "lottery_writer_acked_total", Counter, "Entries the writer acknowledged";
    WRITER_DRAINS = "lottery_writer_drains_total", Counter, "Stock drain batches the writer stored";
    WRITER_RETRIES = "lottery_writer_retries_total", Counter, "Transient failures the writer retried";
    WRITER_ERRORS = "lottery_writer_errors_total", Counter, "Errors the writer met";
    WRITER_AWARDS_DELIVERED = "lottery_writer_awards_delivered_total", Counter, "Award webhooks delivered";
    WRITER_AWARDS_FAILED = "lottery_writer_awards_failed_total", Counter, "Award webhooks given up on";
    WRITER_AWARDS_RETRIES = "lottery_writer_awards_retries_total", Counter, "Award webhook attempts retried";
    WRITER_AWARD_BACKLOG = "lottery_writer_award_backlog", Gauge, "Awards waiting for delivery";
    WRITER_AGE = "lottery_writer_last_update_age_seconds", Gauge, "Seconds since the writer last published its status hash";
    SCRAPE_DURATION = "lottery_exporter_scrape_duration_seconds", Gauge, "Time the last sample of all Redis nodes took";
    SCRAPE_ERRORS = "lottery_exporter_scrape_errors_total", Counter, "Problems met while sampling (node down, a command failed, a reply not understood)";
    SAMPLE_AGE = "lottery_exporter_sample_age_seconds", Gauge, "Age of the sample this response shows";
    CAMPAIGNS = "lottery_exporter_campaigns", Gauge, "Campaigns reported";
    CAMPAIGNS_DROPPED = "lottery_exporter_campaigns_dropped", Gauge, "Campaigns found by discovery beyond --max-campaigns, not reported";
    SERIES_DROPPED = "lottery_exporter_series_dropped", Gauge, "Campaign and writer series left out of this response (over the exposition's size bound)";
}

/// The writer status hash's counter fields (contract: `lottery-writer:{}:<group>:<consumer>:<target>`)
/// and the metric each becomes.
pub const WRITER_FIELDS: &[(&str, &Metric)] = &[
    ("read_total", &WRITER_READ),
    ("rows_total", &WRITER_ROWS),
    ("duplicates_total", &WRITER_DUPLICATES),
    ("acked_total", &WRITER_ACKED),
    ("drains_total", &WRITER_DRAINS),
    ("retries_total", &WRITER_RETRIES),
    ("errors_total", &WRITER_ERRORS),
    ("awards_delivered_total", &WRITER_AWARDS_DELIVERED),
    ("awards_failed_total", &WRITER_AWARDS_FAILED),
    ("awards_retries_total", &WRITER_AWARDS_RETRIES),
    ("award_backlog", &WRITER_AWARD_BACKLOG),
];

/// `INFO lottery` numeric fields (after the `lottery_` prefix) and their metric;
/// `rejected_<outcome>` fields go to [`MODULE_REJECTIONS`].
pub const MODULE_FIELDS: &[(&str, &Metric)] = &[
    ("campaigns", &MODULE_CAMPAIGNS),
    ("draws", &MODULE_DRAWS),
    ("wins", &MODULE_WINS),
    ("losses", &MODULE_LOSSES),
    ("replays", &MODULE_REPLAYS),
    ("internal_errors", &MODULE_INTERNAL_ERRORS),
];

/// The module's data type name (`SCAN ... TYPE` finds campaigns by it).
pub const CAMPAIGN_TYPE: &str = "lottery01";

/// Key pattern of the writer status hashes.
pub const WRITER_PATTERN: &str = "lottery-writer:*";
