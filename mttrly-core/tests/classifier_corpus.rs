//! The classifier corpus (`classifier_corpus.txt`): every row's verdict, with the file checks of a
//! temporary policy whose fixtures include the hostile cases (outside file, hard link, symlink,
//! FIFO, directory, env file, missing file).

use std::collections::BTreeMap;
use std::path::Path;

use mttrly_core::classifier::{CommandClass, RulesChecker, classify, classify_with};
use mttrly_core::files::{FilePolicy, FileRules};

struct Fixture {
    _dir: tempfile::TempDir,
    rules: FileRules,
    vars: Vec<(&'static str, String)>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = std::fs::canonicalize(dir.path()).expect("canonical temp dir");
    let logs = root.join("logs");
    std::fs::create_dir_all(logs.join("dir")).expect("logs dir");
    let p = |name: &str| logs.join(name).to_string_lossy().into_owned();
    std::fs::write(logs.join("app.log"), "error: connection refused\n").expect("log");
    std::fs::write(logs.join("other.log"), "timeout\n").expect("log");
    std::fs::write(root.join("secret.txt"), "TOPSECRET\n").expect("outside file");
    std::fs::write(logs.join("app.env"), "DB_PASSWORD=x\n").expect("env file");
    std::fs::hard_link(root.join("secret.txt"), logs.join("hard.log")).expect("hard link");
    std::os::unix::fs::symlink(root.join("secret.txt"), logs.join("link.log")).expect("symlink");
    let fifo = std::process::Command::new("mkfifo").arg(logs.join("fifo.log")).status().expect("mkfifo");
    assert!(fifo.success());
    let policy = FilePolicy {
        file_roots: vec![format!("{}/**", logs.display())],
        env_files: BTreeMap::from([("app".to_owned(), p("app.env"))]),
        ..FilePolicy::default()
    };
    let rules = FileRules::new(policy).expect("rules");
    let vars = vec![
        ("{LOG}", p("app.log")),
        ("{LOG2}", p("other.log")),
        ("{OUT}", root.join("secret.txt").to_string_lossy().into_owned()),
        ("{HARD}", p("hard.log")),
        ("{LINK}", p("link.log")),
        ("{FIFO}", p("fifo.log")),
        ("{DIR}", p("dir")),
        ("{ENV}", p("app.env")),
        ("{MISSING}", p("missing.log")),
    ];
    Fixture { _dir: dir, rules, vars }
}

fn rows() -> Vec<(CommandClass, String)> {
    let text = include_str!("classifier_corpus.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (verdict, command) = l.split_once(' ').unwrap_or((l, ""));
            let class = match verdict {
                "read_only" => CommandClass::ReadOnly,
                "needs_approval" => CommandClass::NeedsApproval,
                other => panic!("corpus row with an unknown verdict `{other}`: {l}"),
            };
            (class, command.to_owned())
        })
        .collect()
}

#[test]
fn every_corpus_row_gets_its_verdict() {
    let fx = fixture();
    let rows = rows();
    assert!(rows.len() >= 400, "the corpus has {} rows", rows.len());
    let mut wrong = Vec::new();
    for (expect, template) in &rows {
        let mut command = template.clone();
        for (var, value) in &fx.vars {
            command = command.replace(var, value);
        }
        let c = classify_with(&command, &mut RulesChecker::new(&fx.rules));
        if c.class != *expect {
            wrong.push(format!("{expect:?} expected, got {:?}: {template}   ({})", c.class, c.reason));
        }
        assert_eq!(c.argv.is_some(), c.class == CommandClass::ReadOnly, "{template}");
        assert!(!c.reason.is_empty() && !c.reason.contains('\n'), "{template}: one sentence: {}", c.reason);
    }
    assert!(wrong.is_empty(), "{} of {} rows wrong:\n{}", wrong.len(), rows.len(), wrong.join("\n"));
}

#[test]
fn reasons_name_the_offending_argument() {
    let fx = fixture();
    let out = &fx.vars[2].1;
    for (command, needle) in [
        ("ss -tlnpD/tmp/x".to_owned(), "-D"),
        ("systemctl --failed enable x".to_owned(), "enable"),
        ("journalctl --rot".to_owned(), "--rot"),
        ("dmesg --file=/etc/shadow".to_owned(), "--file"),
        ("kubectl get secret db".to_owned(), "secret"),
        ("mount -a".to_owned(), "-a"),
        ("df /dev/watchdog".to_owned(), "trailing `/`"),
        ("vmstat 1".to_owned(), "never ends"),
        ("docker stats --no-stream --no-stream=false".to_owned(), "--no-stream"),
        ("docker logs --details web".to_owned(), "--details"),
        ("kubectl --context prod get pods".to_owned(), "--context"),
        (format!("tail -n 5 {out}"), out.as_str()),
    ] {
        let c = classify_with(&command, &mut RulesChecker::new(&fx.rules));
        assert_eq!(c.class, CommandClass::NeedsApproval, "{command}");
        assert!(c.reason.contains(needle), "{command}: {}", c.reason);
    }
}

#[test]
fn the_pure_classifier_lists_files_and_the_checker_keeps_them_open() {
    let fx = fixture();
    let log = &fx.vars[0].1;
    let command = format!("grep -e refused {log}");
    let pure = classify(&command);
    assert!(pure.depends_on_files());
    assert_eq!(pure.files, std::slice::from_ref(log));
    let mut checker = RulesChecker::new(&fx.rules);
    let c = classify_with(&command, &mut checker);
    assert_eq!(c.class, CommandClass::ReadOnly, "{}", c.reason);
    assert_eq!(checker.opened.len(), 1);
    assert!(Path::new(&checker.opened[0].path).ends_with("app.log"));
}
