//! Local receivers of what capstats sends out: an HTTP server recording webhook and robot
//! deliveries (answering 500 to the first requests of a path when told to), and an SMTP sink
//! recording mails. Both run on threads of their own and listen on an ephemeral port.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// A request the HTTP receiver got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    /// The path and query.
    pub url: String,
    /// The headers, names in lower case.
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub status: u16,
}

/// An HTTP server recording every request; it answers `{"errcode":0,"errmsg":"ok"}` (what
/// the chat robots answer), or 500 to the first failures of a path.
pub struct HttpReceiver {
    address: std::net::SocketAddr,
    received: Arc<Mutex<Vec<ReceivedRequest>>>,
    server: Arc<tiny_http::Server>,
}

impl HttpReceiver {
    /// Starts the receiver; the first `failures` requests whose path starts with each given
    /// prefix are answered 500.
    pub fn start(failures: &[(&str, usize)]) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind a receiver"));
        let address = server
            .server_addr()
            .to_ip()
            .expect("the receiver listens on IP");
        let received = Arc::new(Mutex::new(Vec::new()));
        let mut failures: HashMap<String, usize> = failures
            .iter()
            .map(|(prefix, count)| ((*prefix).to_owned(), *count))
            .collect();
        let serving = server.clone();
        let log = received.clone();
        std::thread::spawn(move || {
            for mut request in serving.incoming_requests() {
                let mut body = Vec::new();
                let _ = request.as_reader().read_to_end(&mut body);
                let url = request.url().to_owned();
                let failing = failures
                    .iter_mut()
                    .find(|(prefix, left)| url.starts_with(prefix.as_str()) && **left > 0);
                let status = match failing {
                    Some((_, left)) => {
                        *left -= 1;
                        500
                    }
                    None => 200,
                };
                let headers = request
                    .headers()
                    .iter()
                    .map(|header| {
                        (
                            header.field.as_str().as_str().to_ascii_lowercase(),
                            header.value.as_str().to_owned(),
                        )
                    })
                    .collect();
                log.lock().unwrap().push(ReceivedRequest {
                    url,
                    headers,
                    body,
                    status,
                });
                let answer = if status == 200 {
                    r#"{"errcode":0,"errmsg":"ok"}"#
                } else {
                    "receiver failing on purpose"
                };
                let _ = request
                    .respond(tiny_http::Response::from_string(answer).with_status_code(status));
            }
        });
        Self {
            address,
            received,
            server,
        }
    }

    /// `http://127.0.0.1:<port>` and `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// A mail the SMTP sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender.
    pub from: String,
    /// The envelope recipients.
    pub to: Vec<String>,
    /// The message as sent (headers and body).
    pub data: String,
}

/// A minimal SMTP server that accepts every mail (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT;
/// no TLS, no authentication) and records it.
pub struct SmtpSink {
    address: std::net::SocketAddr,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
}

impl SmtpSink {
    /// Starts the sink.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the SMTP sink");
        let address = listener.local_addr().expect("an address");
        let mails = Arc::new(Mutex::new(Vec::new()));
        let log = mails.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = serve_smtp(stream, &log);
                });
            }
        });
        Self { address, mails }
    }

    /// `smtp://127.0.0.1:<port>`, as `CAPSTATS_SMTP_URL` takes it.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    /// Every mail so far, in arrival order.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.mails.lock().unwrap().clone()
    }
}

fn serve_smtp(stream: TcpStream, log: &Mutex<Vec<ReceivedMail>>) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut reply = |text: &str| writer.write_all(format!("{text}\r\n").as_bytes());
    reply("220 capstats-test-sink ESMTP")?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            reply("250 capstats-test-sink")?;
        } else if upper.starts_with("MAIL FROM:") {
            from = command[10..].trim().trim_matches(['<', '>']).to_owned();
            reply("250 OK")?;
        } else if upper.starts_with("RCPT TO:") {
            to.push(command[8..].trim().trim_matches(['<', '>']).to_owned());
            reply("250 OK")?;
        } else if upper == "DATA" {
            reply("354 end with <CRLF>.<CRLF>")?;
            let mut data = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            log.lock().unwrap().push(ReceivedMail {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data,
            });
            reply("250 OK queued")?;
        } else if upper == "QUIT" {
            reply("221 bye")?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            reply("250 OK")?;
        } else {
            reply("502 not implemented")?;
        }
    }
}
