#![doc = include_str!("../README.md")]

pub mod channels;
pub mod message;

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use capstats_capacity_model::ChannelKind;

pub use message::{Notice, NoticeEvent, NoticeKey, NoticeRule, NoticeState};

/// Why a notification was not delivered. No variant carries a channel's URL or secret: robot
/// URLs hold their access token, and errors end up in logs and on the event.
#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    /// The receiver answered with an error status. Its body is not kept: the error is shown
    /// to every reader of the event, and the body of an internal address must not be.
    #[error("the receiver answered HTTP {0}")]
    Status(u16),
    /// A robot answered 200 with an error code in its body.
    #[error("{0}")]
    Refused(String),
    /// The request did not complete (connection refused, timeout, TLS).
    #[error("the request failed: {0}")]
    Request(String),
    /// The stored target is not a URL (or not a mail address).
    #[error("the channel's target is not valid")]
    InvalidTarget,
    /// A mail channel, but no SMTP server is configured.
    #[error("no SMTP server is configured (CAPSTATS_SMTP_URL and CAPSTATS_SMTP_FROM)")]
    MailNotConfigured,
    /// The SMTP server refused the mail or could not be reached.
    #[error("sending the mail failed: {0}")]
    Mail(String),
    /// No trusted certificate could be loaded, so no HTTPS receiver can be verified.
    #[error("no trusted certificate could be loaded; install the CA certificates package")]
    NoTrustedCertificates,
    /// The senders could not be set up (bad SMTP URL or sender address).
    #[error("cannot set up notifications: {0}")]
    Setup(String),
}

/// Where one notification goes: the channel's kind, its (opened) target and secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Destination {
    /// The kind.
    pub kind: ChannelKind,
    /// The URL or mail address.
    pub target: String,
    /// The signing secret.
    pub secret: Option<String>,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The target may hold an access token and the secret signs: neither is printed.
        formatter
            .debug_struct("Destination")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// How notifications are sent.
#[derive(Clone, Default)]
pub struct SenderSettings {
    /// How long one request (or mail) may take.
    pub timeout: Duration,
    /// The SMTP server as lettre reads it: `smtps://user:password@host:465` (TLS),
    /// `smtp://host:587?tls=required` (STARTTLS) or `smtp://host:25` (no TLS, for a relay on
    /// the same host).
    pub smtp_url: Option<String>,
    /// The sender of mails.
    pub smtp_from: Option<String>,
}

struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// The most of a robot's answer that is read.
const ROBOT_ANSWER_LIMIT: usize = 64 * 1024;

/// Sends notifications: one HTTP client for the robots and webhooks, one SMTP transport.
#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    mailer: Option<Arc<Mailer>>,
    /// Whether any trusted certificate was loaded.
    trusts_any: bool,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Sender")
            .field("mail", &self.mailer.is_some())
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// A sender trusting the system's certificates (ring provider, as the rest of the tree).
    pub fn new(settings: &SenderSettings) -> Result<Self, NotificationError> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        // Without any, a worker still starts (it may have no rule to notify, or only plain
        // HTTP and mail channels); HTTPS deliveries fail saying why.
        let (added, _) = roots.add_parsable_certificates(native.certs);
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|error| NotificationError::Setup(error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let timeout = if settings.timeout.is_zero() {
            Duration::from_secs(10)
        } else {
            settings.timeout
        };
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(timeout)
            // A redirect would send the body (and a signature) somewhere not configured.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("capstats/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| NotificationError::Setup(error.without_url().to_string()))?;
        let mailer = match (&settings.smtp_url, &settings.smtp_from) {
            (Some(url), Some(from)) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|error| {
                        NotificationError::Setup(format!("CAPSTATS_SMTP_URL: {error}"))
                    })?
                    .timeout(Some(timeout))
                    .build();
                let from = from.parse::<Mailbox>().map_err(|error| {
                    NotificationError::Setup(format!("CAPSTATS_SMTP_FROM: {error}"))
                })?;
                Some(Arc::new(Mailer { transport, from }))
            }
            (None, None) => None,
            _ => {
                return Err(NotificationError::Setup(
                    "CAPSTATS_SMTP_URL and CAPSTATS_SMTP_FROM go together".into(),
                ));
            }
        };
        Ok(Self {
            http,
            mailer,
            trusts_any: added > 0,
        })
    }

    /// Sends `notice` to `destination`.
    pub async fn send(
        &self,
        destination: &Destination,
        notice: &Notice,
    ) -> Result<(), NotificationError> {
        let now = chrono::Utc::now();
        let secret = destination.secret.as_deref();
        let target = destination.target.as_str();
        if destination.kind != ChannelKind::Email
            && !self.trusts_any
            && target.to_ascii_lowercase().starts_with("https://")
        {
            return Err(NotificationError::NoTrustedCertificates);
        }
        // The robots answer 200 with an error code in the body; a generic webhook's body is
        // its own business.
        let robot = !matches!(destination.kind, ChannelKind::Webhook | ChannelKind::Email);
        let request = match destination.kind {
            ChannelKind::Email => return self.mail(target, notice).await,
            ChannelKind::Webhook => channels::webhook(target, secret, notice, now.timestamp()),
            ChannelKind::Dingtalk => {
                channels::dingtalk(target, secret, notice, now.timestamp_millis())?
            }
            ChannelKind::Wecom => channels::wecom(target, notice),
            ChannelKind::Feishu => channels::feishu(target, secret, notice, now.timestamp()),
        };
        self.post(request, robot).await
    }

    async fn post(
        &self,
        request: channels::RobotRequest,
        robot: bool,
    ) -> Result<(), NotificationError> {
        let mut builder = self
            .http
            .post(&request.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(request.body);
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        let response = builder
            .send()
            .await
            .map_err(|error| NotificationError::Request(describe(error)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(NotificationError::Status(status.as_u16()));
        }
        if !robot {
            // A webhook is judged by its status; its body is not read.
            return Ok(());
        }
        // A robot's answer is a small JSON object; more than this is not one.
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| NotificationError::Request(describe(error)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > ROBOT_ANSWER_LIMIT {
                return Err(NotificationError::Refused(format!(
                    "the robot's answer is longer than {ROBOT_ANSWER_LIMIT} bytes"
                )));
            }
        }
        match channels::robot_refusal(&String::from_utf8_lossy(&body)) {
            Some(refusal) => Err(NotificationError::Refused(refusal)),
            None => Ok(()),
        }
    }

    async fn mail(&self, to: &str, notice: &Notice) -> Result<(), NotificationError> {
        let mailer = self
            .mailer
            .as_ref()
            .ok_or(NotificationError::MailNotConfigured)?;
        let to = to
            .parse::<Mailbox>()
            .map_err(|_| NotificationError::InvalidTarget)?;
        let message = lettre::Message::builder()
            .from(mailer.from.clone())
            .to(to)
            .subject(notice.title())
            // The idempotency key as the message id: a mail system that sees the same
            // notification twice can tell.
            .message_id(Some(format!("<{}@capstats>", notice.idempotency_key)))
            .header(ContentType::TEXT_PLAIN)
            .body(notice.lines().join("\n"))
            .map_err(|error| NotificationError::Mail(error.to_string()))?;
        mailer
            .transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|error| NotificationError::Mail(error.to_string()))
    }
}

/// A request error with its causes but never its URL (robot URLs hold access tokens).
fn describe(error: reqwest::Error) -> String {
    use std::error::Error as _;
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
