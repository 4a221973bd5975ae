//! Shared by the property tests: small edits of a valid text form, which reach the parsers'
//! edge cases more often than arbitrary strings do.

// Each test crate includes this module and uses only some of it.
#![allow(dead_code)]

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
