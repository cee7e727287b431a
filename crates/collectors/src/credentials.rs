//! Sealing the passwords collectors connect with: AES-256-GCM under a key from the settings,
//! with a fresh random nonce per password, so the database alone never reveals them.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};

use crate::CollectorError;

/// First byte of every sealed value: the scheme, so that it can change later.
const SCHEME_AES_256_GCM: u8 = 1;
/// Bytes of an AES-GCM nonce.
const NONCE_BYTES: usize = 12;

/// The key that seals and opens stored passwords.
#[derive(Clone)]
pub struct CredentialKey(Aes256Gcm);

impl std::fmt::Debug for CredentialKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        formatter.write_str("CredentialKey(..)")
    }
}

impl CredentialKey {
    /// A key from 64 hex digits (32 bytes), the form of `CAPSTATS_CREDENTIAL_KEY`.
    pub fn from_hex(text: &str) -> Result<Self, CollectorError> {
        let bytes = hex::decode(text.trim()).map_err(|error| {
            CollectorError::Key(format!("expected 64 hex digits (32 bytes): {error}"))
        })?;
        if bytes.len() != 32 {
            return Err(CollectorError::Key(format!(
                "expected 64 hex digits (32 bytes), got {} bytes",
                bytes.len()
            )));
        }
        Aes256Gcm::new_from_slice(&bytes)
            .map(Self)
            .map_err(|error| CollectorError::Key(error.to_string()))
    }

    /// Seals `secret`: scheme byte, random nonce, ciphertext with its tag.
    pub fn seal(&self, secret: &str) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_BYTES] = rand::random();
        let ciphertext = self
            .0
            .encrypt(&Nonce::from(nonce_bytes), secret.as_bytes())
            .expect("AES-GCM encrypts any password-sized input");
        let mut sealed = Vec::with_capacity(1 + NONCE_BYTES + ciphertext.len());
        sealed.push(SCHEME_AES_256_GCM);
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Opens what [`seal`](Self::seal) produced; fails for another key or altered bytes.
    pub fn open(&self, sealed: &[u8]) -> Result<String, CollectorError> {
        let (scheme, rest) = sealed.split_first().ok_or(CollectorError::Unsealable)?;
        if *scheme != SCHEME_AES_256_GCM || rest.len() < NONCE_BYTES {
            return Err(CollectorError::Unsealable);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| CollectorError::Unsealable)?;
        let plain = self
            .0
            .decrypt(&Nonce::from(nonce), ciphertext)
            .map_err(|_| CollectorError::Unsealable)?;
        String::from_utf8(plain).map_err(|_| CollectorError::Unsealable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: &str) -> CredentialKey {
        CredentialKey::from_hex(&byte.repeat(32)).unwrap()
    }

    #[test]
    fn a_sealed_password_opens_with_its_key_only() {
        let sealed = key("01").seal("pässword");
        assert_eq!(key("01").open(&sealed).unwrap(), "pässword");
        assert!(matches!(
            key("02").open(&sealed),
            Err(CollectorError::Unsealable)
        ));
        assert!(!sealed.windows(8).any(|window| window == b"password"));
    }

    #[test]
    fn each_seal_uses_a_new_nonce() {
        let key = key("07");
        assert_ne!(key.seal("same"), key.seal("same"));
    }

    #[test]
    fn altered_or_truncated_values_are_refused() {
        let key = key("09");
        let mut sealed = key.seal("secret");
        *sealed.last_mut().unwrap() ^= 1;
        assert!(key.open(&sealed).is_err());
        assert!(key.open(&[]).is_err());
        assert!(key.open(&[SCHEME_AES_256_GCM, 1, 2]).is_err());
        let mut other_scheme = key.seal("secret");
        other_scheme[0] = 2;
        assert!(key.open(&other_scheme).is_err());
    }

    #[test]
    fn keys_must_be_32_bytes_of_hex() {
        assert!(CredentialKey::from_hex("abcd").is_err());
        assert!(CredentialKey::from_hex(&"zz".repeat(32)).is_err());
        assert!(CredentialKey::from_hex(&"ab".repeat(33)).is_err());
        assert!(CredentialKey::from_hex(&format!(" {} ", "ab".repeat(32))).is_ok());
    }
}
