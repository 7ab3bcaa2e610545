//! `GET /audit.csv` and `GET /audit.json`: every row matching the page's filters, newest first,
//! as a download.
//!
//! Streamed, not capped: a task reads the log in pages of [`CHUNK`] rows by sequence number
//! (keyset paging, each page one short read) and sends each page as it is formatted, so a month
//! of a busy account downloads whole with bounded memory. Rows appended during the download are
//! newer than its first page and are not in it: the file is the log as of its first read. If a
//! read fails midway the response body ends with an error, so the client's download fails
//! visibly (an incomplete chunked body) instead of ending in a file that looks complete.
//!
//! CSV (RFC 4180: every field quoted, quotes doubled, CRLF between records) neutralises
//! spreadsheet formulas: a text cell starting with `=`, `+`, `-`, `@`, a tab or a CR gets a
//! leading `'`, so opening the file in a spreadsheet never runs what an assistant or a server
//! wrote. JSON is an array of the objects `mttrly_get_audit_log` and gRPC `ListAudit` return
//! (`AuditEntry`), values exactly as stored (already redacted when recorded).

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mttrly_core::MttrlyError;
use mttrly_core::audit::{AuditActor, AuditOutcome};
use mttrly_core::tools::actions::AuditEntry;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::super::layout;
use crate::app_state::AppState;
use crate::db::audit::AuditFilter;
use crate::signin::web::SignedIn;

/// Rows per read.
const CHUNK: u32 = 1000;

/// The CSV columns, in order.
const CSV_HEADER: [&str; 13] = [
    "seq",
    "at",
    "actor",
    "actor_type",
    "actor_user_id",
    "assistant_session_id",
    "source",
    "kind",
    "subject",
    "server_id",
    "outcome",
    "duration_ms",
    "parameters",
];

/// The two formats.
#[derive(Clone, Copy)]
enum Format {
    Csv,
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8; header=present",
            Self::Json => "application/json",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
        }
    }

    /// What comes before the first row.
    fn start(self) -> String {
        match self {
            Self::Csv => record(CSV_HEADER.iter().map(|h| (*h).to_owned())),
            Self::Json => "[".to_owned(),
        }
    }

    /// One row; `first`: no separator before it.
    fn row(self, e: &AuditEntry, first: bool, out: &mut String) {
        match self {
            Self::Csv => out.push_str(&record(csv_fields(e))),
            Self::Json => {
                if !first {
                    out.push(',');
                }
                out.push('\n');
                // An `AuditEntry` always serialises (plain data, string keys).
                out.push_str(&serde_json::to_string(e).unwrap_or_else(|_| "null".to_owned()));
            }
        }
    }

    /// What comes after the last row.
    fn end(self) -> &'static str {
        match self {
            Self::Csv => "",
            Self::Json => "\n]\n",
        }
    }
}

/// `GET /audit.csv`.
pub(in crate::dashboard) async fn csv(state: State<AppState>, signed: SignedIn, raw: RawQuery) -> Response {
    export(state, signed, raw, Format::Csv).await
}

/// `GET /audit.json`.
pub(in crate::dashboard) async fn json(state: State<AppState>, signed: SignedIn, raw: RawQuery) -> Response {
    export(state, signed, raw, Format::Json).await
}

async fn export(State(state): State<AppState>, signed: SignedIn, RawQuery(raw): RawQuery, format: Format) -> Response {
    let filter = match super::filter_of(&state, &signed, raw.as_deref()).await {
        Ok(f) => f,
        Err(e) if super::is_refusal(&e) => return super::refused(&state, &signed, raw.as_deref(), &e).await,
        Err(e) => return layout::failed(&signed, &layout::Live::Audit, false, &e),
    };
    state.central.audit.flush().await;
    let (tx, rx) = mpsc::channel::<Result<String, std::io::Error>>(4);
    tokio::spawn(stream(state, signed, filter, format, tx));
    let mut response = (StatusCode::OK, Body::from_stream(ReceiverStream::new(rx))).into_response();
    let h = response.headers_mut();
    layout::secure(h);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    let name = format!("mttrly-audit-{}.{}", jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ"), format.extension());
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// Reads the rows page by page and sends them formatted, until the last page, a failed read
/// (sent as the body's error) or the client going away.
async fn stream(
    state: AppState,
    signed: SignedIn,
    filter: AuditFilter,
    format: Format,
    tx: mpsc::Sender<Result<String, std::io::Error>>,
) {
    if tx.send(Ok(format.start())).await.is_err() {
        return;
    }
    let audit = state.central.db.account(&signed.account_id);
    let mut page = AuditFilter { limit: CHUNK, ..filter };
    let mut first = true;
    let mut undecodable = 0u64;
    loop {
        // The download outlives no session: before each chunk after the first, the person must
        // still be signed in (signed out, session expired, or removed from the account ends it,
        // as an error). One indexed read per thousand rows.
        if !first && !signed.still_valid(&state).await {
            let _ = tx
                .send(Err(std::io::Error::other("the session ended during the export: the file is incomplete")))
                .await;
            return;
        }
        let rows = match audit.audit().page(&page).await {
            Ok(rows) => rows,
            Err(e) => {
                let _ = tx.send(Err(broken(&e))).await;
                return;
            }
        };
        undecodable += u64::from(rows.undecodable);
        let mut chunk = String::new();
        for e in &rows.entries {
            format.row(e, first, &mut chunk);
            first = false;
        }
        if !chunk.is_empty() && tx.send(Ok(chunk)).await.is_err() {
            return;
        }
        match rows.older(CHUNK) {
            Some(older) => page.before_seq = Some(older),
            None => break,
        }
    }
    if undecodable > 0 {
        tracing::warn!(account = %signed.account_id, undecodable, "an audit export left out rows that do not decode");
    }
    let _ = tx.send(Ok(format.end().to_owned())).await;
}

/// The body error of a failed read (the detail goes to the log, not into the file).
fn broken(e: &MttrlyError) -> std::io::Error {
    tracing::warn!(error = %mttrly_core::ErrorChain(e), "audit export failed midway");
    std::io::Error::other("the audit export failed midway: the file is incomplete")
}

/// One CSV record: every field quoted (quotes doubled), CRLF at the end.
fn record(fields: impl IntoIterator<Item = String>) -> String {
    let mut out = String::new();
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(&f.replace('"', "\"\""));
        out.push('"');
    }
    out.push_str("\r\n");
    out
}

/// A text cell a spreadsheet would read as a formula (or, after a tab or CR, as the start of
/// one) gets a leading `'`, which spreadsheets show as text.
fn inert(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{cell}") } else { cell.to_owned() }
}

/// A row's CSV fields, in [`CSV_HEADER`] order.
fn csv_fields(e: &AuditEntry) -> Vec<String> {
    let (shown, kind, user, session) = match &e.actor {
        AuditActor::Human { user_id, name } => (name.clone(), "human", user_id.to_string(), String::new()),
        AuditActor::Assistant { session_id, client_name, on_behalf_of } => {
            (format!("assistant:{client_name}"), "assistant", on_behalf_of.to_string(), session_id.to_string())
        }
        AuditActor::Agent { .. } => ("agent".to_owned(), "agent", String::new(), String::new()),
        AuditActor::System => ("system".to_owned(), "system", String::new(), String::new()),
    };
    let outcome = match e.outcome {
        AuditOutcome::Ok => "ok",
        AuditOutcome::Error { code } => code.as_str(),
    };
    vec![
        e.seq.to_string(),
        e.at.to_string(),
        inert(&shown),
        kind.to_owned(),
        inert(&user),
        inert(&session),
        e.source.as_str().to_owned(),
        e.kind.as_str().to_owned(),
        inert(&e.subject),
        e.server_id.as_ref().map_or_else(String::new, |s| inert(s.as_str())),
        outcome.to_owned(),
        e.duration_ms.map_or_else(String::new, |d| d.to_string()),
        inert(&e.parameters.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised_and_every_field_is_quoted() {
        for hostile in ["=HYPERLINK(\"x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert!(inert(hostile).starts_with('\''), "{hostile:?}");
        }
        assert_eq!(inert("mttrly_list_servers"), "mttrly_list_servers");
        assert_eq!(
            record(["a\"b".to_owned(), "c,d".to_owned(), "e\r\nf".to_owned()]),
            "\"a\"\"b\",\"c,d\",\"e\r\nf\"\r\n"
        );
    }
}
