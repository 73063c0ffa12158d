use serde_json::json;

use super::*;

fn invalid(spec: ProcessorSpec) -> String {
    match spec.validate() {
        Err(e) => e.to_string(),
        Ok(()) => panic!("{spec:?} passed validation"),
    }
}

#[test]
fn an_empty_object_is_the_default_spec_and_the_defaults_are_the_runtime_ones() {
    let spec: ProcessorSpec = serde_json::from_str("{}").unwrap();
    assert_eq!(spec, ProcessorSpec::default());
    assert_eq!(spec.instances, 1);
    assert_eq!(
        (spec.max_records, spec.max_bytes, spec.max_wait_ms),
        (500, 1 << 20, 500)
    );
    assert_eq!(spec.protocol, Protocol::Cooperative);
    assert_eq!(spec.assignor, AssignorKind::CooperativeSticky);
    assert_eq!(
        (spec.session_timeout_ms, spec.max_poll_interval_ms),
        (10_000, 60_000)
    );
    assert_eq!(
        (
            spec.max_retries,
            spec.initial_backoff_ms,
            spec.max_backoff_ms
        ),
        (5, 100, 5_000)
    );
    assert_eq!(spec.when_exhausted, WhenExhausted::DeadLetter);
    assert_eq!((spec.reset, spec.scratch), (ResetPolicy::Earliest, false));
    let config = ProcessorSpec::over(&["t"]).processor_config("p");
    let default = ProcessorConfig::new("p", &["t"]);
    assert_eq!(format!("{config:?}"), format!("{default:?}"));
}

#[test]
fn an_unknown_or_misspelt_setting_is_refused_by_name() {
    for body in [
        json!({"max_record": 5}),
        json!({"limits": {"deadline": 5}}),
        json!({"comit": "exactly-once"}),
    ] {
        let err = serde_json::from_value::<ProcessorSpec>(body.clone()).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{body}: {err}");
    }
    let err = serde_json::from_value::<ProcessorSpec>(json!({"assignor": "fastest"})).unwrap_err();
    assert!(err.to_string().contains("cooperative-sticky"), "{err}");
}

#[test]
fn validation_names_the_setting_and_the_rule() {
    let ok = ProcessorSpec::over(&["t"]);
    ok.validate().unwrap();
    let cases = [
        (ProcessorSpec::default(), "at least one topic"),
        (
            ProcessorSpec {
                instances: 0,
                ..ok.clone()
            },
            "instances must be between 1 and 64",
        ),
        (
            ProcessorSpec {
                instances: 65,
                ..ok.clone()
            },
            "got 65",
        ),
        (
            ProcessorSpec {
                max_records: 0,
                ..ok.clone()
            },
            "max_records must be at least 1",
        ),
        (
            ProcessorSpec {
                max_bytes: 0,
                ..ok.clone()
            },
            "max_bytes must be at least 1",
        ),
        (
            ProcessorSpec {
                session_timeout_ms: 0,
                ..ok.clone()
            },
            "session_timeout_ms",
        ),
        (
            ProcessorSpec {
                initial_backoff_ms: 10_000,
                ..ok.clone()
            },
            "initial_backoff_ms (10000) is above max_backoff_ms (5000)",
        ),
        (
            ProcessorSpec {
                limits: Limits {
                    deadline: Duration::from_secs(301),
                    ..Limits::default()
                },
                max_poll_interval_ms: 600_000,
                ..ok.clone()
            },
            "deadline_ms may be at most 300000",
        ),
        (
            ProcessorSpec {
                limits: Limits {
                    deadline: Duration::from_secs(90),
                    ..Limits::default()
                },
                ..ok.clone()
            },
            "deadline_ms (90000) is above max_poll_interval_ms (60000)",
        ),
        (
            ProcessorSpec {
                limits: Limits {
                    max_stack_bytes: 1024,
                    ..Limits::default()
                },
                ..ok.clone()
            },
            "max_stack_bytes is 1024",
        ),
    ];
    for (spec, message) in cases {
        let err = invalid(spec);
        assert!(err.contains(message), "expected {message:?} in {err:?}");
    }
    let long_deadline = ProcessorSpec {
        limits: Limits {
            deadline: Duration::from_secs(90),
            ..Limits::default()
        },
        max_poll_interval_ms: 90_000,
        ..ok
    };
    long_deadline.validate().unwrap();
}

#[test]
fn a_full_spec_round_trips_through_json_and_reads_the_same_from_toml() {
    let spec = ProcessorSpec {
        topics: vec!["a".into(), "b".into()],
        group: Some("g".into()),
        instances: 3,
        config: BTreeMap::from([("k".into(), "v".into())]),
        label: Some("v2".into()),
        reset: ResetPolicy::None,
        max_records: 7,
        max_bytes: 4096,
        max_wait_ms: 20,
        protocol: Protocol::Eager,
        assignor: AssignorKind::RoundRobin,
        session_timeout_ms: 7_000,
        max_poll_interval_ms: 90_000,
        max_retries: 2,
        initial_backoff_ms: 10,
        max_backoff_ms: 40,
        when_exhausted: WhenExhausted::Pause,
        limits: Limits {
            fuel: Some(99),
            ..Limits::default()
        },
        scratch: true,
        commit: CommitMode::ExactlyOnce,
        state_budget_bytes: 1 << 20,
        lag_skip: Some(LagSkip {
            records: Some(1000),
            age_ms: None,
        }),
        breaker_threshold: 3,
        when_tripped: WhenTripped::Stop,
        cluster: Some(ClusterSpec {
            bootstrap_servers: "k1:9092,k2:9092".into(),
            instance_id: Some("host-a".into()),
            properties: BTreeMap::from([("security.protocol".into(), "ssl".into())]),
        }),
    };
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["commit"], "exactly-once");
    assert_eq!(json["assignor"], "roundrobin");
    assert_eq!(json["when_exhausted"], "pause");
    assert_eq!(json["reset"], "none");
    assert_eq!(json["when_tripped"], "stop");
    assert_eq!(serde_json::from_value::<ProcessorSpec>(json).unwrap(), spec);
    let toml = r#"
        topics = ["a", "b"]
        group = "g"
        instances = 3
        config = { k = "v" }
        label = "v2"
        reset = "none"
        max_records = 7
        max_bytes = 4096
        max_wait_ms = 20
        protocol = "eager"
        assignor = "round-robin"
        session_timeout_ms = 7000
        max_poll_interval_ms = 90000
        max_retries = 2
        initial_backoff_ms = 10
        max_backoff_ms = 40
        when_exhausted = "pause"
        commit = "exactly-once"
        state_budget_bytes = 1048576
        lag_skip = { records = 1000 }
        limits = { fuel = 99 }
        scratch = true
        breaker_threshold = 3
        when_tripped = "stop"
        cluster = { bootstrap_servers = "k1:9092,k2:9092", instance_id = "host-a", properties = { "security.protocol" = "ssl" } }
    "#;
    assert_eq!(toml::from_str::<ProcessorSpec>(toml).unwrap(), spec);
}

#[test]
fn changes_replace_the_keys_given_and_merge_limits_key_by_key() {
    let recorded = ProcessorSpec {
        config: BTreeMap::from([("a".into(), "1".into())]),
        limits: Limits {
            memory_bytes: 1 << 20,
            ..Limits::default()
        },
        ..ProcessorSpec::over(&["t"])
    };
    let changes: SpecChanges = serde_json::from_value(json!({
        "max_records": 9,
        "config": {"b": "2"},
        "limits": {"fuel": 5},
    }))
    .unwrap();
    let next = recorded.apply(&changes).unwrap();
    assert_eq!(next.max_records, 9);
    assert_eq!(next.topics, ["t"], "kept");
    assert_eq!(
        next.config,
        BTreeMap::from([("b".into(), "2".into())]),
        "replaced"
    );
    assert_eq!(next.limits.memory_bytes, 1 << 20, "merged");
    assert_eq!(next.limits.fuel, Some(5));
    assert!(
        !recorded.same_members(&next),
        "max_records shapes the members"
    );
    let guest_only = recorded
        .apply(&serde_json::from_value(json!({"limits": {"fuel": 5}, "label": "x"})).unwrap())
        .unwrap();
    assert!(recorded.same_members(&guest_only));

    let err = serde_json::from_value::<SpecChanges>(json!({"max_recods": 1})).unwrap_err();
    assert!(err.to_string().contains("max_recods"), "{err}");
}

#[test]
fn the_guest_spec_gets_a_scratch_directory_only_when_the_spec_asks() {
    let mut spec = ProcessorSpec::over(&["t"]);
    spec.label = Some("v1".into());
    let dir = PathBuf::from("/tmp/s");
    assert_eq!(spec.guest_spec("p", Some(dir.clone())).scratch, None);
    spec.scratch = true;
    let guest = spec.guest_spec("p", Some(dir.clone()));
    assert_eq!((guest.scratch, guest.label), (Some(dir), Some("v1".into())));
}
