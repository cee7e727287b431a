//! The OpenAPI patterns of plain text and names say exactly what the server's checks accept:
//! every code point, and random strings, through both.

use capstats_capacity_model::{
    NAME_PATTERN, PLAIN_TEXT_PATTERN, is_unsafe_character, validate_plain_text,
};
use proptest::prelude::*;
use regex::Regex;

/// What the API accepts as a name: plain text that `trim` does not leave empty.
fn accepted_name(text: &str) -> bool {
    validate_plain_text("name", text).is_ok() && !text.trim().is_empty()
}

#[test]
fn every_code_point_is_judged_alike_by_the_patterns_and_the_checks() {
    let plain = Regex::new(PLAIN_TEXT_PATTERN).unwrap();
    let name = Regex::new(NAME_PATTERN).unwrap();
    for character in (0..=0x10FFFF).filter_map(char::from_u32) {
        let text = character.to_string();
        assert_eq!(
            plain.is_match(&text),
            !is_unsafe_character(character),
            "U+{:04X}",
            u32::from(character)
        );
        assert_eq!(
            name.is_match(&text),
            accepted_name(&text),
            "U+{:04X}",
            u32::from(character)
        );
    }
    assert!(!name.is_match("") && plain.is_match(""));
}

/// Strings from letters, white space and unsafe characters.
fn mixed_text() -> impl Strategy<Value = String> {
    let characters = prop::sample::select(vec![
        'a', 'é', '中', ' ', '\t', '\u{3000}', '\u{200B}', '\u{FEFF}', '\u{0}', '\u{7F}', '\u{85}',
        '\u{202E}', '\u{2066}',
    ]);
    prop::collection::vec(characters, 0..12).prop_map(|characters| characters.into_iter().collect())
}

proptest! {
    #[test]
    fn strings_are_judged_alike_by_the_patterns_and_the_checks(text in mixed_text()) {
        let plain = Regex::new(PLAIN_TEXT_PATTERN).unwrap();
        let name = Regex::new(NAME_PATTERN).unwrap();
        prop_assert_eq!(plain.is_match(&text), validate_plain_text("text", &text).is_ok());
        prop_assert_eq!(name.is_match(&text), accepted_name(&text));
    }
}
