//! Puts a brief together from what the store read: one line per entity, in a stable order.
//!
//! Deterministic: the same rows give the same brief, field for field. Anomalies are grouped per
//! (server, metric) so a metric that fired five times overnight is one line with a count, and
//! ordered most severe first, then by time, server and metric; alerts most severe first, then
//! oldest first; everything else oldest first, ties broken by id.

use std::collections::BTreeMap;

use mttrly_core::tools::proactive::{BriefAnomaly, BriefMute, MorningBrief};

use crate::db::proactive::BriefRows;
use crate::db::timestamp;

/// The brief of `rows`.
pub fn assemble(rows: BriefRows) -> MorningBrief {
    let mut grouped: BTreeMap<(String, String), BriefAnomaly> = BTreeMap::new();
    // Rows come oldest first: the last one seen per entity is its latest.
    for event in rows.events {
        let key = (event.server_id.as_str().to_owned(), event.metric.clone());
        match grouped.get_mut(&key) {
            Some(group) => {
                group.occurrences = group.occurrences.saturating_add(1);
                group.latest = event;
            }
            None => {
                grouped.insert(key, BriefAnomaly { latest: event, occurrences: 1 });
            }
        }
    }
    let mut anomalies: Vec<BriefAnomaly> = grouped.into_values().collect();
    anomalies.sort_by(|a, b| {
        b.latest
            .severity
            .cmp(&a.latest.severity)
            .then(a.latest.detected_at.cmp(&b.latest.detected_at))
            .then_with(|| a.latest.server_id.as_str().cmp(b.latest.server_id.as_str()))
            .then_with(|| a.latest.metric.cmp(&b.latest.metric))
    });
    let muted = rows
        .mutes
        .into_iter()
        .map(|m| BriefMute {
            server_id: m.server_id,
            detector: m.detector,
            metric: m.metric,
            reason: m.reason,
            muted_until: timestamp(m.muted_until),
            muted_events: m.muted_events,
            latest_event_id: m.latest_event_id,
        })
        .collect();
    let mut open_alerts = rows.alerts;
    open_alerts.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.opened_at.cmp(&b.opened_at))
            .then_with(|| a.alert_id.as_str().cmp(b.alert_id.as_str()))
    });
    MorningBrief {
        since: timestamp(rows.since),
        generated_at: timestamp(rows.now),
        next_since: timestamp(rows.until),
        more: rows.until < rows.now,
        more_items: rows.more_items,
        first_brief: rows.first,
        anomalies,
        muted,
        open_alerts,
        actions: rows.actions,
        deploys: rows.deploys,
        knowledge: rows.knowledge,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mttrly_core::ids::{EventId, ServerId};
    use mttrly_core::tools::common::Severity;
    use mttrly_core::tools::proactive::{EventState, ProactiveEvent};

    use super::*;

    fn event(server: &ServerId, metric: &str, severity: Severity, at: i64) -> ProactiveEvent {
        ProactiveEvent {
            event_id: EventId::generate(),
            server_id: server.clone(),
            detector: "ewma+mad".into(),
            metric: metric.into(),
            severity,
            summary: String::new(),
            value: 1.0,
            baseline: 0.0,
            intervals: 3,
            detected_at: timestamp(at),
            state: EventState::New,
            muted_until: None,
            suggestion: None,
        }
    }

    fn rows(events: Vec<ProactiveEvent>) -> BriefRows {
        BriefRows {
            since: 0,
            until: 100,
            now: 100,
            first: true,
            more_items: 0,
            events,
            mutes: Vec::new(),
            alerts: Vec::new(),
            actions: Vec::new(),
            deploys: Vec::new(),
            knowledge: Vec::new(),
        }
    }

    #[test]
    fn one_line_per_entity_with_its_latest_event_and_count() {
        let (a, b) = (ServerId::generate(), ServerId::generate());
        let events = vec![
            event(&a, "cpu_percent", Severity::Info, 1),
            event(&b, "cpu_percent", Severity::Warning, 2),
            event(&a, "cpu_percent", Severity::Warning, 3),
            event(&a, "load_1", Severity::Info, 4),
        ];
        let latest_a_cpu = events[2].event_id.clone();
        let brief = assemble(rows(events));
        assert_eq!(brief.anomalies.len(), 3);
        let a_cpu =
            brief.anomalies.iter().find(|x| x.latest.server_id == a && x.latest.metric == "cpu_percent").unwrap();
        assert_eq!((a_cpu.occurrences, &a_cpu.latest.event_id), (2, &latest_a_cpu));
        // Most severe first (both warnings, by time), then the info line.
        let order: Vec<_> = brief.anomalies.iter().map(|x| (x.latest.severity, x.latest.detected_at)).collect();
        assert_eq!(
            order,
            [(Severity::Warning, timestamp(2)), (Severity::Warning, timestamp(3)), (Severity::Info, timestamp(4))]
        );
    }

    #[test]
    fn the_same_rows_give_the_same_brief() {
        let a = ServerId::generate();
        let events: Vec<_> =
            (0..20).map(|i| event(&a, &format!("m{}", i % 4), Severity::Info, i64::from(i % 3))).collect();
        assert_eq!(assemble(rows(events.clone())), assemble(rows(events)));
    }
}
