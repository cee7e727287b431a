//! Decimals as exact JSON numbers — `0.00` is `0`, `50.00` is `50`, `12.34` is `12.34` —
//! written from the decimal's own digits, never through a binary float.

use capstats_capacity_model::Decimal;
use serde::Serialize;
use serde::ser::{Error, Serializer};
use serde_json::value::RawValue;

/// A decimal that serialises as a JSON number literal.
struct Exact<'a>(&'a Decimal);

impl Serialize for Exact<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // `normalize` drops trailing zeros; a zero is written `0`, whatever its sign.
        let text = if self.0.is_zero() {
            "0".to_owned()
        } else {
            self.0.normalize().to_string()
        };
        RawValue::from_string(text)
            .map_err(S::Error::custom)?
            .serialize(serializer)
    }
}

/// `serialize_with` for a decimal.
pub fn exact<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
    Exact(value).serialize(serializer)
}

/// `serialize_with` for an optional decimal (`null` when absent).
pub fn exact_optional<S: Serializer>(
    value: &Option<Decimal>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    value.as_ref().map(Exact).serialize(serializer)
}

/// `serialize_with` for a list of optional decimals.
pub fn exact_values<S: Serializer>(
    values: &[Option<Decimal>],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(values.iter().map(|value| value.as_ref().map(Exact)))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[derive(Serialize)]
    struct Numbers {
        #[serde(serialize_with = "exact")]
        one: Decimal,
        #[serde(serialize_with = "exact_optional")]
        maybe: Option<Decimal>,
        #[serde(serialize_with = "exact_values")]
        values: Vec<Option<Decimal>>,
    }

    fn decimal(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn decimals_are_json_numbers_without_trailing_zeros() {
        let numbers = Numbers {
            one: decimal("50.00"),
            maybe: None,
            values: [
                "0.00",
                "-0.00",
                "12.34",
                "12.30",
                "-7.05",
                "20480",
                "123456789012.99",
            ]
            .into_iter()
            .map(|text| Some(decimal(text)))
            .chain([None])
            .collect(),
        };
        assert_eq!(
            serde_json::to_string(&numbers).unwrap(),
            r#"{"one":50,"maybe":null,"values":[0,0,12.34,12.3,-7.05,20480,123456789012.99,null]}"#
        );
        // Through a `Value` too (the envelope may be built as one).
        let value = serde_json::to_value(&numbers).unwrap();
        assert_eq!(value["values"][2], serde_json::json!(12.34));
        assert!(value["one"].is_u64());
    }
}
