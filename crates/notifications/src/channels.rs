//! The request each channel kind takes: the generic webhook's JSON body and signature
//! headers, DingTalk's signed URL and markdown message, WeCom's markdown message, Feishu's
//! signed text message. Pure functions of the notice, the secret and the time, so that the
//! formats are tested without a network.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::NotificationError;
use crate::message::Notice;

type HmacSha256 = Hmac<Sha256>;

/// Header with the Unix time (seconds) a signed webhook was sent at.
pub const TIMESTAMP_HEADER: &str = "X-Capstats-Timestamp";
/// Header with a webhook's signature: `sha256=` and the hex HMAC-SHA256, under the channel's
/// secret, of the timestamp, a dot and the body.
pub const SIGNATURE_HEADER: &str = "X-Capstats-Signature";
/// Header with the notification's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// The signature header's value of a webhook `body` sent at `timestamp` (Unix seconds).
pub fn webhook_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &signed))
    )
}

/// An HTTP request to a channel: where, what, and the extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotRequest {
    /// The URL (with DingTalk's signature parameters when signed).
    pub url: String,
    /// The JSON body, serialized.
    pub body: Vec<u8>,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
}

/// The generic webhook: the notice as JSON, its idempotency key, and when a secret is set the
/// timestamp and signature headers.
pub fn webhook(url: &str, secret: Option<&str>, notice: &Notice, now_seconds: i64) -> RobotRequest {
    let body = serde_json::to_vec(notice).expect("a notice serializes");
    let mut headers = vec![(IDEMPOTENCY_HEADER, notice.idempotency_key.clone())];
    if let Some(secret) = secret {
        headers.push((TIMESTAMP_HEADER, now_seconds.to_string()));
        headers.push((
            SIGNATURE_HEADER,
            webhook_signature(secret, now_seconds, &body),
        ));
    }
    RobotRequest {
        url: url.to_owned(),
        body,
        headers,
    }
}

/// A DingTalk custom robot: a markdown message; with a secret ("加签") the URL carries
/// `timestamp` (ms) and `sign`, the Base64 HMAC-SHA256 of `timestamp + "\n" + secret` under
/// the secret.
pub fn dingtalk(
    url: &str,
    secret: Option<&str>,
    notice: &Notice,
    now_millis: i64,
) -> Result<RobotRequest, NotificationError> {
    let mut url = url::Url::parse(url).map_err(|_| NotificationError::InvalidTarget)?;
    if let Some(secret) = secret {
        let sign = BASE64.encode(hmac_sha256(
            secret.as_bytes(),
            format!("{now_millis}\n{secret}").as_bytes(),
        ));
        url.query_pairs_mut()
            .append_pair("timestamp", &now_millis.to_string())
            .append_pair("sign", &sign);
    }
    let body = json!({
        "msgtype": "markdown",
        "markdown": {"title": notice.title(), "text": notice.markdown()},
    });
    Ok(RobotRequest {
        url: url.into(),
        body: serde_json::to_vec(&body).expect("JSON serializes"),
        headers: Vec::new(),
    })
}

/// A WeCom group robot: a markdown message (the key is in the URL).
pub fn wecom(url: &str, notice: &Notice) -> RobotRequest {
    let body = json!({"msgtype": "markdown", "markdown": {"content": notice.markdown()}});
    RobotRequest {
        url: url.to_owned(),
        body: serde_json::to_vec(&body).expect("JSON serializes"),
        headers: Vec::new(),
    }
}

/// A Feishu custom bot: a text message; with a secret the body carries `timestamp` (s) and
/// `sign`, the Base64 HMAC-SHA256 of nothing under the key `timestamp + "\n" + secret`.
pub fn feishu(url: &str, secret: Option<&str>, notice: &Notice, now_seconds: i64) -> RobotRequest {
    let mut body = json!({"msg_type": "text", "content": {"text": notice.plain_text()}});
    if let Some(secret) = secret {
        let sign = BASE64.encode(hmac_sha256(
            format!("{now_seconds}\n{secret}").as_bytes(),
            b"",
        ));
        body["timestamp"] = Value::String(now_seconds.to_string());
        body["sign"] = Value::String(sign);
    }
    RobotRequest {
        url: url.to_owned(),
        body: serde_json::to_vec(&body).expect("JSON serializes"),
        headers: Vec::new(),
    }
}

/// The robots answer HTTP 200 with an error code in the body: DingTalk and WeCom `errcode`,
/// Feishu `code` (older versions `StatusCode`). Anything but 0 is a failed delivery.
pub fn robot_refusal(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    let code = ["errcode", "code", "StatusCode"]
        .iter()
        .find_map(|field| value.get(*field).and_then(Value::as_i64))?;
    if code == 0 {
        return None;
    }
    let message = ["errmsg", "msg", "StatusMessage"]
        .iter()
        .find_map(|field| value.get(*field).and_then(Value::as_str))
        .unwrap_or("");
    // The robot's own words, cut short: they say what is wrong with the message or its
    // signature, and an error is shown to every reader of the event.
    let message: String = message.chars().take(200).collect();
    Some(format!(
        "the robot refused the message: code {code} {message}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // The value of `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret`.
        assert_eq!(
            webhook_signature("secret", 1_700_000_000, br#"{"a":1}"#),
            format!(
                "sha256={}",
                hex::encode(hmac_sha256(b"secret", br#"1700000000.{"a":1}"#))
            )
        );
        assert_ne!(
            webhook_signature("secret", 1_700_000_000, br#"{"a":1}"#),
            webhook_signature("secret", 1_700_000_001, br#"{"a":1}"#)
        );
    }

    #[test]
    fn robot_refusals_are_read_from_the_body() {
        assert_eq!(robot_refusal(r#"{"errcode":0,"errmsg":"ok"}"#), None);
        assert_eq!(robot_refusal(r#"{"code":0,"msg":"success"}"#), None);
        assert_eq!(
            robot_refusal(r#"{"errcode":310000,"errmsg":"sign not match"}"#).as_deref(),
            Some("the robot refused the message: code 310000 sign not match")
        );
        assert!(robot_refusal(r#"{"code":19021,"msg":"sign match fail"}"#).is_some());
        assert_eq!(robot_refusal("not json"), None);
    }
}
