//! Monitored instances and their databases.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use capstats_capacity_model::{DbType, TlsMode};

/// An instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstanceItem {
    /// Its id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Engine.
    pub db_type: DbType,
    /// Host.
    pub host: Option<String>,
    /// Port.
    pub port: Option<i32>,
    /// Free text.
    pub description: Option<String>,
    /// The login collectors connect as.
    pub connection_user: Option<String>,
    /// PostgreSQL: the database collectors connect to (default `postgres`).
    pub connection_database: Option<String>,
    /// How collectors protect their connection to the server.
    pub tls_mode: TlsMode,
    /// Whether a collector password is stored (the password itself is never returned).
    pub has_password: bool,
    /// Whether it is aggregated.
    pub is_active: bool,
    /// The total size at which it is full, in MB (forecasts report the days until then).
    pub capacity_limit_mb: Option<i64>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<capstats_store::instances::Instance> for InstanceItem {
    fn from(instance: capstats_store::instances::Instance) -> Self {
        Self {
            id: instance.id.0,
            name: instance.name,
            db_type: instance.db_type,
            host: instance.host,
            port: instance.port,
            description: instance.description,
            connection_user: instance.connection_user,
            connection_database: instance.connection_database,
            tls_mode: instance.tls_mode,
            has_password: instance.has_password,
            is_active: instance.is_active,
            capacity_limit_mb: instance.capacity_limit_mb,
            created_at: instance.created_at,
        }
    }
}

/// The answer to `PUT /instances/{id}`: the instance and whether its password was dropped.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UpdatedInstanceItem {
    /// The instance as stored now.
    #[serde(flatten)]
    pub instance: InstanceItem,
    /// True when this update removed the stored collector password: the request cleared it
    /// (`connection_password: ""`), or it changed `host`, `port`, `db_type`,
    /// `connection_user`, `connection_database` or lowered `tls_mode` without sending a new
    /// `connection_password`. Send the password again to collect.
    pub password_cleared: bool,
}

/// `POST /instances` and `PUT /instances/{id}`.
///
/// A stored password belongs to the server it was given for: an update that changes `host`,
/// `port`, `db_type`, `connection_user` or `connection_database`, or lowers `tls_mode`
/// (`verify-full` → `require` → `disable`), drops it unless the same request sends a new
/// `connection_password` (the answer then has `password_cleared: true`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct InstanceInput {
    /// Unique name (1–255 characters).
    #[schema(min_length = 1, max_length = 255, pattern = "{name}")]
    pub name: Option<String>,
    /// `mysql`, `postgresql`, `sqlserver` or `oracle`.
    #[schema(value_type = Option<DbType>)]
    pub db_type: Option<String>,
    /// Host name or address.
    #[schema(pattern = "{plain_text}")]
    pub host: Option<String>,
    /// Port (1–65535).
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<i32>,
    /// Free text.
    #[schema(pattern = "{plain_text}")]
    pub description: Option<String>,
    /// The login collectors connect as (empty clears it).
    #[schema(max_length = 255, pattern = "{plain_text}")]
    pub connection_user: Option<String>,
    /// The collector's password: stored sealed with `CAPSTATS_CREDENTIAL_KEY` (bound to this
    /// instance), never returned; empty clears it, absent leaves it as it is — unless the
    /// request changes where or how collectors connect, which drops it.
    pub connection_password: Option<String>,
    /// PostgreSQL: the database collectors connect to (default `postgres`; empty clears it).
    #[schema(max_length = 255, pattern = "{plain_text}")]
    pub connection_database: Option<String>,
    /// `disable`, `require` or `verify-full` (the default for new instances): whether
    /// collectors use TLS and check the server's certificate against the trusted roots
    /// (system plus `CAPSTATS_COLLECTOR_CA_FILE`) and host name. Passwords are never sent in
    /// clear text, whatever the mode.
    #[schema(value_type = Option<capstats_capacity_model::TlsMode>)]
    pub tls_mode: Option<String>,
    /// Whether it is aggregated (default true).
    pub is_active: Option<bool>,
    /// The total size at which it is full, in MB (at least 1): forecasts report the days
    /// until the projected total reaches it. `null` removes it; absent leaves it as it is.
    #[serde(default, deserialize_with = "crate::dto::present_whole_number")]
    #[schema(value_type = Option<i64>, nullable, minimum = 1)]
    pub capacity_limit_mb: Option<Option<i64>>,
}

/// An entry of a select box.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstanceOption {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Engine.
    pub db_type: DbType,
}

/// A database of an instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DatabaseOption {
    /// Its id in the inventory (the `database_id` filter of the database endpoints).
    pub id: i64,
    /// The instance.
    pub instance_id: i64,
    /// The database.
    pub database_name: String,
    /// Whether it is still present.
    pub is_active: bool,
    /// First sample.
    pub first_seen_date: NaiveDate,
    /// Last sample.
    pub last_seen_date: NaiveDate,
    /// The size at which it is full, in MB, if one is set.
    pub capacity_limit_mb: Option<i64>,
}

/// `PUT /databases/{id}/capacity-limit`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CapacityLimitInput {
    /// The size at which the database is full, in MB (at least 1); `null` removes the limit.
    /// Required.
    #[serde(default, deserialize_with = "crate::dto::present_whole_number")]
    #[schema(value_type = Option<i64>, nullable, minimum = 1, required)]
    pub capacity_limit_mb: Option<Option<i64>>,
}

impl From<capstats_store::instances::InventoryDatabase> for DatabaseOption {
    fn from(database: capstats_store::instances::InventoryDatabase) -> Self {
        Self {
            id: database.id,
            instance_id: database.instance_id,
            database_name: database.database_name,
            is_active: database.is_active,
            first_seen_date: database.first_seen_date,
            last_seen_date: database.last_seen_date,
            capacity_limit_mb: database.capacity_limit_mb,
        }
    }
}
