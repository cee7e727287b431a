//! Monitored database servers: their identifiers and engines.

use std::fmt;
use std::str::FromStr;

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

/// The database engine of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbType {
    /// MySQL or MariaDB.
    Mysql,
    /// PostgreSQL.
    Postgresql,
    /// Microsoft SQL Server.
    Sqlserver,
    /// Oracle Database.
    Oracle,
}

impl DbType {
    /// Every engine, in a stable order.
    pub const ALL: [DbType; 4] = [Self::Mysql, Self::Postgresql, Self::Sqlserver, Self::Oracle];

    /// The name stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mysql => "mysql",
            Self::Postgresql => "postgresql",
            Self::Sqlserver => "sqlserver",
            Self::Oracle => "oracle",
        }
    }
}

impl fmt::Display for DbType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for DbType {
    type Err = ValidationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        Self::ALL
            .into_iter()
            .find(|db_type| db_type.as_str().eq_ignore_ascii_case(trimmed))
            .ok_or_else(|| ValidationError::UnknownDbType(text.to_owned()))
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
