//! Redactor throughput on typical log text, one core, with the full rule set: nginx access lines,
//! syslog lines (with `session`, a credential word), an application log with JSON, and one
//! secret of a rotating class every 500 lines (URL password, Authorization header, AWS key, JSON
//! password, a private key block). Then one long line dense with credential words (a minified
//! JSON answer of 12,000 records, each with a password, a token and an API key), whose cost must
//! grow with its length, not with its length squared.
//!
//! cargo bench -p mttrly-core --bench redactor

#![allow(clippy::cast_precision_loss)]

use std::hint::black_box;
use std::time::Instant;

use mttrly_core::redactor::redact;

/// One of these every 500 lines.
const SECRETS: &[&str] = &[
    "DATABASE_URL=postgres://app:s3cr3t@db:5432/app\n",
    "{\"headers\":{\"Authorization\":\"Bearer 9x9rhI7j9yrF2aCaWI3ped2SGNpfe9ifijP01anF\"}}\n",
    "aws_access_key_id=AKIAIOSFODNN7EXAMPLE\n",
    "{\"user\":\"app\",\"password\":\"hunter2 with spaces\"}\n",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----\n",
];

fn log(lines: usize) -> String {
    let mut out = String::with_capacity(lines * 120);
    for i in 0..lines {
        let line = match i % 4 {
            0 => format!(
                "10.0.{}.{} - - [21/Nov/2026:12:00:{:02} +0000] \"GET /api/v1/items/{i}?page=2 HTTP/1.1\" 200 {} \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\"\n",
                i % 255,
                (i / 255) % 255,
                i % 60,
                512 + i % 4096
            ),
            1 => format!("Nov 21 12:00:{:02} web-1 systemd[1]: Started session {i} of user deploy.\n", i % 60),
            2 => format!(
                "{{\"level\":\"info\",\"ts\":\"2026-11-21T12:00:00Z\",\"msg\":\"request done\",\"request_id\":\"7f9c2ba4-e88f-4f3a-9b8e-{i:012}\",\"duration_ms\":{}}}\n",
                i % 900
            ),
            _ => format!(
                "2026-11-21 12:00:00,{:03} WARN  [worker-{}] retrying job {i} after timeout (attempt 2/5)\n",
                i % 1000,
                i % 16
            ),
        };
        out.push_str(&line);
        if i % 500 == 0 {
            out.push_str(SECRETS[(i / 500) % SECRETS.len()]);
        }
    }
    out
}

/// This process's resident memory in KiB (`VmRSS`), where `/proc` has it.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()
}

fn main() {
    let text = log(400_000);
    let mb = text.len() as f64 / 1e6;
    // What the first redaction of a process costs (the engine is built then, and each rule's
    // pattern the first time its keyword occurs): one line with a password, then the sample,
    // which meets every class the log rotates through.
    let (before, started) = (rss_kib(), Instant::now());
    black_box(redact(black_box("connecting with password=hunter2hunter2")));
    let first = started.elapsed();
    let after_one = rss_kib();
    black_box(redact(&text[..10_000]));
    let after_sample = rss_kib();
    if let (Some(b), Some(o), Some(s)) = (before, after_one, after_sample) {
        println!(
            "first redaction: {:.1} ms, resident memory +{:.1} MB; after a 10 KB log sample +{:.1} MB",
            first.as_secs_f64() * 1e3,
            (o.saturating_sub(b)) as f64 / 1024.0,
            (s.saturating_sub(b)) as f64 / 1024.0
        );
    }
    let rounds = 3;
    let started = Instant::now();
    let mut hits = 0;
    for _ in 0..rounds {
        let r = redact(black_box(&text));
        hits = r.hits.iter().map(|h| h.count).sum::<u32>();
        black_box(r);
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "redactor: {:.1} MB x {rounds} in {took:.2}s = {:.0} MB/s ({hits} secrets redacted per pass)",
        mb,
        mb * f64::from(rounds) / took
    );

    let records: Vec<String> = (0..12_000)
        .map(|i| format!(r#"{{"id":{i},"password":"pw{i:06}Xy","token":"t{i:08}Q","api_key":"k{i}Zz9"}}"#))
        .collect();
    let line = format!("[{}]", records.join(","));
    let started = Instant::now();
    let r = redact(black_box(&line));
    let took = started.elapsed().as_secs_f64();
    let hits = r.hits.iter().map(|h| h.count).sum::<u32>();
    println!(
        "one line of minified JSON: {:.2} MB in {:.0} ms = {:.1} MB/s ({hits} secrets redacted)",
        line.len() as f64 / 1e6,
        took * 1e3,
        line.len() as f64 / 1e6 / took
    );
}
