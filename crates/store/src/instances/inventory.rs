//! The inventory: every database a sample has named, per instance.

use diesel::prelude::*;

use capstats_capacity_model::InstanceId;

use crate::StoreError;

/// A database of the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = crate::schema::instance_databases)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct InventoryDatabase {
    /// Its id.
    pub id: i64,
    /// The instance.
    pub instance_id: i64,
    /// The database.
    pub database_name: String,
    /// First sample.
    pub first_seen_date: chrono::NaiveDate,
    /// Last sample.
    pub last_seen_date: chrono::NaiveDate,
    /// Whether still present.
    pub is_active: bool,
    /// The size at which it is full, in MB, if one is set.
    pub capacity_limit_mb: Option<i64>,
}

/// The inventory's database `id`, unless it was deleted.
pub fn find_database(
    connection: &mut PgConnection,
    id: i64,
) -> Result<Option<InventoryDatabase>, StoreError> {
    use crate::schema::instance_databases;
    Ok(instance_databases::table
        .filter(instance_databases::id.eq(id))
        .filter(instance_databases::deleted_at.is_null())
        .select(InventoryDatabase::as_select())
        .first(connection)
        .optional()?)
}

/// The databases of `instance_ids` (all when empty), by instance and name.
pub fn inventory(
    connection: &mut PgConnection,
    instance_ids: &[InstanceId],
) -> Result<Vec<InventoryDatabase>, StoreError> {
    use crate::schema::instance_databases;
    let mut query = instance_databases::table
        .filter(instance_databases::deleted_at.is_null())
        .into_boxed();
    if !instance_ids.is_empty() {
        let ids: Vec<i64> = instance_ids.iter().map(|id| id.0).collect();
        query = query.filter(instance_databases::instance_id.eq_any(ids));
    }
    Ok(query
        .order((
            instance_databases::instance_id,
            instance_databases::database_name,
        ))
        .select(InventoryDatabase::as_select())
        .load(connection)?)
}

/// Sets (or, with `None`, removes) the capacity limit of the inventory's database `id`;
/// returns the database as stored now. A deleted or unknown database is not found.
pub fn set_database_capacity_limit(
    connection: &mut PgConnection,
    id: i64,
    capacity_limit_mb: Option<i64>,
) -> Result<InventoryDatabase, StoreError> {
    use crate::schema::instance_databases;
    diesel::update(
        instance_databases::table
            .filter(instance_databases::id.eq(id))
            .filter(instance_databases::deleted_at.is_null()),
    )
    .set((
        instance_databases::capacity_limit_mb.eq(capacity_limit_mb),
        instance_databases::updated_at.eq(chrono::Utc::now()),
    ))
    .returning(InventoryDatabase::as_returning())
    .get_result(connection)
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("database {id}")))
}
