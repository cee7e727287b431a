//! A stream guard that fails the read carrying a PostgreSQL server's cleartext password request.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The message a [`RefuseCleartext`] read fails with.
#[derive(Debug, thiserror::Error)]
#[error("the server asked for a cleartext password; refused")]
struct CleartextRequested;

/// Passes a PostgreSQL server's bytes through, following the message framing (a type byte and
/// a 4-byte big-endian length that counts itself), and fails the read that carries an
/// authentication request of code 3 (`AuthenticationCleartextPassword`) before the driver
/// sees it. Nothing is parsed beyond the frame headers and the authentication code.
pub(super) struct RefuseCleartext<S> {
    inner: S,
    scanner: MessageScanner,
    refused: Arc<AtomicBool>,
}

impl<S> RefuseCleartext<S> {
    pub(super) fn new(inner: S, refused: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            scanner: MessageScanner::Header {
                bytes: [0; 5],
                filled: 0,
            },
            refused,
        }
    }
}

/// Where in the server's message stream the next byte falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageScanner {
    /// Within the 5-byte header (type and length).
    Header { bytes: [u8; 5], filled: usize },
    /// Within the 4-byte code of an `R` (authentication) message; `rest` follows it.
    AuthenticationCode {
        bytes: [u8; 4],
        filled: usize,
        rest: usize,
    },
    /// Within a body that is not inspected.
    Body { remaining: usize },
}

/// `AuthenticationCleartextPassword`'s code.
const AUTHENTICATION_CLEARTEXT_PASSWORD: i32 = 3;

impl MessageScanner {
    const START: Self = Self::Header {
        bytes: [0; 5],
        filled: 0,
    };

    /// Follows `data`; fails when it completes a cleartext password request.
    fn feed(&mut self, mut data: &[u8]) -> Result<(), CleartextRequested> {
        while !data.is_empty() {
            match self {
                Self::Header { bytes, filled } => {
                    let taken = (5 - *filled).min(data.len());
                    bytes[*filled..*filled + taken].copy_from_slice(&data[..taken]);
                    *filled += taken;
                    data = &data[taken..];
                    if *filled == 5 {
                        let length = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
                        let body = (length as usize).saturating_sub(4);
                        *self = match (bytes[0], body) {
                            (b'R', 4..) => Self::AuthenticationCode {
                                bytes: [0; 4],
                                filled: 0,
                                rest: body - 4,
                            },
                            (_, 0) => Self::START,
                            (_, remaining) => Self::Body { remaining },
                        };
                    }
                }
                Self::AuthenticationCode {
                    bytes,
                    filled,
                    rest,
                } => {
                    let taken = (4 - *filled).min(data.len());
                    bytes[*filled..*filled + taken].copy_from_slice(&data[..taken]);
                    *filled += taken;
                    data = &data[taken..];
                    if *filled == 4 {
                        if i32::from_be_bytes(*bytes) == AUTHENTICATION_CLEARTEXT_PASSWORD {
                            return Err(CleartextRequested);
                        }
                        *self = match *rest {
                            0 => Self::START,
                            remaining => Self::Body { remaining },
                        };
                    }
                }
                Self::Body { remaining } => {
                    let taken = (*remaining).min(data.len());
                    *remaining -= taken;
                    data = &data[taken..];
                    if *remaining == 0 {
                        *self = Self::START;
                    }
                }
            }
        }
        Ok(())
    }
}

fn refusal() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, CleartextRequested)
}

impl<S: AsyncRead + Unpin> AsyncRead for RefuseCleartext<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.refused.load(Ordering::SeqCst) {
            return Poll::Ready(Err(refusal()));
        }
        let before = buffer.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(context, buffer))?;
        if this.scanner.feed(&buffer.filled()[before..]).is_err() {
            // Take the request back out of the buffer: the driver must not see it.
            buffer.set_filled(before);
            this.refused.store(true, Ordering::SeqCst);
            return Poll::Ready(Err(refusal()));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for RefuseCleartext<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(context, data)
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend message: type, length (counting itself), body.
    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut bytes = vec![kind];
        bytes.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        bytes.extend_from_slice(body);
        bytes
    }

    #[test]
    fn the_scanner_stops_a_cleartext_request_however_the_bytes_arrive() {
        let mut stream = message(b'S', b"server_version\x0015\x00");
        stream.extend(message(b'R', &10_i32.to_be_bytes()));
        stream.extend(message(
            b'R',
            &AUTHENTICATION_CLEARTEXT_PASSWORD.to_be_bytes(),
        ));
        for chunk in 1..=stream.len() {
            let mut scanner = MessageScanner::START;
            let refused = stream
                .chunks(chunk)
                .any(|piece| scanner.feed(piece).is_err());
            assert!(refused, "chunks of {chunk}");
        }
    }

    #[test]
    fn the_scanner_lets_other_messages_through() {
        let mut stream = message(b'R', &5_i32.to_be_bytes()); // MD5 (salt follows)
        stream.extend_from_slice(b"salt");
        stream[4] += 4;
        stream.extend(message(b'R', &0_i32.to_be_bytes()));
        // A data row whose bytes happen to look like a cleartext request.
        stream.extend(message(b'D', &message(b'R', &3_i32.to_be_bytes())));
        stream.extend(message(b'Z', b"I"));
        let mut scanner = MessageScanner::START;
        for piece in stream.chunks(3) {
            scanner.feed(piece).unwrap();
        }
        assert_eq!(scanner, MessageScanner::START);
    }
}
