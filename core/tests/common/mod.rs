//! Shared by the property tests and the JSON bench: JSON texts in every spelling, and small
//! edits of a valid text form, which reach the parsers' edge cases more often than arbitrary
//! strings do.

// Each test crate includes this module and uses only some of it.
#![allow(dead_code)]

use proptest::prelude::*;
use proptest::sample::Index;

/// What one edit does at the character it picks.
#[derive(Clone, Copy, Debug)]
pub enum TextEdit {
    Replace,
    Insert,
    Remove,
}

impl TextEdit {
    /// Replace or remove, as a generated `bool` picks.
    pub fn replace_or_remove(replace: bool) -> TextEdit {
        if replace {
            TextEdit::Replace
        } else {
            TextEdit::Remove
        }
    }

    /// Replace, insert or remove, as a generated number picks (0, 1, anything else).
    pub fn from_number(how: u8) -> TextEdit {
        match how {
            0 => TextEdit::Replace,
            1 => TextEdit::Insert,
            _ => TextEdit::Remove,
        }
    }
}

/// `text` with `edits` applied in turn, each at the character its `Index` picks among those
/// there are by then. `text` must stay non-empty while edits remain.
pub fn edited_text(text: &str, edits: impl IntoIterator<Item = (Index, char, TextEdit)>) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for (at, c, edit) in edits {
        let i = at.index(chars.len());
        match edit {
            TextEdit::Replace => chars[i] = c,
            TextEdit::Insert => chars.insert(i, c),
            TextEdit::Remove => {
                chars.remove(i);
            }
        }
    }
    chars.into_iter().collect()
}

/// Whether generated objects may repeat a key (the JSON bench compares how readers treat them;
/// the property tests keep keys distinct).
#[derive(Clone, Copy, Debug)]
pub enum ObjectKeys {
    Distinct,
    MayRepeat,
}

/// A JSON value as text (compact or spaced, keys in any order, escapes, unicode, exact numbers
/// in every spelling), never containing `\u0000`.
pub fn arb_json(keys: ObjectKeys) -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        prop::sample::select(vec![
            "0",
            "-0",
            "7",
            "-12",
            "1.50",
            "0.001",
            "1e3",
            "1E3",
            "1e+3",
            "-2.5E-7",
            "12345678901234567890123",
            "3.14159265358979323846264338327950288",
        ])
        .prop_map(str::to_owned),
        (-1_000_000i64..1_000_000).prop_map(|n| n.to_string()),
        "[a-zé😀 \"\\\\/\t\n\u{1}\u{7f}☃]{0,8}".prop_map(|s| quote(&s)),
        prop::sample::select(vec![r#""\u00e9\ud83d\ude00""#, r#""\/\b\f""#, r#""\u001F""#]).prop_map(str::to_owned),
    ];
    leaf.prop_recursive(3, 16, 4, move |inner| {
        let members: BoxedStrategy<Vec<(String, String)>> = match keys {
            ObjectKeys::Distinct => prop::collection::btree_map("[a-z\u{e9}]{0,3}", inner.clone(), 0..4)
                .prop_map(|members| members.into_iter().collect())
                .boxed(),
            ObjectKeys::MayRepeat => prop::collection::vec(("[a-c\u{e9}]{0,2}", inner.clone()), 0..4).boxed(),
        };
        prop_oneof![
            (prop::collection::vec(inner, 0..4), any::<bool>())
                .prop_map(|(items, spaced)| format!("[{}]", items.join(if spaced { ", " } else { "," }))),
            (members, any::<bool>()).prop_map(|(members, reversed)| {
                let mut members: Vec<String> = members.into_iter().map(|(k, v)| format!("{}:{v}", quote(&k))).collect();
                if reversed {
                    members.reverse();
                }
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

/// `s` as a JSON string literal (minimal escaping).
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
