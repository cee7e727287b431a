//! Identifiers for requests and errors: 32 random hex digits.

/// A new random identifier.
pub fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Whether a client-sent request id is safe to echo: 1–128 letters, digits, `-` or `_`.
pub fn is_acceptable_request_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 128
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}
