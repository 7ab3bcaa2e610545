//! The servers' metrics history: a bounded series of minute samples (CPU %, memory %, fullest
//! disk %, load over 1 min) for each server's chart, kept a day.
//!
//! Written by the heartbeat flush, in the transaction that already writes the latest metrics
//! (see [`super::servers::Fleet::flush_heartbeats`]): a sample is taken from what that flush just
//! stored, for every server heard from in the last interval, so the live registry keeps no
//! per-agent history and a sample costs no write of its own.
//!
//! Stored compactly: one row per server and hour, its samples appended as fixed-width hex
//! ([`SAMPLE_CHARS`] characters each: minute, then CPU, memory and disk in tenths of a percent,
//! then load × 100), so ten thousand servers sampled every minute keep 240,000 rows a day
//! (about 1 KB each), not 14 million.

use mttrly_core::MttrlyError;
use mttrly_core::ids::ServerId;

use super::{Maintenance, sqlite};

/// One hour, in ms: the unit of a stored row.
pub const HOUR_MS: i64 = 3_600_000;

/// One minute, in ms: the finest sampling (a second sample in one minute replaces the first).
pub const MINUTE_MS: i64 = 60_000;

/// How long samples are kept.
pub const KEPT_MS: i64 = 24 * HOUR_MS;

/// Characters per stored sample: `mm` minute of the hour, `ccc` CPU, `mmm` memory, `ddd` fullest
/// disk (tenths of a percent, 0 to 1000), `llll` load over 1 min × 100; all lower-case hex.
pub(crate) const SAMPLE_CHARS: usize = 15;

/// A percentage field's "not reported" (`fff`).
const NO_PERCENT: u32 = 0xfff;

/// The load field's "not reported" (`ffff`); loads are capped one below it (655.34).
const NO_LOAD: u32 = 0xffff;

/// One sample of a server's metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricSample {
    /// When it was taken (ms, the start of its minute).
    pub at_ms: i64,
    /// CPU busy, percent.
    pub cpu_percent: Option<f64>,
    /// Memory used, percent.
    pub memory_percent: Option<f64>,
    /// The fullest filesystem, percent used.
    pub disk_percent: Option<f64>,
    /// Load average over one minute.
    pub load_1m: Option<f64>,
}

/// The SQL that appends one sample per fresh server to its hour's row. `?1` the hour, `?2` the
/// minute of the hour, `?3` the oldest last-seen time still sampled. Values are read from the
/// latest metrics JSON the flush has just written and clamped to the field widths.
pub(in crate::db) const SAMPLE_SQL: &str = "
    INSERT INTO server_metrics (server_id, hour, samples)
    SELECT id, ?1, printf('%02x%03x%03x%03x%04x', ?2,
        coalesce(min(max(CAST(round(json_extract(metrics_json, '$.cpu_percent') * 10) AS INTEGER), 0), 1000), 4095),
        coalesce(min(max(CAST(round(json_extract(metrics_json, '$.memory_percent') * 10) AS INTEGER), 0), 1000), 4095),
        coalesce((SELECT min(max(CAST(round(max(json_extract(value, '$.used_percent')) * 10) AS INTEGER), 0), 1000)
                  FROM json_each(metrics_json, '$.filesystems')), 4095),
        coalesce(min(max(CAST(round(json_extract(metrics_json, '$.load_average[0]') * 100) AS INTEGER), 0), 65534), 65535))
    FROM servers
    WHERE decommissioned_at IS NULL AND last_seen_at >= ?3 AND json_valid(metrics_json)
    ON CONFLICT (server_id, hour) DO UPDATE SET samples = samples || excluded.samples";

/// Decodes an hour's row, oldest first; a later sample of the same minute replaces an earlier
/// one, and a malformed sample (never written by [`SAMPLE_SQL`]) is skipped.
pub(in crate::db) fn decode(hour: i64, samples: &str, out: &mut Vec<MetricSample>) {
    let start = out.len();
    for chunk in samples.as_bytes().chunks_exact(SAMPLE_CHARS) {
        let Ok(chunk) = std::str::from_utf8(chunk) else { continue };
        let field = |from: usize, to: usize| u32::from_str_radix(&chunk[from..to], 16).ok();
        let (Some(minute), Some(cpu), Some(memory), Some(disk), Some(load)) =
            (field(0, 2), field(2, 5), field(5, 8), field(8, 11), field(11, 15))
        else {
            continue;
        };
        if minute >= 60 {
            continue;
        }
        let percent = |v: u32| (v != NO_PERCENT).then(|| f64::from(v) / 10.0);
        let sample = MetricSample {
            at_ms: hour * HOUR_MS + i64::from(minute) * MINUTE_MS,
            cpu_percent: percent(cpu),
            memory_percent: percent(memory),
            disk_percent: percent(disk),
            load_1m: (load != NO_LOAD).then(|| f64::from(load) / 100.0),
        };
        match out[start..].iter_mut().find(|s| s.at_ms == sample.at_ms) {
            Some(same_minute) => *same_minute = sample,
            None => out.push(sample),
        }
    }
    out[start..].sort_by_key(|s| s.at_ms);
}

impl super::servers::Servers<'_> {
    /// The server's samples taken at or after `since_ms`, oldest first; empty for an unknown
    /// server or another account's.
    pub async fn metrics_history(&self, id: &ServerId, since_ms: i64) -> Result<Vec<MetricSample>, MttrlyError> {
        let (account, id) = (self.account.id.clone(), id.clone());
        self.account.db.sqlite.read(move |conn| sqlite::metrics::history(conn, &account, &id, since_ms)).await
    }
}

impl Maintenance<'_> {
    /// Deletes the metrics samples of every hour that ended before `before_ms`; returns how many
    /// hour rows went.
    pub async fn purge_metrics(&self, before_ms: i64) -> Result<usize, MttrlyError> {
        self.db.sqlite.call(move |conn| sqlite::metrics::purge(conn, before_ms)).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mttrly_core::{Environment, Plan};

    use super::*;
    use crate::db::Db;
    use crate::db::servers::Registered;

    fn sample_at(out: &[MetricSample], at: i64) -> MetricSample {
        *out.iter().find(|s| s.at_ms == at).unwrap()
    }

    #[test]
    fn a_stored_hour_decodes_with_its_gaps_and_missing_fields() {
        // Minute 3: 12.5 % CPU, 50 %, 99.9 %, load 1.25; minute 4: nothing reported but CPU;
        // minute 3 again (a restart within the minute): replaces the first; then garbage.
        let row = ["0307d1f43e7007d", "04064ffffffffff", "030c81f43e800ff", "zz"].concat();
        let mut out = Vec::new();
        decode(10, &row, &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        let first = sample_at(&out, 10 * HOUR_MS + 3 * MINUTE_MS);
        assert_eq!(first.cpu_percent, Some(20.0), "the later sample of minute 3 wins");
        assert_eq!(first.memory_percent, Some(50.0));
        assert_eq!(first.disk_percent, Some(100.0));
        assert_eq!(first.load_1m, Some(2.55));
        let second = sample_at(&out, 10 * HOUR_MS + 4 * MINUTE_MS);
        assert_eq!(second.cpu_percent, Some(10.0));
        assert_eq!((second.memory_percent, second.disk_percent, second.load_1m), (None, None, None));
    }

    async fn server(db: &Db, account: &mttrly_core::ids::AccountId, name: &str) -> ServerId {
        let servers = db.account(account).servers();
        let Registered::Added(id) = servers
            .register(name, Environment::Production, &[u8::try_from(name.len()).unwrap(); 32], i64::MAX, 10)
            .await
            .unwrap()
        else {
            panic!("under the limit")
        };
        id
    }

    fn metrics(cpu: f64, disks: &[f64]) -> String {
        let filesystems: Vec<_> = disks
            .iter()
            .map(|d| serde_json::json!({"mount_point": "/", "fs_type": "ext4", "total_bytes": 100, "used_bytes": 1, "used_percent": d}))
            .collect();
        serde_json::json!({"cpu_percent": cpu, "memory_percent": 33.33, "load_average": [1.5, 1.0, 0.5], "filesystems": filesystems})
            .to_string()
    }

    #[tokio::test]
    async fn the_flush_samples_fresh_servers_and_retention_prunes_old_hours() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("central.db")).unwrap();
        let (account, _) = db.create_tenant("a", Plan::DeploymentCrew, "admin", &[1; 32]).await.unwrap();
        let (other, _) = db.create_tenant("b", Plan::DeploymentCrew, "admin", &[2; 32]).await.unwrap();
        let (web, quiet, theirs) =
            (server(&db, &account, "web").await, server(&db, &account, "quiet").await, server(&db, &other, "x").await);
        let now = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS + 30 * MINUTE_MS;
        let day_ago = now - 25 * HOUR_MS;
        // A day ago: both seen (web with a 150 % CPU reading, clamped); now: only web is.
        db.fleet()
            .flush_heartbeats(
                vec![(web.clone(), day_ago, metrics(150.0, &[])), (quiet.clone(), day_ago, metrics(5.0, &[1.0]))],
                Some(day_ago),
            )
            .await
            .unwrap();
        db.fleet()
            .flush_heartbeats(vec![(web.clone(), now - 5_000, metrics(12.34, &[40.0, 91.26]))], Some(now - MINUTE_MS))
            .await
            .unwrap();
        db.fleet().flush_heartbeats(vec![(theirs.clone(), now, metrics(1.0, &[]))], Some(now)).await.unwrap();

        let servers = db.account(&account).servers();
        let web_history = servers.metrics_history(&web, 0).await.unwrap();
        assert_eq!(web_history.len(), 3, "a day ago, a minute ago, now: {web_history:?}");
        assert_eq!(web_history[0].cpu_percent, Some(100.0), "clamped");
        assert_eq!(web_history[0].disk_percent, None, "no filesystem reported");
        let last = web_history[2];
        assert_eq!(last.at_ms, now);
        assert_eq!(last.cpu_percent, Some(12.3));
        assert_eq!(last.memory_percent, Some(33.3));
        assert_eq!(last.disk_percent, Some(91.3), "the fullest disk");
        assert_eq!(last.load_1m, Some(1.5));
        assert_eq!(servers.metrics_history(&quiet, 0).await.unwrap().len(), 1, "not heard from since a day ago");
        assert!(servers.metrics_history(&theirs, 0).await.unwrap().is_empty(), "another account's server");
        assert_eq!(servers.metrics_history(&web, now - MINUTE_MS).await.unwrap().len(), 2, "since a minute ago");

        let removed = db.maintenance().purge_metrics(now - KEPT_MS).await.unwrap();
        assert_eq!(removed, 2, "the hour rows of a day ago, web's and quiet's");
        assert_eq!(servers.metrics_history(&web, 0).await.unwrap().len(), 2, "the last day is kept");
        assert!(servers.metrics_history(&quiet, 0).await.unwrap().is_empty());
        assert_eq!(db.account(&other).servers().metrics_history(&theirs, 0).await.unwrap().len(), 1);
    }
}
