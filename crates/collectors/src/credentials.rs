//! Sealing the passwords collectors connect with: AES-256-GCM under a key from the settings,
//! with a fresh random nonce per password, so the database alone never reveals them.
//!
//! The sealed form is `[scheme 2][key id, 8 bytes][nonce, 12 bytes][ciphertext and tag]`. The
//! key id tells which key sealed a value, so that values sealed under an old key still open
//! while `credentials rotate-key` re-seals them under the current one. The instance id is
//! authenticated as associated data: a sealed value copied to another instance's row does not
//! open there, so it cannot be sent to that instance's (perhaps attacker-chosen) server.
//!
//! Values of the first format (`[scheme 1][nonce][ciphertext]`, no key id, not bound to an
//! instance) still open, with any configured key, so that an upgrade does not stop
//! collections; `rotate-key` re-seals them in the current format.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use capstats_capacity_model::InstanceId;
use sha2::{Digest, Sha256};

use crate::CollectorError;

/// First byte of values of the first format: no key id, no associated data.
const SCHEME_LEGACY: u8 = 1;
/// First byte of current values: key id, instance id as associated data.
const SCHEME_BOUND: u8 = 2;
/// Bytes of an AES-GCM nonce.
const NONCE_BYTES: usize = 12;
/// Bytes of a key id.
const KEY_ID_BYTES: usize = 8;
/// Prefix of the associated data, so that it can never mean anything else.
const ASSOCIATED_DATA_LABEL: &[u8] = b"capstats collector password";

/// Which key sealed a value: the first 8 bytes of SHA-256 over a label and the key. It names a
/// key without revealing it (the key is 32 random bytes, so the hash cannot be inverted).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; KEY_ID_BYTES]);

impl fmt::Display for KeyId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "KeyId({self})")
    }
}

/// What a sealed value belongs to. Its kind and row id are authenticated as associated data,
/// so a sealed value copied to another row, or from one field to another, does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// The collector password of a monitored instance.
    CollectorPassword(InstanceId),
    /// The URL or mail address of alert channel `id` (robot URLs carry their access token).
    AlertChannelTarget(i64),
    /// The signing secret of alert channel `id`.
    AlertChannelSecret(i64),
}

impl Binding {
    fn label(self) -> &'static [u8] {
        match self {
            Self::CollectorPassword(_) => ASSOCIATED_DATA_LABEL,
            Self::AlertChannelTarget(_) => b"capstats alert channel target",
            Self::AlertChannelSecret(_) => b"capstats alert channel secret",
        }
    }

    fn row_id(self) -> i64 {
        match self {
            Self::CollectorPassword(instance) => instance.0,
            Self::AlertChannelTarget(id) | Self::AlertChannelSecret(id) => id,
        }
    }
}

/// One key that seals and opens stored passwords.
#[derive(Clone)]
pub struct CredentialKey {
    cipher: Aes256Gcm,
    id: KeyId,
}

impl fmt::Debug for CredentialKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material; the id is safe to show.
        write!(formatter, "CredentialKey({})", self.id)
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
        let digest = Sha256::new()
            .chain_update(b"capstats credential key id\0")
            .chain_update(&bytes)
            .finalize();
        let mut id = [0; KEY_ID_BYTES];
        id.copy_from_slice(&digest[..KEY_ID_BYTES]);
        let cipher = Aes256Gcm::new_from_slice(&bytes)
            .map_err(|error| CollectorError::Key(error.to_string()))?;
        Ok(Self {
            cipher,
            id: KeyId(id),
        })
    }

    /// The key's id, as written into every value it seals.
    pub fn id(&self) -> KeyId {
        self.id
    }

    fn associated_data(&self, binding: Binding) -> Vec<u8> {
        let label = binding.label();
        let mut data = Vec::with_capacity(label.len() + 1 + KEY_ID_BYTES + 8);
        data.extend_from_slice(label);
        // The header is authenticated too: an altered scheme or key id fails to open.
        data.push(SCHEME_BOUND);
        data.extend_from_slice(&self.id.0);
        data.extend_from_slice(&binding.row_id().to_be_bytes());
        data
    }

    /// Seals `secret` for `instance`'s collector password.
    pub fn seal(&self, instance: InstanceId, secret: &str) -> Vec<u8> {
        self.seal_for(Binding::CollectorPassword(instance), secret)
    }

    /// Seals `secret` bound to `binding`: scheme byte, key id, random nonce, ciphertext with
    /// its tag.
    pub fn seal_for(&self, binding: Binding, secret: &str) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_BYTES] = rand::random();
        let ciphertext = self
            .cipher
            .encrypt(
                &Nonce::from(nonce_bytes),
                Payload {
                    msg: secret.as_bytes(),
                    aad: &self.associated_data(binding),
                },
            )
            .expect("AES-GCM encrypts any password-sized input");
        let mut sealed = Vec::with_capacity(1 + KEY_ID_BYTES + NONCE_BYTES + ciphertext.len());
        sealed.push(SCHEME_BOUND);
        sealed.extend_from_slice(&self.id.0);
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    fn open_bound(&self, binding: Binding, body: &[u8]) -> Result<String, CollectorError> {
        let (nonce, ciphertext) = split_nonce(body)?;
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &self.associated_data(binding),
                },
            )
            .map_err(|_| CollectorError::Unsealable)?;
        String::from_utf8(plain).map_err(|_| CollectorError::Unsealable)
    }

    fn open_legacy(&self, body: &[u8]) -> Option<String> {
        let (nonce, ciphertext) = split_nonce(body).ok()?;
        let plain = self.cipher.decrypt(&Nonce::from(nonce), ciphertext).ok()?;
        String::from_utf8(plain).ok()
    }
}

fn split_nonce(body: &[u8]) -> Result<([u8; NONCE_BYTES], &[u8]), CollectorError> {
    if body.len() < NONCE_BYTES {
        return Err(CollectorError::Unsealable);
    }
    let (nonce, ciphertext) = body.split_at(NONCE_BYTES);
    let nonce = nonce.try_into().map_err(|_| CollectorError::Unsealable)?;
    Ok((nonce, ciphertext))
}

/// The keys of a deployment: the current one (`CAPSTATS_CREDENTIAL_KEY`), which seals, and
/// old ones (`CAPSTATS_CREDENTIAL_OLD_KEYS`), which only open values not yet re-sealed.
#[derive(Clone, Debug)]
pub struct CredentialKeys {
    current: CredentialKey,
    old: Vec<CredentialKey>,
}

/// What opening a sealed value found out besides the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealState {
    /// Sealed in the current format under the current key.
    Current,
    /// Sealed under an old key, or in the first format: `rotate-key` re-seals it.
    NeedsResealing,
}

impl CredentialKeys {
    /// The current key and the old ones.
    pub fn new(current: CredentialKey, old: Vec<CredentialKey>) -> Self {
        Self { current, old }
    }

    /// From the settings' hex texts.
    pub fn from_hex(current: &str, old: &[String]) -> Result<Self, CollectorError> {
        let current = CredentialKey::from_hex(current)?;
        let old = old
            .iter()
            .map(|text| {
                CredentialKey::from_hex(text).map_err(|error| {
                    CollectorError::Key(format!("CAPSTATS_CREDENTIAL_OLD_KEYS: {error}"))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self::new(current, old))
    }

    /// The key that seals.
    pub fn current(&self) -> &CredentialKey {
        &self.current
    }

    /// Seals `secret` for `instance` under the current key.
    pub fn seal(&self, instance: InstanceId, secret: &str) -> Vec<u8> {
        self.current.seal(instance, secret)
    }

    /// Opens a value sealed for `instance`, with the key its id names.
    pub fn open(&self, instance: InstanceId, sealed: &[u8]) -> Result<String, CollectorError> {
        self.open_for(Binding::CollectorPassword(instance), sealed)
    }

    /// Opens a value sealed bound to `binding`, with the key its id names.
    pub fn open_for(&self, binding: Binding, sealed: &[u8]) -> Result<String, CollectorError> {
        self.open_with_state(binding, sealed)
            .map(|(password, _)| password)
    }

    /// Opens a value and tells whether it needs re-sealing.
    pub fn open_with_state(
        &self,
        binding: Binding,
        sealed: &[u8],
    ) -> Result<(String, SealState), CollectorError> {
        let (scheme, rest) = sealed.split_first().ok_or(CollectorError::Unsealable)?;
        match *scheme {
            SCHEME_BOUND => {
                if rest.len() < KEY_ID_BYTES {
                    return Err(CollectorError::Unsealable);
                }
                let (id, body) = rest.split_at(KEY_ID_BYTES);
                let id = KeyId(id.try_into().map_err(|_| CollectorError::Unsealable)?);
                let key = self.keys().find(|key| key.id == id).ok_or_else(|| {
                    CollectorError::UnknownKey {
                        key_id: id.to_string(),
                    }
                })?;
                let password = key.open_bound(binding, body)?;
                let state = if id == self.current.id {
                    SealState::Current
                } else {
                    SealState::NeedsResealing
                };
                Ok((password, state))
            }
            // Only collector passwords were ever sealed in the first format.
            SCHEME_LEGACY if matches!(binding, Binding::CollectorPassword(_)) => self
                .keys()
                .find_map(|key| key.open_legacy(rest))
                .map(|password| (password, SealState::NeedsResealing))
                .ok_or(CollectorError::Unsealable),
            _ => Err(CollectorError::Unsealable),
        }
    }

    /// The value re-sealed under the current key, or `None` when it already is.
    pub fn reseal(
        &self,
        binding: Binding,
        sealed: &[u8],
    ) -> Result<Option<Vec<u8>>, CollectorError> {
        match self.open_with_state(binding, sealed)? {
            (_, SealState::Current) => Ok(None),
            (password, SealState::NeedsResealing) => {
                Ok(Some(self.current.seal_for(binding, &password)))
            }
        }
    }

    fn keys(&self) -> impl Iterator<Item = &CredentialKey> {
        std::iter::once(&self.current).chain(&self.old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: &str) -> CredentialKey {
        CredentialKey::from_hex(&byte.repeat(32)).unwrap()
    }

    fn keys(current: &str, old: &[&str]) -> CredentialKeys {
        CredentialKeys::new(key(current), old.iter().map(|byte| key(byte)).collect())
    }

    const INSTANCE: InstanceId = InstanceId(7);
    const PASSWORD: Binding = Binding::CollectorPassword(INSTANCE);

    /// A value of the first format, as the previous release sealed it.
    fn legacy_seal(key: &CredentialKey, secret: &str) -> Vec<u8> {
        let nonce: [u8; NONCE_BYTES] = rand::random();
        let ciphertext = key
            .cipher
            .encrypt(&Nonce::from(nonce), secret.as_bytes())
            .unwrap();
        [&[SCHEME_LEGACY][..], &nonce, &ciphertext].concat()
    }

    #[test]
    fn a_sealed_password_opens_with_its_key_only() {
        let sealed = keys("01", &[]).seal(INSTANCE, "pässword");
        assert_eq!(keys("01", &[]).open(INSTANCE, &sealed).unwrap(), "pässword");
        assert!(matches!(
            keys("02", &[]).open(INSTANCE, &sealed),
            Err(CollectorError::UnknownKey { .. })
        ));
        assert!(!sealed.windows(8).any(|window| window == b"password"));
        assert_eq!(sealed[0], SCHEME_BOUND);
        assert_eq!(&sealed[1..9], &key("01").id().0);
    }

    #[test]
    fn a_sealed_password_opens_for_its_instance_only() {
        let keys = keys("03", &[]);
        let sealed = keys.seal(INSTANCE, "secret");
        assert!(matches!(
            keys.open(InstanceId(8), &sealed),
            Err(CollectorError::Unsealable)
        ));
    }

    #[test]
    fn old_keys_open_and_rotation_reseals_under_the_current_key() {
        let before = keys("04", &[]);
        let sealed = before.seal(INSTANCE, "secret");
        let after = keys("05", &["04"]);
        assert_eq!(
            after.open_with_state(PASSWORD, &sealed).unwrap(),
            ("secret".to_owned(), SealState::NeedsResealing)
        );
        let resealed = after.reseal(PASSWORD, &sealed).unwrap().unwrap();
        assert_eq!(&resealed[1..9], &key("05").id().0);
        assert_eq!(
            after.open_with_state(PASSWORD, &resealed).unwrap(),
            ("secret".to_owned(), SealState::Current)
        );
        assert_eq!(after.reseal(PASSWORD, &resealed).unwrap(), None);
        // Once the old key is gone, only the re-sealed value opens.
        let only_new = keys("05", &[]);
        assert!(only_new.open(INSTANCE, &sealed).is_err());
        assert_eq!(only_new.open(INSTANCE, &resealed).unwrap(), "secret");
    }

    #[test]
    fn values_of_the_first_format_open_and_are_resealed() {
        let sealed = legacy_seal(&key("06"), "legacy");
        let keys = keys("07", &["06"]);
        assert_eq!(
            keys.open_with_state(PASSWORD, &sealed).unwrap(),
            ("legacy".to_owned(), SealState::NeedsResealing)
        );
        let resealed = keys.reseal(PASSWORD, &sealed).unwrap().unwrap();
        assert_eq!(resealed[0], SCHEME_BOUND);
        assert_eq!(keys.open(INSTANCE, &resealed).unwrap(), "legacy");
    }

    #[test]
    fn a_sealed_channel_value_opens_for_its_channel_and_field_only() {
        let keys = keys("0a", &[]);
        let target = keys.current().seal_for(
            Binding::AlertChannelTarget(5),
            "https://robot.example/send?access_token=t",
        );
        assert_eq!(
            keys.open_for(Binding::AlertChannelTarget(5), &target)
                .unwrap(),
            "https://robot.example/send?access_token=t"
        );
        for elsewhere in [
            Binding::AlertChannelTarget(6),
            Binding::AlertChannelSecret(5),
            Binding::CollectorPassword(InstanceId(5)),
        ] {
            assert!(matches!(
                keys.open_for(elsewhere, &target),
                Err(CollectorError::Unsealable)
            ));
        }
        // The first format was only ever used for collector passwords.
        let legacy = legacy_seal(&key("0a"), "legacy");
        assert!(
            keys.open_for(Binding::AlertChannelSecret(5), &legacy)
                .is_err()
        );
    }

    #[test]
    fn each_seal_uses_a_new_nonce() {
        let keys = keys("07", &[]);
        assert_ne!(keys.seal(INSTANCE, "same"), keys.seal(INSTANCE, "same"));
    }

    #[test]
    fn altered_or_truncated_values_are_refused() {
        let keys = keys("09", &[]);
        let mut sealed = keys.seal(INSTANCE, "secret");
        *sealed.last_mut().unwrap() ^= 1;
        assert!(keys.open(INSTANCE, &sealed).is_err());
        assert!(keys.open(INSTANCE, &[]).is_err());
        assert!(keys.open(INSTANCE, &[SCHEME_BOUND, 1, 2]).is_err());
        assert!(keys.open(INSTANCE, &[SCHEME_LEGACY, 1, 2]).is_err());
        let mut other_scheme = keys.seal(INSTANCE, "secret");
        other_scheme[0] = 3;
        assert!(keys.open(INSTANCE, &other_scheme).is_err());
    }

    #[test]
    fn keys_must_be_32_bytes_of_hex_and_debug_shows_only_the_id() {
        assert!(CredentialKey::from_hex("abcd").is_err());
        assert!(CredentialKey::from_hex(&"zz".repeat(32)).is_err());
        assert!(CredentialKey::from_hex(&"ab".repeat(33)).is_err());
        let key = CredentialKey::from_hex(&format!(" {} ", "ab".repeat(32))).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("abab"), "{shown}");
        assert!(shown.contains(&key.id().to_string()), "{shown}");
        assert!(CredentialKeys::from_hex(&"ab".repeat(32), &["12".into()]).is_err());
    }
}
