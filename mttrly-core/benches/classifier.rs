//! Classifier throughput on typical commands (read-only and not), one core.
//!
//! cargo bench -p mttrly-core --bench classifier

#![allow(clippy::cast_precision_loss)]

use std::hint::black_box;
use std::time::Instant;

use mttrly_core::classifier::classify;

const TYPICAL: &[&str] = &[
    "uptime",
    "df -h",
    "free -m",
    "ps aux",
    "systemctl status nginx",
    "journalctl -u nginx --since '10 min ago' -n 200",
    "docker ps -a",
    "ls -la /var/log/nginx",
    "systemctl restart nginx",
    "rm -rf /tmp/cache",
    "tail -n 100 /var/log/syslog | grep error",
    "docker logs --tail 100 web",
    "tail -n 200 /var/log/nginx/error.log",
    "grep -i -c timeout /var/log/syslog",
    "ss -tlnpD/tmp/x",
    "kubectl get pods -A -o wide",
];

fn main() {
    let rounds = 200_000;
    // Warm up.
    for cmd in TYPICAL {
        black_box(classify(cmd));
    }
    let started = Instant::now();
    for _ in 0..rounds {
        for cmd in TYPICAL {
            black_box(classify(black_box(cmd)));
        }
    }
    let took = started.elapsed();
    let n = rounds * TYPICAL.len();
    let per_sec = n as f64 / took.as_secs_f64();
    println!(
        "classifier: {n} classifications in {:.2}s = {per_sec:.0}/s ({:.0} ns each)",
        took.as_secs_f64(),
        took.as_nanos() as f64 / n as f64
    );
}
