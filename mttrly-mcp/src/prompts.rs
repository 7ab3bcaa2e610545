//! Prompts: the incident-investigation checklist, as the seed's response flow.

use rmcp::model::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Role};

/// The prompt's name.
pub(crate) const INCIDENT_INVESTIGATION: &str = "incident-investigation";

/// Every prompt this server offers.
pub(crate) fn list() -> Vec<Prompt> {
    let mut server = PromptArgument::new("server");
    server.description = Some("The affected server's name or id, if known.".to_owned());
    server.required = Some(false);
    let mut symptom = PromptArgument::new("symptom");
    symptom.description = Some("What is wrong, in the reporter's words.".to_owned());
    symptom.required = Some(false);
    let mut prompt = Prompt::new(
        INCIDENT_INVESTIGATION,
        Some(
            "Investigate a live incident with mttrly: diagnose, propose a bounded fix, get a human's approval, verify.",
        ),
        Some(vec![server, symptom]),
    );
    prompt.title = Some("Incident investigation".to_owned());
    vec![prompt]
}

/// The checklist, with the arguments filled in where given.
pub(crate) fn incident_investigation(server: Option<&str>, symptom: Option<&str>) -> GetPromptResult {
    let target = server.map_or_else(|| "the affected server".to_owned(), |s| format!("server `{s}`"));
    let symptom = symptom.map_or_else(String::new, |s| format!("\nReported symptom: {s}\n"));
    let text = format!(
        "You are investigating a live incident on {target} with mttrly.{symptom}
Follow this checklist, in order, and tell the user what you found at each step:

1. Capabilities: call `mttrly_get_capabilities` to learn the plan, the tools that are on and why others are off.
2. Alerts: call `mttrly_list_servers` to find the server id, then `mttrly_get_alerts` and `mttrly_get_server_status` (or `mttrly_quick_triage`).
3. Recent deploys and changes: read `mttrly_get_audit_log` for the server; recent changes are the usual suspects.
4. Diagnostics: run read-only checks (`mttrly_run_diagnostic` where available, or read-only `mttrly_execute_command` such as `systemctl status`, `df -h`, `journalctl -n 200`). Read-only commands run at once.
5. Playbooks: prefer a built-in playbook (`mttrly_list_playbooks`) over an ad-hoc command for the fix; explain its blast radius.
6. Approval: anything that changes the server becomes a pending action. Show the user the action id, the exact command or playbook and the server's environment. Only a human decides, outside this conversation: ask them to run `mttrly-cli actions approve ID` (or `reject`) themselves; mttrly_approve_action never decides, it answers with that command. Never claim the user approved; never retry to get around a refusal. You may withdraw a request you made in this session with mttrly_cancel_action.
7. Verify: after it ran, read `mttrly_get_action_result`, re-check the symptom (status, alerts, the same read-only probes) and summarise what changed.
"
    );
    GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
        .with_description("The mttrly incident-response checklist")
}
