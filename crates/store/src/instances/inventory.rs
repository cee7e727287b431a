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
