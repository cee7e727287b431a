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
    let pending: Vec<String> = connection
        .pending_migrations(MIGRATIONS)
        .map_err(StoreError::Migration)?
        .iter()
        .map(|migration| migration.name().to_string())
        .collect();
    connection
        .run_pending_migrations(MIGRATIONS)
        .map_err(StoreError::Migration)?;
    Ok(pending)
}

/// Applies the first `count` embedded migrations the database does not have yet, oldest
/// first: the schema an older release left behind, for upgrade tests and rehearsals. Returns
/// the versions applied.
pub fn run_first(connection: &mut PgConnection, count: usize) -> Result<Vec<String>, StoreError> {
    let mut applied = Vec::new();
    for _ in 0..count {
        if connection
            .pending_migrations(MIGRATIONS)
            .map_err(StoreError::Migration)?
            .is_empty()
        {
            break;
        }
        let version = connection
            .run_next_migration(MIGRATIONS)
            .map_err(StoreError::Migration)?;
        applied.push(version.to_string());
    }
    Ok(applied)
}

/// Fails with [`StoreError::SchemaOutdated`] when migrations of this build are missing from
/// the database, so that binaries refuse to start against an older schema.
pub fn ensure_current(connection: &mut PgConnection) -> Result<(), StoreError> {
    let pending = connection
        .pending_migrations(MIGRATIONS)
        .map_err(StoreError::Migration)?;
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
        MigrationSource::<Pg>::migrations(&MIGRATIONS).map_err(StoreError::Migration)?;
    Ok(migrations
        .iter()
        .map(|migration| migration.name().to_string())
        .collect())
}

/// Creates the database named in `database_url` when it does not exist yet, connecting to the
/// server's `postgres` database to do so. Returns whether it was created. Each connection
/// gives up after `connect_timeout`.
pub fn create_database_if_missing(
    database_url: &str,
    connect_timeout: std::time::Duration,
) -> Result<bool, StoreError> {
    use diesel::connection::SimpleConnection;

    match crate::connect(database_url, connect_timeout) {
        Ok(_) => return Ok(false),
        Err(StoreError::Connection(diesel::ConnectionError::BadConnection(message)))
            if message.contains("does not exist") => {}
        Err(error) => return Err(error),
    }
    let (server, name) = split_database_name(database_url).ok_or_else(|| {
        StoreError::InvalidArgument(format!("cannot find a database name in {database_url}"))
    })?;
    let mut admin = crate::connect(&format!("{server}/postgres"), connect_timeout)?;
    let quoted = name.replace('"', "\"\"");
    admin.batch_execute(&format!("CREATE DATABASE \"{quoted}\""))?;
    Ok(true)
}

/// Splits `postgres://user@host:port/name?options` into the part before the path and the
/// database name (options are dropped: they are rarely needed for the maintenance database).
fn split_database_name(database_url: &str) -> Option<(&str, &str)> {
    let without_options = database_url.split('?').next()?;
    let scheme_end = without_options.find("://")? + 3;
    let path_start = scheme_end + without_options[scheme_end..].find('/')?;
    let name = &without_options[path_start + 1..];
    (!name.is_empty()).then_some((&without_options[..path_start], name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_found_in_urls() {
        assert_eq!(
            split_database_name("postgres://root@127.0.0.1:5432/capstats"),
            Some(("postgres://root@127.0.0.1:5432", "capstats"))
        );
        assert_eq!(
            split_database_name("postgresql://u:p@db/stats?sslmode=require"),
            Some(("postgresql://u:p@db", "stats"))
        );
        assert_eq!(split_database_name("postgres://root@127.0.0.1:5432"), None);
        assert_eq!(split_database_name("postgres://root@127.0.0.1:5432/"), None);
    }
}
