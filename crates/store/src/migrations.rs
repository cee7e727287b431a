//! The embedded diesel migrations (the `migrations/` folder at the top of the workspace).

use diesel::PgConnection;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::StoreError;

/// Every migration, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// A fingerprint of the migration files this build embeds; it changes whenever a migration is
/// added or edited. Test support keys its migrated template databases on it.
pub const FINGERPRINT: &str = env!("CAPSTATS_MIGRATIONS_FINGERPRINT");

/// Applies the migrations the database does not have yet and returns their names. Applying
/// twice changes nothing the second time.
///
/// diesel takes no lock while migrating, so run this once per deploy (`capstats-api
/// migrate`), not from every process at start-up.
pub fn run_pending(connection: &mut PgConnection) -> Result<Vec<String>, StoreError> {
    let applied = connection
        .run_pending_migrations(MIGRATIONS)
        .map_err(|error| StoreError::Migration(error.to_string()))?;
    Ok(applied.iter().map(ToString::to_string).collect())
}

/// Fails with [`StoreError::SchemaOutdated`] when migrations of this build are missing from
/// the database, so that binaries refuse to start against an older schema.
pub fn ensure_current(connection: &mut PgConnection) -> Result<(), StoreError> {
    let pending = connection
        .pending_migrations(MIGRATIONS)
        .map_err(|error| StoreError::Migration(error.to_string()))?;
    match pending.first() {
        None => Ok(()),
        Some(first) => Err(StoreError::SchemaOutdated {
            pending: pending.len(),
            first: first.name().to_string(),
        }),
    }
}

/// The names of all embedded migrations, oldest first.
pub fn names() -> Result<Vec<String>, StoreError> {
    let migrations: Vec<Box<dyn diesel::migration::Migration<Pg>>> =
        MigrationSource::<Pg>::migrations(&MIGRATIONS)
            .map_err(|error| StoreError::Migration(error.to_string()))?;
    Ok(migrations
        .iter()
        .map(|migration| migration.name().to_string())
        .collect())
}
