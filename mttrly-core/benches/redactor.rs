//! Redactor throughput on typical log text, one core: nginx access lines, syslog lines, an
//! application log with JSON, and one secret every 500 lines.
//!
//! cargo bench -p mttrly-core --bench redactor

#![allow(clippy::cast_precision_loss)]

use std::hint::black_box;
use std::time::Instant;

use mttrly_core::redactor::redact;

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
            out.push_str("DATABASE_URL=postgres://app:s3cr3t@db:5432/app\n");
        }
    }
    out
}

fn main() {
    let text = log(400_000);
    let mb = text.len() as f64 / 1e6;
    black_box(redact(&text[..10_000]));
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
}
