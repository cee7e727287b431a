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

crate::named_enum! {
    /// How a collector protects its connection to a monitored server.
    TlsMode, error: ValidationError = |text: &str| ValidationError::UnknownTlsMode(text.to_owned()), {
        /// No TLS: only for servers on a trusted network. A PostgreSQL password is never sent
        /// in clear text, but an impostor sees the login's challenge responses; a MySQL
        /// impostor can have the password encrypted to a key of its own.
        Disable => "disable",
        /// TLS without checking the server's certificate: protects against eavesdropping,
        /// not against an impostor. A MySQL/MariaDB password is not sent in this mode.
        Require => "require",
        /// TLS with the certificate checked against the trusted roots and the host name (the
        /// default).
        VerifyFull => "verify-full",
    }
}

#[expect(
    clippy::derivable_impls,
    reason = "`named_enum!` fixes the derives, so `Default` is written out"
)]
impl Default for TlsMode {
    fn default() -> Self {
        // Secure unless an operator says otherwise for a server without TLS.
        Self::VerifyFull
    }
}

impl TlsMode {
    /// Whether `self` checks less than `other` (a change from `other` to `self` weakens the
    /// connection).
    pub fn weaker_than(self, other: TlsMode) -> bool {
        // Declaration order is strength order.
        self < other
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

    #[test]
    fn tls_modes_round_trip_and_order_by_strength() {
        for mode in TlsMode::ALL {
            assert_eq!(mode.as_str().parse::<TlsMode>(), Ok(mode));
        }
        assert_eq!(TlsMode::default(), TlsMode::VerifyFull);
        assert!(TlsMode::Disable.weaker_than(TlsMode::Require));
        assert!(TlsMode::Require.weaker_than(TlsMode::VerifyFull));
        assert!(!TlsMode::VerifyFull.weaker_than(TlsMode::Disable));
        let error = "prefer".parse::<TlsMode>().unwrap_err();
        assert_eq!(error.field(), "tls_mode");
    }
}
