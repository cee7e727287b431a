//! A macro for enums whose values have stable names: stored in the database, written in JSON
//! and accepted as input.

/// Counts identifiers, for the length of `ALL`.
#[doc(hidden)]
#[macro_export]
macro_rules! __count_names {
    () => { 0usize };
    ($head:ident $($tail:ident)*) => { 1usize + $crate::__count_names!($($tail)*) };
}

/// Declares an enum whose variants have stable names, with `ALL`, `as_str`, `Display`,
/// `FromStr` (trimmed, case-insensitive; unknown names become `make_error(text)`) and serde
/// support under the same names.
///
/// ```
/// capstats_capacity_model::named_enum! {
///     /// Colours.
///     Colour, error: String = |text: &str| format!("unknown colour {text}"), {
///         /// Red.
///         Red => "red",
///         /// Dark blue.
///         DarkBlue => "dark_blue",
///     }
/// }
/// assert_eq!(" Dark_Blue".parse::<Colour>(), Ok(Colour::DarkBlue));
/// assert_eq!(Colour::ALL.len(), 2);
/// assert_eq!(Colour::Red.to_string(), "red");
/// ```
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $name:ident, error: $error:ty = $make_error:expr, {
            $($(#[$variant_meta:meta])* $variant:ident => $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            ::serde::Serialize, ::serde::Deserialize,
        )]
        pub enum $name {
            $($(#[$variant_meta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; $crate::__count_names!($($variant)+)] = [$($name::$variant),+];

            /// The name stored in the database and used in the API.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                formatter.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $error;

            fn from_str(text: &str) -> ::std::result::Result<Self, Self::Err> {
                let trimmed = text.trim();
                Self::ALL
                    .into_iter()
                    .find(|value| value.as_str().eq_ignore_ascii_case(trimmed))
                    .ok_or_else(|| ($make_error)(text))
            }
        }
    };
}
