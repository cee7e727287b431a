//! Monitored database servers: their identifiers and engines.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// The identifier of a monitored instance (`instances.id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstanceId(pub i64);

impl fmt::Display for InstanceId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(formatter)
    }
}

crate::named_enum! {
    /// The database engine of an instance.
    DbType, error: ValidationError = |text: &str| ValidationError::UnknownDbType(text.to_owned()), {
        /// MySQL or MariaDB.
        Mysql => "mysql",
        /// PostgreSQL.
        Postgresql => "postgresql",
        /// Microsoft SQL Server.
        Sqlserver => "sqlserver",
        /// Oracle Database.
        Oracle => "oracle",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_type_round_trips_through_text() {
        for db_type in DbType::ALL {
            assert_eq!(db_type.as_str().parse::<DbType>(), Ok(db_type));
        }
        assert_eq!(" PostgreSQL ".parse::<DbType>(), Ok(DbType::Postgresql));
        assert!(matches!(
            "db2".parse::<DbType>(),
            Err(ValidationError::UnknownDbType(_))
        ));
    }
}
