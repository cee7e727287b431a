//! `capstats-worker credentials …`: maintenance of the sealed collector passwords and alert
//! channels.

use anyhow::{Context, bail};
use capstats_settings::Settings;
use clap::Subcommand;

/// `capstats-worker credentials …`
#[derive(Subcommand)]
pub enum CredentialsCommand {
    /// Re-seal every stored collector password and alert channel (URL and secret) under
    /// CAPSTATS_CREDENTIAL_KEY, in batches, while the API and the workers keep running. Values
    /// sealed under a key of CAPSTATS_CREDENTIAL_OLD_KEYS, or in the format of earlier
    /// releases, are re-sealed; the others are left as they are. Prints the counts; fails
    /// when a value opens with none of the configured keys.
    RotateKey {
        /// Passwords re-sealed per transaction.
        #[arg(long, default_value_t = 500)]
        batch_size: i64,
    },
}

/// Runs a credentials subcommand.
pub async fn credentials(settings: &Settings, command: CredentialsCommand) -> anyhow::Result<()> {
    match command {
        CredentialsCommand::RotateKey { batch_size } => {
            let Some(keys) = capstats_services::collection::credential_keys(settings)? else {
                bail!(
                    "CAPSTATS_CREDENTIAL_KEY is not set: set it to the new key, and the key it \
                     replaces in CAPSTATS_CREDENTIAL_OLD_KEYS"
                );
            };
            let store = capstats_store::build_pool(
                &settings.database_url,
                2,
                settings.database_connect_timeout(),
            )
            .context("connecting to DATABASE_URL")?;
            capstats_store::run_blocking(&store, capstats_store::migrations::ensure_current)
                .await?;
            let report =
                capstats_services::credentials::rotate_key(&store, &keys, batch_size).await?;
            println!("{} (current key {})", report.summary(), keys.current().id());
            for (instance, reason) in &report.failed {
                eprintln!("instance {instance}: {reason}");
            }
            let (examined, resealed, channels_failed) =
                capstats_services::alerts::rotate_channel_key(&store, &keys, batch_size).await?;
            println!(
                "{examined} alert channels: {resealed} re-sealed, {} failed",
                channels_failed.len()
            );
            for (channel, reason) in &channels_failed {
                eprintln!("alert channel {channel}: {reason}");
            }
            if !report.failed.is_empty() || !channels_failed.is_empty() {
                bail!(
                    "{} stored passwords and {} alert channels could not be re-sealed: add the \
                     key that sealed them to CAPSTATS_CREDENTIAL_OLD_KEYS, or set those \
                     passwords (replace those rules) again",
                    report.failed.len(),
                    channels_failed.len()
                );
            }
            Ok(())
        }
    }
}
