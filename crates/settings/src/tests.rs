//! Reading the settings: defaults, the environment, files and the refusals.

use super::*;

#[test]
fn errors_become_one_line_without_repeating_causes() {
    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Outer(#[source] Inner);
    #[derive(Debug, thiserror::Error)]
    #[error("inner\n\tdetail")]
    struct Inner;
    assert_eq!(one_line_error(&Outer(Inner)), "outer: inner detail");
    #[derive(Debug, thiserror::Error)]
    #[error("context")]
    struct Context(#[source] Inner);
    assert_eq!(one_line_error(&Context(Inner)), "context: inner detail");
}

#[test]
fn defaults_apply_and_environment_overrides() {
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        let settings = Settings::from_environment().unwrap();
        assert_eq!(settings, Settings::default());
        jail.set_env("DATABASE_URL", "postgres://example/db");
        jail.set_env("CAPSTATS_TIMEZONE", "Europe/Berlin");
        jail.set_env("CAPSTATS_DATABASE_POOL_SIZE", "12");
        jail.set_env("CAPSTATS_LOG_FORMAT", "json");
        let settings = Settings::from_environment().unwrap();
        assert_eq!(settings.database_url, "postgres://example/db");
        assert_eq!(settings.time_zone(), chrono_tz::Europe::Berlin);
        assert_eq!(settings.database_pool_size, 12);
        assert_eq!(settings.log_format, LogFormat::Json);
        Ok(())
    });
}

#[test]
fn an_unknown_time_zone_is_refused_by_name() {
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("CAPSTATS_TIMEZONE", "Mars/Olympus_Mons");
        let error = Settings::from_environment().unwrap_err().to_string();
        assert!(
            error.contains("CAPSTATS_TIMEZONE `Mars/Olympus_Mons` is not an IANA time zone name"),
            "{error}"
        );
        Ok(())
    });
}

#[test]
fn file_values_lose_to_the_environment() {
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_file(
            "capstats.toml",
            "database_pool_size = 6\ntimezone = \"UTC\"",
        )?;
        jail.set_env("CAPSTATS_CONFIG_FILE", "capstats.toml");
        jail.set_env("CAPSTATS_DATABASE_POOL_SIZE", "7");
        let settings = Settings::from_environment().unwrap();
        assert_eq!(settings.database_pool_size, 7);
        assert_eq!(settings.timezone, chrono_tz::UTC);
        Ok(())
    });
}

/// Every setting is documented in docs/configuration.md and listed in .env.example, and
/// .env.example lists nothing else.
#[test]
fn every_setting_is_documented_and_in_the_example_environment() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let read = |path: &str| std::fs::read_to_string(format!("{root}/{path}")).unwrap();
    let documentation = read("docs/configuration.md");
    let example = read(".env.example");
    use figment::Provider;
    let defaults = Figment::from(Serialized::defaults(Settings::default()));
    let mut variables: Vec<String> = defaults
        .data()
        .unwrap()
        .into_values()
        .flat_map(|dictionary| dictionary.into_keys())
        .map(|key| match key.as_str() {
            "database_url" => "DATABASE_URL".to_owned(),
            key => format!("CAPSTATS_{}", key.to_uppercase()),
        })
        .collect();
    // Read before the settings themselves.
    variables.extend(["CAPSTATS_LOG".to_owned(), "CAPSTATS_CONFIG_FILE".to_owned()]);
    for variable in &variables {
        assert!(
            documentation.contains(&format!("| `{variable}` |")),
            "{variable} is not in docs/configuration.md"
        );
        assert!(
            example.contains(&format!("{variable}=")),
            "{variable} is not in .env.example"
        );
    }
    for line in example.lines() {
        let assignment = line.trim_start_matches("# ");
        if let Some((name, _)) = assignment.split_once('=')
            && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        {
            assert!(
                variables.iter().any(|variable| variable == name),
                ".env.example lists {name}, which is no setting"
            );
        }
    }
}

#[test]
fn old_credential_keys_are_a_list_or_comma_separated_and_need_the_current_key() {
    let (current, first, second) = ("aa".repeat(32), "bb".repeat(32), "cc".repeat(32));
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("CAPSTATS_CREDENTIAL_KEY", &current);
        jail.set_env("CAPSTATS_CREDENTIAL_OLD_KEYS", format!("{first}, {second}"));
        let settings = Settings::from_environment().unwrap();
        assert_eq!(
            settings.credential_old_keys,
            [first.clone(), second.clone()]
        );
        jail.set_env("CAPSTATS_CREDENTIAL_OLD_KEYS", format!("[\"{first}\"]"));
        let settings = Settings::from_environment().unwrap();
        assert_eq!(settings.credential_old_keys, std::slice::from_ref(&first));
        jail.set_env("CAPSTATS_COLLECTOR_CA_FILE", "/etc/capstats/ca.pem");
        let settings = Settings::from_environment().unwrap();
        assert_eq!(
            settings.collector_ca_file.as_deref(),
            Some(std::path::Path::new("/etc/capstats/ca.pem"))
        );
        jail.set_env("CAPSTATS_CREDENTIAL_OLD_KEYS", "abcd");
        let error = Settings::from_environment().unwrap_err().to_string();
        assert!(error.contains("CAPSTATS_CREDENTIAL_OLD_KEYS"), "{error}");
        Ok(())
    });
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("CAPSTATS_CREDENTIAL_OLD_KEYS", &first);
        let error = Settings::from_environment().unwrap_err().to_string();
        assert!(error.contains("needs CAPSTATS_CREDENTIAL_KEY"), "{error}");
        Ok(())
    });
}

#[test]
fn bad_values_name_the_setting() {
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("CAPSTATS_TIMEZONE", "Mars/Olympus");
        let error = Settings::from_environment().unwrap_err().to_string();
        assert!(error.contains("CAPSTATS_TIMEZONE"), "{error}");
        jail.set_env("CAPSTATS_TIMEZONE", "UTC");
        jail.set_env("CAPSTATS_DATABASE_POOL_SIZE", "many");
        let error = Settings::from_environment().unwrap_err().to_string();
        assert!(error.contains("DATABASE_POOL_SIZE"), "{error}");
        jail.set_env("CAPSTATS_DATABASE_POOL_SIZE", "3");
        jail.set_env("CAPSTATS_CREDENTIAL_KEY", "abc");
        let error = Settings::from_environment().unwrap_err().to_string();
        assert!(error.contains("CAPSTATS_CREDENTIAL_KEY"), "{error}");
        jail.set_env("CAPSTATS_CREDENTIAL_KEY", "0f".repeat(32));
        jail.set_env("CAPSTATS_COLLECTOR_EXCLUDE_MYSQL", "[mysql, \"tmp_*\"]");
        let settings = Settings::from_environment().unwrap();
        assert_eq!(settings.collector_exclude_mysql, ["mysql", "tmp_*"]);
        jail.set_env("CAPSTATS_AGGREGATION_PERIOD_TYPES", "[daily, monthly]");
        let settings = Settings::from_environment().unwrap();
        assert_eq!(
            settings.aggregation_period_types,
            [
                capstats_capacity_model::PeriodType::Daily,
                capstats_capacity_model::PeriodType::Monthly
            ]
        );
        jail.set_env("CAPSTATS_AGGREGATION_PERIOD_TYPES", "[hourly]");
        let error = Settings::from_environment().unwrap_err().to_string();
        assert!(error.contains("AGGREGATION_PERIOD_TYPES"), "{error}");
        jail.set_env(
            "CAPSTATS_AGGREGATION_PERIOD_TYPES",
            "[daily, weekly, daily]",
        );
        let error = Settings::from_environment().unwrap_err().to_string();
        assert!(error.contains("names daily twice"), "{error}");
        jail.set_env("CAPSTATS_AGGREGATION_PERIOD_TYPES", "[]");
        let error = Settings::from_environment().unwrap_err().to_string();
        assert!(error.contains("at least one period type"), "{error}");
        jail.set_env("CAPSTATS_AGGREGATION_PERIOD_TYPES", "[daily]");
        jail.set_env("CAPSTATS_MISFIRE_GRACE_SECONDS", "2");
        jail.set_env("CAPSTATS_SCHEDULER_INTERVAL_MS", "5000");
        let error = Settings::from_environment().unwrap_err().to_string();
        assert!(error.contains("CAPSTATS_MISFIRE_GRACE_SECONDS"), "{error}");
        jail.set_env("CAPSTATS_SCHEDULER_INTERVAL_MS", "1000");
        jail.set_env("CAPSTATS_JOB_RETRY_BASE_SECONDS", "0");
        let error = Settings::from_environment().unwrap_err().to_string();
        assert!(error.contains("CAPSTATS_JOB_RETRY_BASE_SECONDS"), "{error}");
        jail.set_env("CAPSTATS_JOB_RETRY_BASE_SECONDS", "10");
        jail.set_env("CAPSTATS_REMEMBERED_READS_MB", "70000");
        let error = Settings::from_environment().unwrap_err().to_string();
        assert!(error.contains("CAPSTATS_REMEMBERED_READS_MB"), "{error}");
        jail.set_env("CAPSTATS_REMEMBERED_READS_MB", "0");
        jail.set_env("CAPSTATS_CONFIG_FILE", "missing.toml");
        let error = Settings::from_environment().unwrap_err().to_string();
        assert!(error.contains("missing.toml"), "{error}");
        Ok(())
    });
}

#[test]
fn samples_and_aggregates_have_their_own_retention() {
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        let settings = Settings::from_environment().unwrap();
        assert_eq!(
            (
                settings.sample_retention_months,
                settings.aggregate_retention_months
            ),
            (36, 120)
        );
        // The single retention of earlier releases is refused by name, not ignored.
        jail.set_env("CAPSTATS_RETENTION_MONTHS", "24");
        let error = Settings::from_environment().unwrap_err().to_string();
        assert!(
            error.contains("CAPSTATS_RETENTION_MONTHS is replaced by")
                && error.contains("CAPSTATS_SAMPLE_RETENTION_MONTHS"),
            "{error}"
        );
        jail.clear_env();
        // Aggregates may not vanish before the samples they summarise.
        for (samples, aggregates, accepted) in [
            ("24", "12", false),
            ("0", "120", false),
            ("24", "24", true),
            ("0", "0", true),
            ("36", "0", true),
        ] {
            jail.set_env("CAPSTATS_SAMPLE_RETENTION_MONTHS", samples);
            jail.set_env("CAPSTATS_AGGREGATE_RETENTION_MONTHS", aggregates);
            let result = Settings::from_environment();
            assert_eq!(
                result.is_ok(),
                accepted,
                "{samples}/{aggregates}: {result:?}"
            );
            if let Err(error) = result {
                assert!(
                    error
                        .to_string()
                        .contains("CAPSTATS_AGGREGATE_RETENTION_MONTHS"),
                    "{error}"
                );
            }
        }
        Ok(())
    });
}

#[test]
fn debug_shows_no_secret() {
    let settings = Settings {
        database_url: "postgres://capstats:database-secret@db/capstats".into(),
        session_key: Some("session-secret".into()),
        metrics_token: Some("metrics-secret".into()),
        credential_key: Some("credential-secret".into()),
        credential_old_keys: vec!["old-credential-secret".into()],
        smtp_url: Some("smtps://mailer:smtp-secret@mail:465".into()),
        ..Settings::default()
    };
    let shown = format!("{settings:?}");
    assert!(!shown.contains("secret"), "{shown}");
    assert_eq!(
        shown.matches("<redacted>").count(),
        SECRET_SETTINGS.len(),
        "{shown}"
    );
    assert!(shown.contains(r#""api_bind": "127.0.0.1:8080""#), "{shown}");
    // Unset secrets show as unset.
    let shown = format!("{:?}", Settings::default());
    assert!(shown.contains(r#""metrics_token": null"#), "{shown}");

    // A setting whose name says it is a secret is listed (or is known not to be one).
    let names = serde_json::to_value(Settings::default()).unwrap();
    for name in names.as_object().unwrap().keys() {
        let secret_like = ["key", "token", "password", "secret", "url"]
            .iter()
            .any(|word| name.contains(word));
        let not_secret = ["token_expiry_days", "public_url"].contains(&name.as_str());
        assert!(
            !secret_like || not_secret || SECRET_SETTINGS.contains(&name.as_str()),
            "{name} looks like a secret: add it to SECRET_SETTINGS or to this test's exceptions"
        );
    }
}

#[test]
fn a_session_key_with_a_non_ascii_character_is_refused_without_showing_it() {
    // 128 bytes, one of them inside a typographic quote: the length passes, the digits do not.
    let key = format!("\u{201c}{}", "ab".repeat(62) + "a");
    assert_eq!(key.len(), 128);
    let settings = Settings {
        session_key: Some(key.clone()),
        ..Settings::default()
    };
    let error = settings.session_key_bytes().unwrap_err().to_string();
    assert!(error.contains("hexadecimal"), "{error}");
    assert!(!error.contains(&key[3..]), "{error}");
}
