//! Alert rules: the checks a rule must pass, name parsing, how evaluations open and resolve events.

use super::*;

fn rule() -> AlertRuleSpec {
    AlertRuleSpec {
        name: "orders grows fast".into(),
        level: AggregationLevel::Database,
        condition: AlertCondition {
            metric: AlertMetric::GrowthPercent,
            comparison: Comparison::Above,
            threshold: Decimal::from(20),
            period_type: PeriodType::Monthly,
            periods: 3,
        },
        scope: AlertScope {
            db_types: vec![DbType::Mysql],
            instance_ids: vec![InstanceId(7)],
            database_names: vec!["orders".into()],
        },
        severity: Severity::Warning,
        channels: vec![
            AlertChannel {
                kind: ChannelKind::Webhook,
                target: "https://hooks.example.com/capstats".into(),
                secret: Some("shared".into()),
            },
            AlertChannel {
                kind: ChannelKind::Email,
                target: "dba@example.com".into(),
                secret: None,
            },
        ],
    }
}

fn fields(rule: &AlertRuleSpec) -> Vec<String> {
    rule.problems()
        .into_iter()
        .map(|problem| problem.field)
        .collect()
}

#[test]
fn a_sound_rule_has_no_problem_and_fires_past_its_threshold() {
    let rule = rule();
    assert_eq!(rule.problems(), Vec::new());
    assert!(rule.condition.holds(Decimal::new(2001, 2)));
    assert!(!rule.condition.holds(Decimal::from(20)), "above is strict");
    let below = AlertCondition {
        comparison: Comparison::Below,
        ..rule.condition
    };
    assert!(below.holds(Decimal::from(19)));
    assert!(!below.holds(Decimal::from(20)));
}

#[test]
fn every_problem_is_named_by_its_field() {
    let mut bad = rule();
    bad.name = " ".into();
    bad.condition.periods = 0;
    bad.channels[0].target = "ftp://hooks.example.com".into();
    bad.channels[1].target = "not an address".into();
    bad.channels[1].secret = Some("x".into());
    assert_eq!(
        fields(&bad),
        [
            "name",
            "condition.periods",
            "channels[0].url",
            "channels[1].to",
            "channels[1].secret"
        ]
    );

    let mut days = rule();
    days.condition.metric = AlertMetric::DaysUntilFull;
    days.condition.comparison = Comparison::Below;
    days.condition.threshold = Decimal::new(155, 1);
    assert_eq!(fields(&days), ["condition.threshold", "condition.periods"]);

    let mut silent = rule();
    silent.condition = AlertCondition {
        metric: AlertMetric::NoSamplesDays,
        comparison: Comparison::Below,
        threshold: Decimal::from(2),
        period_type: PeriodType::Daily,
        periods: 1,
    };
    assert_eq!(fields(&silent), ["condition.below"]);

    let mut instance = rule();
    instance.level = AggregationLevel::Instance;
    instance.channels.clear();
    instance.name = "x".repeat(ALERT_RULE_NAME_MAX_CHARACTERS + 1);
    assert_eq!(
        fields(&instance),
        ["name", "scope.database_names", "channels"]
    );

    let mut wecom = rule();
    wecom.channels = vec![AlertChannel {
        kind: ChannelKind::Wecom,
        target: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc".into(),
        secret: Some("unused".into()),
    }];
    assert_eq!(fields(&wecom), ["channels[0].secret"]);
}

#[test]
fn names_parse_whatever_their_case_and_unknown_ones_name_the_field() {
    assert_eq!(
        "Days_Until_Full".parse::<AlertMetric>(),
        Ok(AlertMetric::DaysUntilFull)
    );
    assert_eq!("dingtalk".parse::<ChannelKind>(), Ok(ChannelKind::Dingtalk));
    let error = "sms".parse::<ChannelKind>().unwrap_err();
    assert_eq!(error.field(), "channels[].kind");
    assert_eq!(error.code(), "invalid_choice");
    assert!(
        error
            .to_string()
            .contains("webhook, dingtalk, wecom, feishu or email")
    );
}

#[test]
fn an_evaluation_opens_keeps_and_resolves_events_and_leaves_unknowns_alone() {
    let condition = rule().condition;
    let day = |text: &str| text.parse::<chrono::NaiveDate>().unwrap();
    let november = crate::Period::containing(PeriodType::Monthly, day("2026-11-15"));
    let observe = |key: &'static str, value: Option<i64>| AlertObservation {
        key,
        value: value.map(Decimal::from),
        period: Some(november),
    };
    let open: std::collections::BTreeSet<&str> =
        ["still", "cooled", "unknown", "gone"].into_iter().collect();
    let found = alert_transitions(
        &condition,
        &[
            observe("new", Some(35)),
            observe("still", Some(21)),
            observe("cooled", Some(20)),
            observe("unknown", None),
            observe("quiet", Some(3)),
            observe("quiet-unknown", None),
        ],
        &open,
    );
    assert_eq!(
        found,
        [
            AlertTransition::Resolve { key: "cooled" },
            AlertTransition::Resolve { key: "gone" },
            AlertTransition::Open {
                key: "new",
                value: Decimal::from(35),
                period: Some(november)
            },
            AlertTransition::StillOpen {
                key: "still",
                value: Decimal::from(21),
                period: Some(november)
            },
        ]
    );
    assert_eq!(
        alert_transitions(&condition, &[], &std::collections::BTreeSet::new()),
        Vec::<AlertTransition<&str>>::new()
    );
}
