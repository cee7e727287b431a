//! OpenAPI schemas of the named enums (feature `openapi`): string enums listing every name.

use crate::{AggregationLevel, DbType, PeriodType, TlsMode, TrendDirection};

/// Implements utoipa's `ToSchema` for enums made by `named_enum!`: a string enum of every name
/// (`ALL`, `as_str`). Used by the crates of named enums that describe an HTTP API.
#[macro_export]
macro_rules! string_enum_schema {
    ($($name:ident: $description:literal),+ $(,)?) => {
        $(
            impl ::utoipa::PartialSchema for $name {
                fn schema() -> ::utoipa::openapi::RefOr<::utoipa::openapi::Schema> {
                    ::utoipa::openapi::schema::ObjectBuilder::new()
                        .schema_type(::utoipa::openapi::schema::SchemaType::new(
                            ::utoipa::openapi::schema::Type::String,
                        ))
                        .description(Some($description))
                        .enum_values(Some($name::ALL.iter().map(|value| value.as_str())))
                        .into()
                }
            }

            impl ::utoipa::ToSchema for $name {}
        )+
    };
}

string_enum_schema! {
    DbType: "The database engine of an instance.",
    PeriodType: "The granularity of an aggregation.",
    AggregationLevel: "Database level or instance level.",
    TrendDirection: "growing above +5 %, shrinking below -5 %, else stable.",
    TlsMode: "How a collector protects its connection: `disable` (no TLS), `require` (TLS, certificate not checked) or `verify-full` (TLS, certificate checked against the trusted roots and the host name; the default).",
}
