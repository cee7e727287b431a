//! Alerts end to end: rules through the API, evaluation after runs on two real workers,
//! deliveries to a local HTTP receiver and SMTP sink — signed, once per change of an event's
//! state and channel, retried after a 500 — and the events with their attempts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use capstats_test_support::receivers::{HttpReceiver, ReceivedRequest, SmtpSink};

use crate::common::{TestApp, Worker};

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Runs the current daily period on the workers and waits for its session to end.
async fn run_and_wait(app: &TestApp, admin: &Client, csrf: &str) -> i64 {
    let (status, body) = app
        .post(
            admin,
            csrf,
            "/capacity/aggregations/current",
            Some(json!({"period_type": "daily", "scope": "instance"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let session_id = body["data"]["session_id"]
        .as_i64()
        .or_else(|| body["data"]["session"]["id"].as_i64())
        .unwrap_or_else(|| panic!("no session id in {body}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = app
            .get(admin, &format!("/sync-sessions/{session_id}"))
            .await;
        if body["data"]["session"]["status"] == "completed" {
            return session_id;
        }
        assert!(Instant::now() < deadline, "the run did not finish: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `done` holds for the events, and returns them.
async fn events_when(
    app: &TestApp,
    client: &Client,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = app.get_ok(client, "/alerts/events?limit=200").await;
        let events = body["data"]["items"].as_array().unwrap().clone();
        if done(&events) {
            return events;
        }
        assert!(Instant::now() < deadline, "{what}: {events:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn notifications(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .flat_map(|event| event["notifications"].as_array().unwrap().clone())
        .collect()
}

fn all_delivered(events: &[Value], expected: usize) -> bool {
    let notifications = notifications(events);
    notifications.len() == expected
        && notifications
            .iter()
            .all(|notification| notification["status"] == "delivered")
}

fn successful(requests: &[ReceivedRequest], prefix: &str) -> Vec<ReceivedRequest> {
    requests
        .iter()
        .filter(|request| request.url.starts_with(prefix) && request.status == 200)
        .cloned()
        .collect()
}

fn rule(receiver: &HttpReceiver, above: f64) -> Value {
    json!({
        "name": "instances over a size",
        "level": "instance",
        "condition": {"metric": "size_mb", "above": above},
        "severity": "warning",
        "channels": [
            {"kind": "webhook", "url": receiver.url("/hook"), "secret": "webhook-secret"},
            {"kind": "dingtalk", "url": receiver.url("/dingtalk/robot/send?access_token=ding-token"), "secret": "SECding"},
            {"kind": "wecom", "url": receiver.url("/wecom/send?key=wecom-key")},
            {"kind": "feishu", "url": receiver.url("/feishu/hook/feishu-token"), "secret": "feishu-secret"},
            {"kind": "email", "to": "dba@example.com"}
        ]
    })
}

#[actix_web::test]
async fn rules_notify_every_channel_once_per_state_change_across_two_workers() {
    let app = TestApp::spawn(100).await;
    let receiver = HttpReceiver::start(&[("/hook", 1)]);
    let smtp = SmtpSink::start();
    let (admin, csrf) = app.login("admin").await;
    let (viewer, viewer_csrf) = app.login("viewer").await;

    // A bad rule is refused field by field, and nothing is stored.
    let (status, body) = app
        .post(
            &admin,
            &csrf,
            "/alerts/rules",
            Some(json!({
                "name": " ",
                "level": "planet",
                "condition": {"metric": "size_mb", "above": 1, "below": 2},
                "severity": "loud",
                "channels": [{"kind": "webhook", "to": "dba@example.com"},
                             {"kind": "email", "to": "not an address"}]
            })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    for field in [
        "level",
        "severity",
        "condition.below",
        "channels[0].to",
        "channels[0].url",
    ] {
        assert!(fields.contains(&field), "{field} not named: {body}");
    }
    let (status, body) = app
        .post(
            &admin,
            &csrf,
            "/alerts/rules",
            Some(json!({
                "name": "silent",
                "level": "database",
                "condition": {"metric": "no_samples_days", "below": 2},
                "severity": "info",
                "channels": [{"kind": "email", "to": "not an address"}]
            })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"condition.below") && fields.contains(&"channels[0].to"),
        "{body}"
    );
    // Viewers read events but manage no rules; writes need the CSRF token.
    let (status, _) = app
        .post(
            &viewer,
            &viewer_csrf,
            "/alerts/rules",
            Some(rule(&receiver, 0.0)),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.get(&viewer, "/alerts/rules").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(
            &admin,
            Method::POST,
            "/alerts/rules",
            None,
            Some(rule(&receiver, 0.0)),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Every instance of the seed is over 0 MB.
    let (status, body) = app
        .post(&admin, &csrf, "/alerts/rules", Some(rule(&receiver, 0.0)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let rule_id = body["data"]["id"].as_i64().unwrap();
    let shown = body.to_string();
    for secret in [
        "ding-token",
        "wecom-key",
        "feishu-token",
        "webhook-secret",
        "SECding",
        "feishu-secret",
    ] {
        assert!(!shown.contains(secret), "{secret} shown: {body}");
    }
    let channels = body["data"]["channels"].as_array().unwrap();
    assert_eq!(channels[1]["target"], format!("{}/…", receiver.url("")));
    assert_eq!(channels[1]["has_secret"], true);
    assert_eq!(channels[4]["target"], "dba@example.com");
    // The database holds no target or secret in clear either.
    let url = app.database.url();
    let in_clear = capstats_test_support::count(
        &url,
        "SELECT count(*) FROM alert_channels
         WHERE position(convert_to('ding-token', 'UTF8') in sealed_target) > 0
            OR position(convert_to('SECding', 'UTF8') in coalesce(sealed_secret, '')) > 0
            OR display_target LIKE '%token%'",
    );
    assert_eq!(in_clear, 0);
    let (_, audit) = app.get(&admin, "/audit-events?action=alerts.").await;
    assert!(
        audit["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|event| event["http_method"] == "POST" && event["outcome"] == "success"),
        "{audit}"
    );

    let smtp_url = smtp.url();
    let environment = [
        ("CAPSTATS_WORKER_POLL_INTERVAL_MS", "100"),
        ("CAPSTATS_JOB_RETRY_BASE_SECONDS", "1"),
        ("CAPSTATS_SMTP_URL", smtp_url.as_str()),
        ("CAPSTATS_SMTP_FROM", "capstats <capstats@example.com>"),
        ("CAPSTATS_PUBLIC_URL", "https://capstats.example.com/"),
    ];
    let _first = Worker::start_with(&url, &environment);
    let _second = Worker::start_with(&url, &environment);

    // The run opens one event per instance, and each is told to each of the 5 channels once.
    let first_session = run_and_wait(&app, &admin, &csrf).await;
    let events = events_when(&app, &admin, "15 notifications delivered", |events| {
        events.len() == 3 && all_delivered(events, 15)
    })
    .await;
    for event in &events {
        assert_eq!(event["state"], "open");
        assert_eq!(event["rule"]["id"], rule_id);
        assert!(event["value"].as_f64().unwrap() > 0.0);
        assert_eq!(event["period_type"], "daily");
        assert!(
            event["context"]["last_size_mb"].as_i64().unwrap() > 0,
            "{event}"
        );
    }
    let requests = receiver.requests();
    // The webhook's first request got a 500; the retry went through, and the event says so.
    assert_eq!(
        requests
            .iter()
            .filter(|request| request.status == 500)
            .count(),
        1
    );
    let retried: Vec<Value> = notifications(&events)
        .into_iter()
        .filter(|notification| notification["attempts"] == 2)
        .collect();
    assert_eq!(retried.len(), 1, "{events:#?}");
    assert_eq!(retried[0]["channel_kind"], "webhook");
    assert!(
        retried[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("HTTP 500"),
        "{retried:#?}"
    );

    // Webhooks: signed, one per event, each with its own idempotency key.
    let hooks = successful(&requests, "/hook");
    assert_eq!(hooks.len(), 3);
    let mut keys = Vec::new();
    for hook in &hooks {
        let timestamp = &hook.headers["x-capstats-timestamp"];
        let mut signed = format!("{timestamp}.").into_bytes();
        signed.extend_from_slice(&hook.body);
        assert_eq!(
            hook.headers["x-capstats-signature"],
            format!(
                "sha256={}",
                hex::encode(hmac_sha256(b"webhook-secret", &signed))
            )
        );
        let body: Value = serde_json::from_slice(&hook.body).unwrap();
        assert_eq!(
            body["idempotency_key"],
            hook.headers["idempotency-key"].as_str()
        );
        assert_eq!(body["event"]["state"], "open");
        assert_eq!(body["rule"]["name"], "instances over a size");
        let link = body["link"].as_str().unwrap();
        assert!(
            link.starts_with(
                "https://capstats.example.com/capacity/instances?period_type=daily&instance_id="
            ),
            "{link}"
        );
        assert!(
            body["summary"]
                .as_str()
                .unwrap()
                .contains("size in the latest daily period"),
            "{body}"
        );
        keys.push(body["idempotency_key"].as_str().unwrap().to_owned());
    }
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 3);

    // DingTalk: a markdown message to the signed URL.
    let dingtalk = successful(&requests, "/dingtalk");
    assert_eq!(dingtalk.len(), 3);
    for request in &dingtalk {
        let query: BTreeMap<String, String> = url::Url::parse(&format!("http://x{}", request.url))
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        assert_eq!(query["access_token"], "ding-token");
        let expected = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(
            b"SECding",
            format!("{}\nSECding", query["timestamp"]).as_bytes(),
        ));
        assert_eq!(query["sign"], expected);
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["msgtype"], "markdown");
        assert!(
            body["markdown"]["text"]
                .as_str()
                .unwrap()
                .contains("Details: https://capstats.example.com/")
        );
    }
    // WeCom: markdown; Feishu: signed text.
    let wecom = successful(&requests, "/wecom");
    assert_eq!(wecom.len(), 3);
    let body: Value = serde_json::from_slice(&wecom[0].body).unwrap();
    assert_eq!(body["msgtype"], "markdown");
    assert!(
        body["markdown"]["content"]
            .as_str()
            .unwrap()
            .contains("ALERT warning")
    );
    let feishu = successful(&requests, "/feishu");
    assert_eq!(feishu.len(), 3);
    for request in &feishu {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let timestamp = body["timestamp"].as_str().unwrap();
        let expected = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(
            format!("{timestamp}\nfeishu-secret").as_bytes(),
            b"",
        ));
        assert_eq!(body["sign"], expected);
        assert_eq!(body["msg_type"], "text");
    }
    // Mail: one per event, to the channel's address, from the configured sender.
    let mails = smtp.mails();
    assert_eq!(mails.len(), 3, "{mails:#?}");
    for mail in &mails {
        assert_eq!(mail.to, vec!["dba@example.com".to_owned()]);
        assert_eq!(mail.from, "capstats@example.com");
        assert!(
            mail.data
                .contains("Subject: [capstats ALERT warning] instances over a size"),
            "{}",
            mail.data
        );
    }

    // Another run: the events are seen again, nothing is notified again.
    let second_session = run_and_wait(&app, &admin, &csrf).await;
    assert_ne!(first_session, second_session);
    let deadline = Instant::now() + Duration::from_secs(60);
    while capstats_test_support::count(
        &url,
        &format!("SELECT count(*) FROM alert_evaluations WHERE session_id = {second_session}"),
    ) == 0
    {
        assert!(
            Instant::now() < deadline,
            "the second session was not evaluated"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        capstats_test_support::count(&url, "SELECT count(*) FROM alert_notifications"),
        15
    );
    let (_, open) = app.get(&viewer, "/alerts/events?state=open").await;
    assert_eq!(open["data"]["total"], 3, "{open}");

    // Raising the threshold past every size resolves the events: one more notification per
    // event and channel, this time saying so.
    let (status, body) = app
        .put(
            &admin,
            &csrf,
            &format!("/alerts/rules/{rule_id}"),
            rule(&receiver, 1e9),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    run_and_wait(&app, &admin, &csrf).await;
    let events = events_when(&app, &admin, "the events resolved and notified", |events| {
        events.iter().all(|event| event["state"] == "resolved") && all_delivered(events, 30)
    })
    .await;
    assert_eq!(events.len(), 3);
    let requests = receiver.requests();
    let hooks = successful(&requests, "/hook");
    assert_eq!(hooks.len(), 6);
    let resolved: Vec<Value> = hooks[3..]
        .iter()
        .map(|hook| serde_json::from_slice(&hook.body).unwrap())
        .collect();
    assert!(
        resolved
            .iter()
            .all(|body| body["event"]["state"] == "resolved")
    );
    assert_eq!(smtp.mails().len(), 6);
    let (_, resolved_page) = app
        .get(&viewer, "/alerts/events?state=resolved&severity=warning")
        .await;
    assert_eq!(resolved_page["data"]["total"], 3);

    // Deleting the rule takes its events with it.
    let (status, _) = app
        .delete(&admin, &csrf, &format!("/alerts/rules/{rule_id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, after) = app.get(&viewer, "/alerts/events").await;
    assert_eq!(after["data"]["total"], 0);
    let (status, _) = app.get(&admin, &format!("/alerts/rules/{rule_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}
