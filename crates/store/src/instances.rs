//! Monitored instances.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use capacity_model::{DbType, InstanceId};

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
    /// Inactive instances are not aggregated; their history stays readable.
    pub is_active: bool,
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
    is_active: bool,
    deleted_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl TryFrom<InstanceRow> for Instance {
    type Error = StoreError;

    fn try_from(row: InstanceRow) -> Result<Self, StoreError> {
        Ok(Instance {
            id: InstanceId(row.id),
            db_type: row.db_type.parse().map_err(|error| {
                StoreError::Conflict(format!("instance {} has {error}", row.id))
            })?,
            name: row.name,
            host: row.host,
            port: row.port,
            description: row.description,
            is_active: row.is_active,
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
