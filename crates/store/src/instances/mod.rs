//! Monitored instances, their collector settings and the sealed passwords collectors use.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use capstats_capacity_model::{DbType, InstanceId, TlsMode};

use crate::StoreError;
use crate::schema::instances;

/// An instance as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Instance {
    /// Its id.
    pub id: InstanceId,
    /// Its unique (among non-deleted instances) name.
    pub name: String,
    /// The engine.
    pub db_type: DbType,
    /// Host name or address, if known.
    pub host: Option<String>,
    /// Port, if known.
    pub port: Option<i32>,
    /// Free text.
    pub description: Option<String>,
    /// The login a collector connects as.
    pub connection_user: Option<String>,
    /// Whether a (sealed) password is stored; the password itself never leaves the store
    /// through this type.
    pub has_password: bool,
    /// PostgreSQL: the database a collector connects to (default `postgres`).
    pub connection_database: Option<String>,
    /// How a collector protects its connection.
    pub tls_mode: TlsMode,
    /// Inactive instances are not aggregated; their history stays readable.
    pub is_active: bool,
    /// The total size at which it is full, in MB, if one is set.
    pub capacity_limit_mb: Option<i64>,
    /// Set when soft-deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = instances)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct InstanceRow {
    id: i64,
    name: String,
    db_type: String,
    host: Option<String>,
    port: Option<i32>,
    description: Option<String>,
    connection_user: Option<String>,
    connection_password: Option<Vec<u8>>,
    connection_database: Option<String>,
    tls_mode: String,
    is_active: bool,
    capacity_limit_mb: Option<i64>,
    deleted_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl InstanceRow {
    fn db_type(&self) -> Result<DbType, StoreError> {
        self.db_type
            .parse()
            .map_err(|error| StoreError::Corrupt(format!("instance {} has {error}", self.id)))
    }

    fn tls_mode(&self) -> Result<TlsMode, StoreError> {
        self.tls_mode
            .parse()
            .map_err(|error| StoreError::Corrupt(format!("instance {} has {error}", self.id)))
    }
}

impl TryFrom<InstanceRow> for Instance {
    type Error = StoreError;

    fn try_from(row: InstanceRow) -> Result<Self, StoreError> {
        Ok(Instance {
            id: InstanceId(row.id),
            db_type: row.db_type()?,
            tls_mode: row.tls_mode()?,
            name: row.name,
            host: row.host,
            port: row.port,
            description: row.description,
            connection_user: row.connection_user,
            has_password: row.connection_password.is_some(),
            connection_database: row.connection_database,
            is_active: row.is_active,
            capacity_limit_mb: row.capacity_limit_mb,
            deleted_at: row.deleted_at,
            created_at: row.created_at,
        })
    }
}

fn convert(rows: Vec<InstanceRow>) -> Result<Vec<Instance>, StoreError> {
    rows.into_iter().map(Instance::try_from).collect()
}

/// A new instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInstance {
    /// Unique name among non-deleted instances.
    pub name: String,
    /// The engine.
    pub db_type: DbType,
    /// Host name or address.
    pub host: Option<String>,
    /// Port.
    pub port: Option<i32>,
    /// Free text.
    pub description: Option<String>,
}

/// Creates an active instance. A name already used by a non-deleted instance is a
/// [`StoreError::Conflict`].
pub fn create_instance(
    connection: &mut PgConnection,
    new: &NewInstance,
) -> Result<Instance, StoreError> {
    let inserted = diesel::insert_into(instances::table)
        .values((
            instances::name.eq(&new.name),
            instances::db_type.eq(new.db_type.as_str()),
            instances::host.eq(&new.host),
            instances::port.eq(new.port),
            instances::description.eq(&new.description),
        ))
        .returning(InstanceRow::as_returning())
        .get_result(connection)
        .map_err(StoreError::from);
    match inserted {
        Err(error) if error.is_unique_violation() => Err(StoreError::Conflict(format!(
            "an instance named `{}` already exists",
            new.name
        ))),
        other => other?.try_into(),
    }
}

/// The non-deleted instances with any of `names`.
pub fn find_by_names(
    connection: &mut PgConnection,
    names: &[String],
) -> Result<Vec<Instance>, StoreError> {
    convert(
        instances::table
            .filter(instances::deleted_at.is_null())
            .filter(instances::name.eq_any(names))
            .select(InstanceRow::as_select())
            .load(connection)?,
    )
}

/// The instances with any of `ids`, deleted or not.
pub fn find_by_ids(
    connection: &mut PgConnection,
    ids: &[InstanceId],
) -> Result<Vec<Instance>, StoreError> {
    let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
    convert(
        instances::table
            .filter(instances::id.eq_any(&ids))
            .select(InstanceRow::as_select())
            .load(connection)?,
    )
}

/// Active, non-deleted instances (those a run aggregates), ordered by id.
pub fn active_instances(connection: &mut PgConnection) -> Result<Vec<Instance>, StoreError> {
    convert(
        instances::table
            .filter(instances::deleted_at.is_null())
            .filter(instances::is_active.eq(true))
            .order(instances::id)
            .select(InstanceRow::as_select())
            .load(connection)?,
    )
}

/// Sets whether an instance is active.
pub fn set_active(
    connection: &mut PgConnection,
    id: InstanceId,
    active: bool,
) -> Result<(), StoreError> {
    let updated = diesel::update(instances::table.find(id.0))
        .set((
            instances::is_active.eq(active),
            instances::updated_at.eq(diesel::dsl::now),
        ))
        .execute(connection)?;
    if updated == 0 {
        return Err(StoreError::NotFound(format!("instance {id}")));
    }
    Ok(())
}

/// One instance, deleted or not.
pub fn get_instance(connection: &mut PgConnection, id: InstanceId) -> Result<Instance, StoreError> {
    instances::table
        .find(id.0)
        .select(InstanceRow::as_select())
        .first(connection)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("instance {id}")))?
        .try_into()
}

/// The ids among `ids` that name no instance at all (soft-deleted ones exist).
pub fn missing_ids(
    connection: &mut PgConnection,
    ids: &[InstanceId],
) -> Result<Vec<InstanceId>, StoreError> {
    let wanted: Vec<i64> = ids.iter().map(|id| id.0).collect();
    let found: std::collections::BTreeSet<i64> = instances::table
        .filter(instances::id.eq_any(&wanted))
        .select(instances::id)
        .load::<i64>(connection)?
        .into_iter()
        .collect();
    Ok(ids
        .iter()
        .copied()
        .filter(|id| !found.contains(&id.0))
        .collect())
}

/// Which instances a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceFilter {
    /// Only these engines (all when empty).
    pub db_types: Vec<DbType>,
    /// Only names containing this text (case-insensitive).
    pub search: Option<String>,
    /// Only active (`Some(true)`) or inactive ones.
    pub is_active: Option<bool>,
    /// Include soft-deleted instances.
    pub include_deleted: bool,
}

/// One page of instances ordered by name, and how many match.
pub fn list_instances(
    connection: &mut PgConnection,
    filter: &InstanceFilter,
    page: i64,
    limit: i64,
) -> Result<(Vec<Instance>, i64), StoreError> {
    let query = || {
        let mut query = instances::table.into_boxed();
        if !filter.include_deleted {
            query = query.filter(instances::deleted_at.is_null());
        }
        if !filter.db_types.is_empty() {
            let engines: Vec<&str> = filter
                .db_types
                .iter()
                .map(|db_type| db_type.as_str())
                .collect();
            query = query.filter(instances::db_type.eq_any(engines));
        }
        if let Some(search) = &filter.search {
            let pattern = format!(
                "%{}%",
                search
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            query = query.filter(instances::name.ilike(pattern));
        }
        if let Some(active) = filter.is_active {
            query = query.filter(instances::is_active.eq(active));
        }
        query
    };
    let total: i64 = query().count().get_result(connection)?;
    let rows = query()
        .order((instances::name, instances::id))
        .limit(limit)
        .offset((page.max(1) - 1) * limit)
        .select(InstanceRow::as_select())
        .load(connection)?;
    Ok((convert(rows)?, total))
}

/// Changes of an instance; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceChanges {
    /// New name.
    pub name: Option<String>,
    /// New engine.
    pub db_type: Option<DbType>,
    /// New host (`Some(None)` clears it).
    pub host: Option<Option<String>>,
    /// New port (`Some(None)` clears it).
    pub port: Option<Option<i32>>,
    /// New description.
    pub description: Option<Option<String>>,
    /// New collector login (`Some(None)` clears it).
    pub connection_user: Option<Option<String>>,
    /// New sealed collector password (`Some(None)` clears it).
    pub connection_password: Option<Option<Vec<u8>>>,
    /// New database a PostgreSQL collector connects to (`Some(None)` clears it).
    pub connection_database: Option<Option<String>>,
    /// New TLS mode of collector connections.
    pub tls_mode: Option<TlsMode>,
    /// Active or not.
    pub is_active: Option<bool>,
    /// New capacity limit in MB (`Some(None)` removes it).
    pub capacity_limit_mb: Option<Option<i64>>,
}

impl InstanceChanges {
    /// Whether these changes make a collector connect elsewhere, as someone else, or with
    /// weaker checks than `current` says. A stored password was given for the server as it
    /// was: sending it to a new destination, or with less protection, would let whoever may
    /// edit an instance (but not read its password) collect it with a server of their own.
    fn retargets(&self, current: &InstanceRow) -> bool {
        fn differs<T: PartialEq>(change: &Option<T>, stored: &T) -> bool {
            change.as_ref().is_some_and(|value| value != stored)
        }
        let weaker_tls = match (self.tls_mode, current.tls_mode()) {
            (Some(new), Ok(stored)) => new.weaker_than(stored),
            // An unreadable stored mode is replaced by the new one: treat it as a change.
            (Some(_), Err(_)) => true,
            (None, _) => false,
        };
        differs(
            &self.db_type.map(|db_type| db_type.as_str().to_owned()),
            &current.db_type,
        ) || differs(&self.host, &current.host)
            || differs(&self.port, &current.port)
            || differs(&self.connection_user, &current.connection_user)
            || differs(&self.connection_database, &current.connection_database)
            || weaker_tls
    }
}

/// An instance after [`update_instance`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatedInstance {
    /// The instance as stored now.
    pub instance: Instance,
    /// Whether the update removed the stored password: the changes cleared it, or they
    /// changed where or how a collector connects (host, port, engine, login, database, a
    /// weaker TLS mode) without supplying a new one.
    pub password_cleared: bool,
}

#[derive(AsChangeset)]
#[diesel(table_name = instances)]
struct InstanceChangeset {
    name: Option<String>,
    db_type: Option<String>,
    host: Option<Option<String>>,
    port: Option<Option<i32>>,
    description: Option<Option<String>>,
    connection_user: Option<Option<String>>,
    connection_password: Option<Option<Vec<u8>>>,
    connection_database: Option<Option<String>>,
    tls_mode: Option<String>,
    is_active: Option<bool>,
    capacity_limit_mb: Option<Option<i64>>,
    updated_at: DateTime<Utc>,
}

/// Applies `changes` to a non-deleted instance. A name taken by another instance is a
/// conflict.
///
/// Changing where or how a collector connects (host, port, engine, login, database, or a
/// weaker TLS mode) drops the stored password unless `changes` supplies a new one; the result
/// says so. The row is locked while the changes are compared with it, so that two concurrent
/// updates cannot both keep a password for a changed target.
pub fn update_instance(
    connection: &mut PgConnection,
    id: InstanceId,
    changes: &InstanceChanges,
) -> Result<UpdatedInstance, StoreError> {
    let updated = connection.transaction(|connection| {
        let Some(current) = instances::table
            .filter(instances::id.eq(id.0))
            .filter(instances::deleted_at.is_null())
            .for_update()
            .select(InstanceRow::as_select())
            .first(connection)
            .optional()?
        else {
            return Ok(None);
        };
        let had_password = current.connection_password.is_some();
        let connection_password = match &changes.connection_password {
            None if had_password && changes.retargets(&current) => Some(None),
            other => other.clone(),
        };
        let password_cleared = had_password && connection_password == Some(None);
        let row = diesel::update(instances::table.filter(instances::id.eq(id.0)))
            .set(InstanceChangeset {
                name: changes.name.clone(),
                db_type: changes.db_type.map(|db_type| db_type.as_str().to_owned()),
                host: changes.host.clone(),
                port: changes.port,
                description: changes.description.clone(),
                connection_user: changes.connection_user.clone(),
                connection_password,
                connection_database: changes.connection_database.clone(),
                tls_mode: changes.tls_mode.map(|mode| mode.as_str().to_owned()),
                is_active: changes.is_active,
                capacity_limit_mb: changes.capacity_limit_mb,
                updated_at: Utc::now(),
            })
            .returning(InstanceRow::as_returning())
            .get_result(connection)?;
        Ok::<_, StoreError>(Some((row, password_cleared)))
    });
    match updated {
        Err(error) if error.is_unique_violation() => Err(StoreError::Conflict(format!(
            "an instance named `{}` already exists",
            changes.name.clone().unwrap_or_default()
        ))),
        Err(error) => Err(error),
        Ok(None) => Err(StoreError::NotFound(format!("instance {id}"))),
        Ok(Some((row, password_cleared))) => Ok(UpdatedInstance {
            instance: row.try_into()?,
            password_cleared,
        }),
    }
}

/// Soft-deletes an instance: it is no longer listed or aggregated, its history stays, and its
/// name may be reused.
pub fn delete_instance(connection: &mut PgConnection, id: InstanceId) -> Result<(), StoreError> {
    let updated = diesel::update(
        instances::table
            .filter(instances::id.eq(id.0))
            .filter(instances::deleted_at.is_null()),
    )
    .set((
        instances::deleted_at.eq(diesel::dsl::now),
        instances::is_active.eq(false),
        instances::updated_at.eq(diesel::dsl::now),
    ))
    .execute(connection)?;
    if updated == 0 {
        return Err(StoreError::NotFound(format!("instance {id}")));
    }
    Ok(())
}

mod collection;
mod inventory;

pub use collection::{
    COLLECTABLE_ENGINES, CollectionTarget, SealedPassword, collection_targets,
    replace_sealed_password, sealed_passwords_after,
};
pub use inventory::{InventoryDatabase, find_database, inventory, set_database_capacity_limit};
