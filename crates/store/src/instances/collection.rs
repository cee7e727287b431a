//! What collectors read of an instance: its connection settings with the password still
//! sealed, and the sealed passwords themselves for a key rotation.

use diesel::prelude::*;

use capstats_capacity_model::{DbType, InstanceId, TlsMode};

use super::InstanceRow;
use crate::StoreError;
use crate::schema::instances;

/// What a collector needs to read an instance's sizes, its password still sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct CollectionTarget {
    /// The instance.
    pub id: InstanceId,
    /// Its name.
    pub name: String,
    /// Its engine.
    pub db_type: DbType,
    /// Host.
    pub host: Option<String>,
    /// Port.
    pub port: Option<i32>,
    /// Login.
    pub connection_user: Option<String>,
    /// The password as stored (sealed by `capstats_collectors::credentials`).
    pub sealed_password: Option<Vec<u8>>,
    /// PostgreSQL: the database to connect to.
    pub connection_database: Option<String>,
    /// How the collector protects its connection.
    pub tls_mode: TlsMode,
}

impl std::fmt::Debug for CollectionTarget {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CollectionTarget")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("db_type", &self.db_type)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("connection_user", &self.connection_user)
            .field("tls_mode", &self.tls_mode)
            .finish_non_exhaustive()
    }
}

/// The engines capstats has collectors for.
pub const COLLECTABLE_ENGINES: [DbType; 2] = [DbType::Postgresql, DbType::Mysql];

/// The instances a collection reads, by id: active, not deleted, with a host and a connection
/// user, of an engine with a collector — all of them, or those among `only`.
pub fn collection_targets(
    connection: &mut PgConnection,
    only: Option<&[InstanceId]>,
) -> Result<Vec<CollectionTarget>, StoreError> {
    let mut query = instances::table
        .filter(instances::deleted_at.is_null())
        .filter(instances::is_active.eq(true))
        .filter(instances::host.is_not_null())
        .filter(instances::connection_user.is_not_null())
        .filter(instances::db_type.eq_any(COLLECTABLE_ENGINES.map(DbType::as_str).to_vec()))
        .into_boxed();
    if let Some(only) = only {
        query = query.filter(instances::id.eq_any(only.iter().map(|id| id.0).collect::<Vec<_>>()));
    }
    query
        .order(instances::id)
        .select(InstanceRow::as_select())
        .load(connection)?
        .into_iter()
        .map(|row| {
            Ok(CollectionTarget {
                id: InstanceId(row.id),
                db_type: row.db_type()?,
                tls_mode: row.tls_mode()?,
                name: row.name,
                host: row.host,
                port: row.port,
                connection_user: row.connection_user,
                sealed_password: row.connection_password,
                connection_database: row.connection_database,
            })
        })
        .collect()
}

/// One stored sealed password, for re-sealing.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedPassword {
    /// The instance (deleted ones included: their rows keep the password).
    pub id: InstanceId,
    /// The value as stored.
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for SealedPassword {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SealedPassword")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Up to `limit` stored passwords of instances with an id above `after`, by id: one batch of
/// a key rotation.
pub fn sealed_passwords_after(
    connection: &mut PgConnection,
    after: InstanceId,
    limit: i64,
) -> Result<Vec<SealedPassword>, StoreError> {
    Ok(instances::table
        .filter(instances::id.gt(after.0))
        .filter(instances::connection_password.is_not_null())
        .order(instances::id)
        .limit(limit)
        .select((
            instances::id,
            instances::connection_password.assume_not_null(),
        ))
        .load::<(i64, Vec<u8>)>(connection)?
        .into_iter()
        .map(|(id, sealed)| SealedPassword {
            id: InstanceId(id),
            sealed,
        })
        .collect())
}

/// Replaces the sealed password of `id` if it is still `expected`; returns whether it was.
/// A password changed (or dropped) through the API since it was read is left as it is now.
pub fn replace_sealed_password(
    connection: &mut PgConnection,
    id: InstanceId,
    expected: &[u8],
    replacement: &[u8],
) -> Result<bool, StoreError> {
    // `updated_at` is left alone: re-sealing changes no setting of the instance.
    let updated = diesel::update(
        instances::table
            .filter(instances::id.eq(id.0))
            .filter(instances::connection_password.eq(expected)),
    )
    .set(instances::connection_password.eq(replacement))
    .execute(connection)?;
    Ok(updated == 1)
}
