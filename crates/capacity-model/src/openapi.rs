//! OpenAPI schemas of the named enums (feature `openapi`): string enums listing every name.

use crate::{
    AggregationLevel, AlertMetric, ChannelKind, Comparison, DbType, PeriodType, Severity, TlsMode,
    TrendDirection,
};

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
    AlertMetric: "What an alert rule's condition measures: `growth_percent` over a window of periods, `days_until_full` of the forecast, `size_mb` in the latest period, or `no_samples_days` since the last sample.",
    Comparison: "Whether an alert fires above or below its threshold.",
    Severity: "How urgent an alert rule's events are.",
    ChannelKind: "Where an alert notification goes: a generic `webhook`, a `dingtalk`, `wecom` or `feishu` robot, or `email`.",
    TlsMode: "How a collector protects its connection: `disable` (no TLS), `require` (TLS, certificate not checked) or `verify-full` (TLS, certificate checked against the trusted roots and the host name; the default).",
}
