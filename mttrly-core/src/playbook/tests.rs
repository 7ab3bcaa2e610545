use super::*;

fn params(pairs: &[(&str, ParamValue)]) -> BTreeMap<ParamName, ParamValue> {
    pairs.iter().map(|(k, v)| (ParamName::new(*k).unwrap(), v.clone())).collect()
}

fn s(v: &str) -> ParamValue {
    ParamValue::String(v.to_owned())
}

#[test]
fn every_built_in_parses_and_there_are_at_least_twelve() {
    assert_eq!(built_in().len(), BUILT_IN.len(), "a built-in playbook failed to parse");
    assert!(built_in().len() >= 12);
    for text in BUILT_IN {
        Playbook::parse(text).unwrap();
    }
    let read_only: Vec<&str> = built_in().iter().filter(|p| !p.requires_approval).map(|p| p.id.as_str()).collect();
    assert!(read_only.contains(&"status-systemd-unit") && read_only.contains(&"disk-usage"), "{read_only:?}");
}

#[test]
fn parameters_are_validated_and_rendered_into_argv_without_a_shell() {
    let catalog = Catalog::built_in();
    let restart = catalog.find(&PlaybookId::new("restart-systemd-unit").unwrap()).unwrap();
    let ok = restart.validate(&params(&[("unit", s("nginx.service"))])).unwrap();
    let rendered = restart.render(&ok);
    assert_eq!(rendered.steps[0].argv, vec!["systemctl", "restart", "--", "nginx.service"]);
    assert_eq!(rendered.prechecks.len(), 1);
    // Shell tricks are just invalid values.
    for evil in ["nginx; rm -rf /", "$(reboot)", "`id`", "nginx && true", "-H root@evil", "a b", "../../etc", ".."] {
        let err = restart.validate(&params(&[("unit", s(evil))])).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError, "{evil}");
        assert_eq!(err.details()["field"], "parameters.unit", "{evil}");
    }
    assert!(restart.validate(&BTreeMap::new()).unwrap_err().message().contains("required"));
    let unknown = restart.validate(&params(&[("unit", s("a")), ("force", ParamValue::Boolean(true))])).unwrap_err();
    assert!(unknown.message().contains("does not take it"), "{unknown}");
    let wrong_type = restart.validate(&params(&[("unit", ParamValue::Integer(3))])).unwrap_err();
    assert!(wrong_type.message().contains("string"), "{wrong_type}");

    let rollback = catalog.find(&PlaybookId::new("rollback-release-symlink").unwrap()).unwrap();
    for escape in ["/srv/../lib64", "/srv/app/./../../etc", "/home/x/.."] {
        let err = rollback.validate(&params(&[("link", s(escape)), ("target", s("/srv/app/r1"))])).unwrap_err();
        assert!(err.message().contains(".."), "{escape}: {err}");
    }
    let logs = catalog.find(&PlaybookId::new("compress-rotated-logs").unwrap()).unwrap();
    assert!(logs.validate(&params(&[("dir", s("/var/log/../../usr/lib"))])).is_err());
    let tmp = catalog.find(&PlaybookId::new("clear-old-tmp-files").unwrap()).unwrap();
    let filled = tmp.validate(&BTreeMap::new()).unwrap();
    assert_eq!(tmp.render(&filled).steps[0].argv.iter().filter(|a| *a == "+7").count(), 1);
    assert!(tmp.validate(&params(&[("days", ParamValue::Integer(0))])).is_err());
    assert!(tmp.validate(&params(&[("days", ParamValue::Integer(400))])).is_err());

    // Placeholders that are not parameters stay literal (Docker's Go templates, find's `{}`).
    let docker = catalog.find(&PlaybookId::new("restart-docker-container").unwrap()).unwrap();
    let r = docker.render(&docker.validate(&params(&[("container", s("web"))])).unwrap());
    assert!(r.prechecks[0].argv.contains(&"{{.State.Status}}".to_owned()));
    let logs = catalog.find(&PlaybookId::new("compress-rotated-logs").unwrap()).unwrap();
    let r = logs.render(&logs.validate(&BTreeMap::new()).unwrap());
    assert!(r.steps[0].argv.contains(&"{}".to_owned()) && r.steps[0].argv[1] == "/var/log");
}

#[test]
fn bad_definitions_are_refused_with_the_reason() {
    let base = "id = \"x\"\nname = \"x\"\ndescription = \"x\"\ncategory = \"system\"\nrequires_approval = true\nblast_radius = \"x\"\ntimeout_seconds = 10\n";
    let no_steps = Playbook::parse(base).unwrap_err();
    assert!(no_steps.message().contains("steps"), "{no_steps}");
    let unknown_placeholder = format!("{base}[[steps]]\nargv = [\"echo\", \"{{nope}}\"]\n");
    assert!(Playbook::parse(&unknown_placeholder).unwrap_err().message().contains("nope"));
    let program_param = format!(
        "{base}[[parameters]]\nname = \"p\"\ndescription = \"p\"\nkind = \"string\"\nrequired = true\npattern = \"[a-z]+\"\n[[steps]]\nargv = [\"{{p}}\"]\n"
    );
    assert!(Playbook::parse(&program_param).unwrap_err().message().contains("program"));
    let no_pattern = format!(
        "{base}[[parameters]]\nname = \"p\"\ndescription = \"p\"\nkind = \"string\"\nrequired = true\n[[steps]]\nargv = [\"echo\", \"{{p}}\"]\n"
    );
    assert!(Playbook::parse(&no_pattern).unwrap_err().message().contains("pattern"));
    let optional_without_default = format!(
        "{base}[[parameters]]\nname = \"p\"\ndescription = \"p\"\nkind = \"integer\"\n[[steps]]\nargv = [\"echo\", \"{{p}}\"]\n"
    );
    assert!(Playbook::parse(&optional_without_default).unwrap_err().message().contains("default"));
    let typo = format!("{base}[[steps]]\nargv = [\"true\"]\nshell = true\n");
    assert!(Playbook::parse(&typo).is_err());
}

/// A string value must match its pattern whole. The pattern is anchored by wrapping it in
/// `^(?:…)$`, so a `)` of its own could close that group and leave an anchor on one side only:
/// such a pattern is refused when the playbook is read, and a playbook built in code with one
/// accepts no value.
#[test]
fn a_pattern_cannot_close_the_group_that_anchors_it() {
    let base = "id = \"x\"\nname = \"x\"\ndescription = \"x\"\ncategory = \"system\"\nrequires_approval = true\nblast_radius = \"x\"\ntimeout_seconds = 10\n[[steps]]\nargv = [\"echo\", \"{p}\"]\n";
    let with = |pattern: &str| {
        format!(
            "{base}[[parameters]]\nname = \"p\"\ndescription = \"p\"\nkind = \"string\"\nrequired = true\npattern = '''{pattern}'''\n"
        )
    };
    // `^(?:[a-z]+)|(?:.*)$` matches anything; `^(?:[a-z]+)(?m)(?:)$` ends at any line's end.
    for (pattern, slips) in [("[a-z]+)|(?:.*", "web; reboot"), ("[a-z]+)(?m)(?:", "web\n/etc/shadow")] {
        let err = Playbook::parse(&with(pattern)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError, "{pattern}");
        assert!(err.message().contains("pattern of `p`"), "{pattern}: {err}");
        let mut p = Playbook::parse(&with("[a-z]+")).unwrap();
        p.parameters[0].pattern = Some(pattern.to_owned());
        for value in [slips, "web"] {
            let err = p.validate(&params(&[("p", s(value))])).unwrap_err();
            assert!(err.message().contains("bad pattern"), "{pattern} {value:?}: {err}");
        }
    }
    // A whole expression keeps its flags and groups inside the anchors.
    let p = Playbook::parse(&with("(?m)(web|db)$")).unwrap();
    assert!(p.validate(&params(&[("p", s("web"))])).is_ok());
    assert!(p.validate(&params(&[("p", s("web\nx"))])).is_err());
}

#[test]
fn a_user_directory_adds_playbooks_but_cannot_shadow_built_ins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.toml"),
        "id = \"restart-app\"\nname = \"Restart app\"\ndescription = \"d\"\ncategory = \"services\"\nrequires_approval = true\nblast_radius = \"the app\"\ntimeout_seconds = 30\n[[steps]]\nargv = [\"systemctl\", \"restart\", \"app\"]\n",
    )
    .unwrap();
    let c = Catalog::with_dir(dir.path()).unwrap();
    assert!(c.get(&PlaybookId::new("restart-app").unwrap()).is_some());
    std::fs::write(dir.path().join("shadow.toml"), BUILT_IN[0]).unwrap();
    let err = Catalog::with_dir(dir.path()).unwrap_err();
    assert!(err.message().contains("already defined"), "{err}");
    let missing = Catalog::built_in().find(&PlaybookId::new("nope").unwrap()).unwrap_err();
    assert_eq!(missing.code(), ErrorCode::PlaybookNotFound);
}

mod props {
    use proptest::prelude::*;

    use super::*;

    /// The expression [`placeholders`] scans by hand.
    fn placeholder_regex() -> regex::Regex {
        regex::Regex::new(r"\{([a-z0-9][a-z0-9_.-]*)\}").unwrap()
    }

    proptest! {
        /// The hand scanner finds exactly what the expression finds, and substitutes as its
        /// `replace_all` would: what a check accepts is what a run renders.
        #[test]
        fn placeholders_are_the_expressions_matches(arg in "[{}a-z0-9_.A-Z\\- é/]{0,48}") {
            let re = placeholder_regex();
            let expected: Vec<(std::ops::Range<usize>, &str)> = re
                .captures_iter(&arg)
                .map(|c| (c.get(0).unwrap().range(), c.get(1).unwrap().as_str()))
                .collect();
            let scanned: Vec<_> = placeholders(&arg).collect();
            prop_assert_eq!(&scanned, &expected);
            let value_of = |name: &str| format!("<{}>", name.len());
            let by_regex = re.replace_all(&arg, |c: &regex::Captures<'_>| value_of(&c[1])).into_owned();
            prop_assert_eq!(substitute(&arg, value_of), by_regex);
        }

        /// A pattern is refused at load exactly when the regex crate would refuse to compile it
        /// (patterns short enough to stay far under the engine's size limit).
        #[test]
        fn a_pattern_is_checked_as_the_regex_crate_compiles_it(pattern in "[a-z0-9()\\[\\]{}*+?|.^$\\\\:-]{0,16}") {
            prop_assert_eq!(check_pattern(&pattern).is_ok(), full_match(&pattern).is_ok(), "{}", pattern);
        }

        #[test]
        fn validation_never_panics_and_rendered_values_are_single_argv_elements(v in "\\PC{0,64}") {
            let c = Catalog::built_in();
            for p in c.all() {
                for param in &p.parameters {
                    let given = params(&[(param.name.as_str(), s(&v))]);
                    if let Ok(ok) = p.validate(&given) {
                        let r = p.render(&ok);
                        // A value never adds argv elements.
                        prop_assert_eq!(r.steps.iter().map(|s| s.argv.len()).collect::<Vec<_>>(),
                            p.steps.iter().map(|s| s.argv.len()).collect::<Vec<_>>());
                    }
                }
            }
        }
    }
}
