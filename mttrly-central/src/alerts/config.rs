//! `[alerts.RULE]`: a deployment's own thresholds for the built-in alert rules.
//!
//! Only the rules' numbers are configurable, never what they measure: a rule is named by its
//! stable id, and an unknown id is refused at start so a typo never leaves a default in force.

use std::collections::BTreeMap;
use std::time::Duration;

use mttrly_core::{ErrorCode, MttrlyError};
use serde::{Deserialize, Serialize};

use mttrly_core::ids::{AlertId, ServerId};

use super::rules::{AlertRule, Measure, default_rules};
use crate::db::alerts::AlertChange;

/// One rule's overrides; a key left out keeps the built-in value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleOverride {
    /// `false` turns the rule off: no alert opens, and one it opened resolves when central starts.
    pub enabled: Option<bool>,
    /// Opens at or above this percentage (0 < threshold ≤ 100).
    pub threshold: Option<f64>,
    /// Resolves below this percentage (at most `threshold`).
    pub clear_below: Option<f64>,
    /// The measure must stay at or above the threshold this long (0 to 86400).
    pub sustained_seconds: Option<u32>,
}

/// `[alerts]`: overrides by rule id (`disk_usage`, `disk_usage_critical`, `memory`,
/// `cpu_sustained`, `agent_offline`).
pub type AlertsConfig = BTreeMap<String, RuleOverride>;

fn invalid(message: String) -> MttrlyError {
    MttrlyError::new(ErrorCode::ValidationError, message)
}

/// The rules in force: the built-in ones with `config` applied, disabled ones left out.
pub fn rules(config: &AlertsConfig) -> Result<Vec<AlertRule>, MttrlyError> {
    let defaults = default_rules();
    if let Some(unknown) = config.keys().find(|id| !defaults.iter().any(|r| r.id == id.as_str())) {
        let known: Vec<&str> = defaults.iter().map(|r| r.id).collect();
        return Err(invalid(format!("[alerts.{unknown}]: no such alert rule (the rules are {})", known.join(", "))));
    }
    let mut out = Vec::with_capacity(defaults.len());
    for mut rule in defaults {
        let Some(o) = config.get(rule.id) else {
            out.push(rule);
            continue;
        };
        if rule.measure == Measure::AgentOffline && (o.threshold.is_some() || o.clear_below.is_some()) {
            return Err(invalid(format!(
                "[alerts.{}]: an offline agent has no percentage; only `enabled` and `sustained_seconds` apply",
                rule.id
            )));
        }
        if let Some(t) = o.threshold {
            if !(t > 0.0 && t <= 100.0) {
                return Err(invalid(format!(
                    "[alerts.{}] threshold must be above 0 and at most 100 (got {t})",
                    rule.id
                )));
            }
            rule.threshold = t;
            // A raised threshold with the built-in clear level keeps its hysteresis gap below it.
            if o.clear_below.is_none() {
                rule.clear_below = rule.clear_below.min(t);
            }
        }
        if let Some(c) = o.clear_below {
            if !(0.0..=rule.threshold).contains(&c) {
                return Err(invalid(format!(
                    "[alerts.{}] clear_below must be between 0 and the threshold {} (got {c})",
                    rule.id, rule.threshold
                )));
            }
            rule.clear_below = c;
        }
        if let Some(s) = o.sustained_seconds {
            if s > 86_400 {
                return Err(invalid(format!("[alerts.{}] sustained_seconds must be at most 86400 (got {s})", rule.id)));
            }
            rule.sustained = Duration::from_secs(u64::from(s));
        }
        if o.enabled != Some(false) {
            out.push(rule);
        }
    }
    Ok(out)
}

/// Resolutions for the open alerts (`(server, rule, subject, id)`) that a built-in rule opened
/// and that is no longer in force. Alerts from monitoring carry other rule names and are kept.
pub fn disabled_alerts(
    in_force: &[AlertRule],
    open: &[(ServerId, String, String, AlertId)],
    now_ms: i64,
) -> Vec<AlertChange> {
    let builtin = default_rules();
    open.iter()
        .filter(|(_, rule, _, _)| {
            builtin.iter().any(|r| r.id == rule.as_str()) && !in_force.iter().any(|r| r.id == rule.as_str())
        })
        .map(|(_, _, _, id)| AlertChange::Resolve(id.clone(), now_ms))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> AlertsConfig {
        toml::from_str(toml_text).expect("valid TOML")
    }

    #[test]
    fn overrides_apply_and_disabled_rules_are_left_out() {
        let cfg =
            parse("[disk_usage]\nthreshold = 92\n[memory]\nenabled = false\n[cpu_sustained]\nsustained_seconds = 60\n");
        let rules = rules(&cfg).expect("valid");
        let disk = rules.iter().find(|r| r.id == "disk_usage").expect("disk rule");
        assert_eq!((disk.threshold, disk.clear_below), (92.0, 80.0));
        assert!(rules.iter().all(|r| r.id != "memory"));
        let cpu = rules.iter().find(|r| r.id == "cpu_sustained").expect("cpu rule");
        assert_eq!(cpu.sustained, Duration::from_secs(60));
        assert_eq!(rules.len(), default_rules().len() - 1);
    }

    #[test]
    fn only_alerts_of_disabled_built_in_rules_resolve() {
        let rules = rules(&parse("[disk_usage]\nenabled = false\n")).expect("valid");
        let server = ServerId::generate();
        let (a, b, c) = (AlertId::generate(), AlertId::generate(), AlertId::generate());
        let open = vec![
            (server.clone(), "disk_usage".to_owned(), "/".to_owned(), a.clone()),
            (server.clone(), "memory".to_owned(), "memory".to_owned(), b),
            (server, "HighLatency".to_owned(), "api".to_owned(), c),
        ];
        assert_eq!(disabled_alerts(&rules, &open, 7), vec![AlertChange::Resolve(a, 7)]);
    }

    #[test]
    fn a_lowered_threshold_pulls_the_clear_level_under_it() {
        let rules = rules(&parse("[disk_usage]\nthreshold = 50\n")).expect("valid");
        let disk = rules.iter().find(|r| r.id == "disk_usage").expect("disk rule");
        assert_eq!((disk.threshold, disk.clear_below), (50.0, 50.0));
    }

    #[test]
    fn bad_overrides_are_refused_with_the_rule_named() {
        for (text, needle) in [
            ("[disk]\nthreshold = 90\n", "no such alert rule"),
            ("[disk_usage]\nthreshold = 0\n", "threshold must be above 0"),
            ("[disk_usage]\nthreshold = 101\n", "threshold must be above 0"),
            ("[disk_usage]\nthreshold = nan\n", "threshold must be above 0"),
            ("[disk_usage]\nthreshold = 80\nclear_below = 81\n", "clear_below must be between 0 and the threshold 80"),
            ("[memory]\nsustained_seconds = 86401\n", "sustained_seconds must be at most 86400"),
            ("[agent_offline]\nthreshold = 50\n", "an offline agent has no percentage"),
        ] {
            let err = rules(&parse(text)).expect_err(text);
            assert_eq!(err.code(), ErrorCode::ValidationError);
            assert!(err.message().contains(needle), "{text}: {}", err.message());
        }
        assert!(toml::from_str::<AlertsConfig>("[disk_usage]\nthreshhold = 90\n").is_err(), "a typo is refused");
    }
}
