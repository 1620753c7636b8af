//! String members of JSON documents that hold key material (JWK, key
//! file), read without leaving copies: borrowed from the JSON text where it
//! has no escapes, otherwise unescaped into a buffer wiped on drop.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use zeroize::Zeroizing;

/// A member's value: a string, or anything else (a number, an object),
/// which no member this library reads may be.
pub(super) enum Text<'a> {
    /// A string without escapes, borrowed from the JSON text.
    Plain(&'a str),
    /// A string with escapes, unescaped into a buffer wiped on drop.
    Escaped(Zeroizing<String>),
    /// Any other JSON value.
    Other,
}

impl Text<'_> {
    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Self::Plain(text) => Some(text),
            Self::Escaped(text) => Some(text),
            Self::Other => None,
        }
    }
}

/// The string value of an optional member, if it is a string.
pub(super) fn text<'t>(value: &'t Option<Text<'_>>) -> Option<&'t str> {
    value.as_ref().and_then(Text::as_str)
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor)
    }
}

/// Accepts any JSON value, keeping only a string borrowed without escapes.
struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(Text::Plain(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Text::Escaped(Zeroizing::new(value.to_owned())))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Text::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Text::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Text::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Text::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Text::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Text::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Text::Other)
    }
}
