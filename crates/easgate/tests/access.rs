//! `policy …` and `eas …` on the command line: rules in order, the default, what-if answers,
//! per-device decisions, and bad input that changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Env;

#[test]
fn a_new_install_allows_managed_devices_and_blocks_the_rest() {
    let env = Env::new();
    env.add_alice();
    let list = env.json(&["policy", "list"]);
    assert_eq!(list["default"], "block");
    assert_eq!(list["rules"][0]["name"], "allow-managed");
    assert_eq!(list["rules"][0]["device_states"][0], "managed");
    let managed = env.json(&["policy", "test", "--user", "alice@corp.example"]);
    assert_eq!(managed["action"], "allow");
    assert_eq!(managed["rule"], "allow-managed");
    let unmanaged = env.json(&[
        "policy",
        "test",
        "--user",
        "alice@corp.example",
        "--device-state",
        "unmanaged",
    ]);
    assert_eq!(unmanaged["action"], "block");
    assert_eq!(unmanaged["matched"], "default");
}

#[test]
fn rules_apply_in_priority_order_and_what_if_names_the_rule() {
    let env = Env::new();
    env.ok(&["group", "add", "sales"]);
    env.ok(&[
        "user",
        "add",
        "bob@corp.example",
        "--email",
        "bob@corp.example",
        "--group",
        "sales",
    ]);
    env.add_alice();
    let out = env.ok(&[
        "policy",
        "add",
        "sales-android",
        "--priority",
        "50",
        "--group",
        "sales",
        "--platform",
        "android",
        "--action",
        "quarantine",
    ]);
    assert!(out.contains("priority 50"), "{out}");
    env.ok(&[
        "policy",
        "add",
        "office-outlook",
        "--priority",
        "40",
        "--client",
        "outlook",
        "--network",
        "10.1.0.0/16",
        "--action",
        "allow",
    ]);
    // Without --priority a rule goes after every existing one.
    let added = env.json(&[
        "policy",
        "add",
        "late",
        "--platform",
        "windows",
        "--action",
        "block",
    ]);
    assert_eq!(added["priority"], 110);

    let test = |args: &[&str]| {
        let mut all = vec!["policy", "test"];
        all.extend_from_slice(args);
        env.json(&all)
    };
    let q = test(&["--user", "bob@corp.example", "--platform", "android"]);
    assert_eq!(
        (q["action"].as_str(), q["rule"].as_str()),
        (Some("quarantine"), Some("sales-android"))
    );
    assert_eq!(q["groups"][0], "sales");
    // Alice is not in sales: the managed rule lets her through.
    let a = test(&["--user", "alice@corp.example", "--platform", "android"]);
    assert_eq!(a["rule"], "allow-managed");
    // Outlook from the office network, even unmanaged, matches the earlier rule.
    let o = test(&[
        "--user",
        "bob@corp.example",
        "--platform",
        "android",
        "--client",
        "outlook",
        "--device-state",
        "unmanaged",
        "--ip",
        "10.1.2.3",
    ]);
    assert_eq!(o["rule"], "office-outlook");
    let o = test(&[
        "--user",
        "bob@corp.example",
        "--client",
        "outlook",
        "--device-state",
        "unmanaged",
        "--ip",
        "192.0.2.1",
    ]);
    assert_eq!(
        (o["action"].as_str(), o["matched"].as_str()),
        (Some("block"), Some("default"))
    );

    // Text output explains itself.
    let text = env.ok(&[
        "policy",
        "test",
        "--user",
        "bob@corp.example",
        "--platform",
        "android",
    ]);
    assert!(text.contains("quarantine (rule `sales-android`)"), "{text}");
    let listing = env.ok(&["policy", "list"]);
    let order: Vec<&str> = listing
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(
        &order[..4],
        ["office-outlook", "sales-android", "allow-managed", "late"]
    );

    env.ok(&["policy", "remove", "sales-android"]);
    let q = test(&["--user", "bob@corp.example", "--platform", "android"]);
    assert_eq!(q["rule"], "allow-managed");
    env.ok(&["policy", "default", "quarantine"]);
    let d = test(&["--user", "bob@corp.example", "--device-state", "unmanaged"]);
    assert_eq!(d["action"], "quarantine");
    let audit = env.ok(&["audit"]);
    assert!(
        audit.contains("policy.add") && audit.contains("policy.remove"),
        "{audit}"
    );
}

#[test]
fn per_device_decisions_come_before_every_rule() {
    let env = Env::new();
    env.add_alice();
    env.ok(&["eas", "block", "ApplDEADBEEF", "--reason", "reported lost"]);
    let unmanaged_what_if = || {
        env.json(&[
            "policy",
            "test",
            "--user",
            "alice@corp.example",
            "--device-state",
            "unmanaged",
            "--device-id",
            "ApplDEADBEEF",
        ])
    };
    let blocked = env.json(&[
        "policy",
        "test",
        "--user",
        "alice@corp.example",
        "--device-id",
        "appldeadbeef",
    ]);
    assert_eq!(
        (blocked["action"].as_str(), blocked["matched"].as_str()),
        (Some("block"), Some("override"))
    );
    let show = env.json(&["eas", "show", "ApplDEADBEEF"]);
    assert_eq!(show["override"]["reason"], "reported lost");
    assert_eq!(show["partnerships"].as_array().unwrap().len(), 0);
    // The unmanaged request was blocked by the override, as block holds with or without a
    // certificate.
    assert_eq!(unmanaged_what_if()["matched"], "override");
    env.ok(&["eas", "allow", "ApplDEADBEEF"]);
    // An allow needs a valid certificate: without one the rules decide.
    let unmanaged = unmanaged_what_if();
    assert_eq!(
        (unmanaged["action"].as_str(), unmanaged["matched"].as_str()),
        (Some("block"), Some("default"))
    );
    let managed = env.json(&[
        "policy",
        "test",
        "--user",
        "alice@corp.example",
        "--device-id",
        "ApplDEADBEEF",
    ]);
    assert_eq!(managed["matched"], "override");
    // Allowing it without a certificate is its own, explicit act.
    env.ok(&["eas", "allow", "ApplDEADBEEF", "--unmanaged"]);
    let allowed = unmanaged_what_if();
    assert_eq!(allowed["action"], "allow");
    assert_eq!(
        env.run(&["eas", "block", "ApplDEADBEEF", "--unmanaged"])
            .code,
        2
    );
    env.ok(&["eas", "clear", "ApplDEADBEEF"]);
    let after = unmanaged_what_if();
    assert_eq!(after["matched"], "default");
    let err = env.fails(&["eas", "show", "ApplDEADBEEF"]);
    assert!(err.contains("does not exist"), "{err}");
    assert_eq!(env.json(&["eas", "list"]), serde_json::json!([]));
}

#[test]
fn bad_rules_and_device_ids_are_refused_and_change_nothing() {
    let env = Env::new();
    env.add_alice();
    env.ok(&["policy", "add", "taken", "--action", "allow"]);
    let before = env.snapshot();
    for (args, expected) in [
        (
            "policy add x --group nosuch --action block",
            "group `nosuch` does not exist",
        ),
        (
            "policy add x --user nobody@corp.example --action block",
            "does not exist",
        ),
        (
            "policy add x --network 10.0.0.0/33 --action block",
            "invalid network",
        ),
        (
            "policy add x --network not-an-ip --action block",
            "invalid network",
        ),
        ("policy add taken --action block", "already exists"),
        ("policy add bad/name --action block", "rule"),
        ("policy remove nosuch", "does not exist"),
        (
            "policy test --user alice@corp.example --ip 999.1.1.1",
            "not an IP address",
        ),
        ("eas block", ""),
        ("eas clear NEVERSEEN", "does not exist"),
    ] {
        let args: Vec<&str> = args.split_whitespace().collect();
        let r = env.run(&args);
        assert_ne!(r.code, 0, "{args:?} should fail");
        assert!(r.stderr.contains(expected), "{args:?}: {}", r.stderr);
    }
    let long_id = "A".repeat(65);
    let err = env.fails(&["eas", "block", &long_id]);
    assert!(err.contains("not valid"), "{err}");
    let err = env.fails(&["eas", "allow", "has space"]);
    assert!(err.contains("not valid"), "{err}");
    // clap refuses unknown words with a usage error (exit 2).
    for args in [
        &[
            "policy",
            "add",
            "x",
            "--platform",
            "blackberry",
            "--action",
            "block",
        ][..],
        &["policy", "add", "x", "--action", "maybe"],
        &["policy", "default", "sometimes"],
    ] {
        assert_eq!(env.run(args).code, 2, "{args:?}");
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn what_if_follows_the_gateway_order_and_warns_about_rules_that_never_match() {
    let env = Env::new();
    env.add_alice();
    env.ok(&["policy", "default", "allow"]);
    env.ok(&["eas", "allow", "PHONE1", "--unmanaged"]);
    let test = |args: &[&str]| {
        let mut all = vec![
            "policy",
            "test",
            "--user",
            "alice@corp.example",
            "--device-id",
            "PHONE1",
        ];
        all.extend_from_slice(args);
        env.json(&all)
    };
    // A failed certificate is refused before the override and the default allow.
    for (cert, cause) in [
        ("revoked", "certificate-revoked"),
        ("expired", "certificate-expired"),
        ("foreign", "certificate-untrusted"),
    ] {
        let answer = test(&["--cert", cert]);
        assert_eq!(
            (
                answer["action"].as_str(),
                answer["matched"].as_str(),
                answer["refusal"].as_str()
            ),
            (Some("refuse"), Some("refusal"), Some(cause)),
            "{answer}"
        );
    }
    assert_eq!(test(&["--cert", "none"])["matched"], "override");
    assert_eq!(test(&["--cert", "valid"])["matched"], "override");
    let err = env.fails(&[
        "policy",
        "test",
        "--user",
        "alice@corp.example",
        "--cert",
        "none",
        "--device-state",
        "managed",
    ]);
    assert!(err.contains("contradict"), "{err}");
    // A disabled user is refused with or without a certificate.
    env.ok(&["user", "disable", "alice@corp.example"]);
    for cert in ["valid", "none"] {
        assert_eq!(test(&["--cert", cert])["refusal"], "user-disabled");
    }
    let text = env.ok(&[
        "policy",
        "test",
        "--user",
        "alice@corp.example",
        "--cert",
        "none",
    ]);
    assert!(text.contains("refuse (user is disabled)"), "{text}");

    // A rule behind a broader one never matches: said by `policy list` and `policy test`.
    env.ok(&[
        "policy",
        "add",
        "lan",
        "--priority",
        "10",
        "--network",
        "10.0.0.0/8",
        "--action",
        "allow",
    ]);
    env.ok(&[
        "policy",
        "add",
        "office-android",
        "--priority",
        "20",
        "--network",
        "10.1.0.0/16",
        "--platform",
        "android",
        "--action",
        "block",
    ]);
    let list = env.run(&["policy", "list"]);
    assert_eq!(list.code, 0);
    assert!(
        list.stderr
            .contains("warning: rule `office-android` can never match: rule `lan` comes first"),
        "{}",
        list.stderr
    );
    let r = env.run(&["policy", "test", "--user", "bob@corp.example"]);
    assert!(
        r.stderr.contains("`office-android` can never match"),
        "{}",
        r.stderr
    );
    env.ok(&["policy", "remove", "lan"]);
    assert!(!env.run(&["policy", "list"]).stderr.contains("never match"));
}
