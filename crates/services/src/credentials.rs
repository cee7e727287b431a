//! Re-sealing the stored collector passwords under the current key (`capstats-worker
//! credentials rotate-key`), batch by batch while the API and the workers keep running.
//!
//! Rotation without downtime: every process first gets the new key as
//! `CAPSTATS_CREDENTIAL_KEY` and the old one in `CAPSTATS_CREDENTIAL_OLD_KEYS`, so that it
//! seals with the new key and opens with either; then this re-seals every stored value that is
//! not yet sealed under the new key in the current format; then the old key can go.

use capstats_capacity_model::InstanceId;
use capstats_collectors::credentials::{Binding, CredentialKeys};
use capstats_store::instances::{self, SealedPassword};
use capstats_store::{Connection, ConnectionPool};

use crate::ServiceError;

/// What a rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// Stored passwords looked at.
    pub examined: u64,
    /// Re-sealed under the current key.
    pub resealed: u64,
    /// Already sealed under the current key in the current format.
    pub already_current: u64,
    /// Changed through the API while the rotation ran (the new value is the API's, sealed
    /// under its key); left as they are.
    pub changed_meanwhile: u64,
    /// Instances whose password opens with none of the configured keys, with the reason.
    pub failed: Vec<(InstanceId, String)>,
}

impl RotationReport {
    /// One line for the operator.
    pub fn summary(&self) -> String {
        format!(
            "{} stored passwords: {} re-sealed, {} already under the current key, {} changed meanwhile, {} failed",
            self.examined,
            self.resealed,
            self.already_current,
            self.changed_meanwhile,
            self.failed.len()
        )
    }
}

/// Re-seals every stored password not yet sealed under `keys`' current key, `batch_size` rows
/// per transaction. Each row is replaced only if it still holds the value that was read, so a
/// password set through the API meanwhile is never overwritten. Running it again finds
/// nothing to do.
pub async fn rotate_key(
    store: &ConnectionPool,
    keys: &CredentialKeys,
    batch_size: i64,
) -> Result<RotationReport, ServiceError> {
    let batch_size = batch_size.max(1);
    let mut report = RotationReport::default();
    let mut after = InstanceId(0);
    loop {
        let batch = capstats_store::run_blocking(store, move |connection| {
            instances::sealed_passwords_after(connection, after, batch_size)
        })
        .await?;
        let Some(last) = batch.last() else {
            return Ok(report);
        };
        after = last.id;
        // Decryption and sealing happen here, outside the database transaction.
        let mut replacements: Vec<(SealedPassword, Vec<u8>)> = Vec::new();
        for stored in batch {
            report.examined += 1;
            match keys.reseal(Binding::CollectorPassword(stored.id), &stored.sealed) {
                Ok(None) => report.already_current += 1,
                Ok(Some(resealed)) => replacements.push((stored, resealed)),
                Err(error) => report.failed.push((stored.id, error.to_string())),
            }
        }
        let replaced = capstats_store::run_blocking(store, move |connection| {
            connection.transaction(|connection| {
                let mut replaced = 0_u64;
                for (stored, resealed) in &replacements {
                    if instances::replace_sealed_password(
                        connection,
                        stored.id,
                        &stored.sealed,
                        resealed,
                    )? {
                        replaced += 1;
                    }
                }
                Ok::<_, capstats_store::StoreError>((replaced, replacements.len() as u64))
            })
        })
        .await?;
        report.resealed += replaced.0;
        report.changed_meanwhile += replaced.1 - replaced.0;
    }
}
