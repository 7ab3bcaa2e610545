//! Range-checked scalars for tool inputs.
//!
//! A tool's JSON Schema and its validation must never disagree: if the schema says `maximum: 500`
//! the server must refuse 501, and vice versa. So each bounded field is a newtype whose limits are
//! constants used both by its `Deserialize` (the check) and by its `JsonSchema` (the promise).

/// Declares an integer newtype checked against `[min, max]` on deserialisation, with a default.
macro_rules! bounded_int {
    ($(#[$doc:meta])* $name:ident: $int:ty, min $min:literal, max $max:literal, default $default:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name($int);

        impl $name {
            /// The smallest accepted value.
            pub const MIN: $int = $min;
            /// The largest accepted value.
            pub const MAX: $int = $max;

            /// Checks the range.
            pub fn new(value: $int) -> Result<Self, String> {
                if (Self::MIN..=Self::MAX).contains(&value) {
                    Ok(Self(value))
                } else {
                    Err(format!("must be between {} and {}, got {}", Self::MIN, Self::MAX, value))
                }
            }

            /// The checked value.
            pub const fn get(self) -> $int {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self($default)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <$int as serde::Deserialize>::deserialize(deserializer)?;
                Self::new(value).map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "integer", "minimum": $min, "maximum": $max })
            }
        }
    };
}

/// Declares a string newtype whose length in characters is checked against `[min, max]`.
///
/// Text that contains NUL is refused as well: no legitimate argument needs it, and it truncates
/// strings in C APIs further down (paths, argv).
macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, min $min:literal, max $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The fewest characters accepted.
            pub const MIN_CHARS: usize = $min;
            /// The most characters accepted.
            pub const MAX_CHARS: usize = $max;

            /// Checks the length and refuses NUL.
            pub fn new(value: impl Into<String>) -> Result<Self, String> {
                let value = value.into();
                let chars = value.chars().count();
                if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&chars) {
                    return Err(format!(
                        "must be between {} and {} characters long, got {}",
                        Self::MIN_CHARS,
                        Self::MAX_CHARS,
                        chars
                    ));
                }
                if value.contains('\0') {
                    return Err("must not contain NUL characters".to_owned());
                }
                Ok(Self(value))
            }

            /// The checked text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Gives the checked text back.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::new(value).map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "minLength": $min, "maxLength": $max })
            }
        }
    };
}

pub(crate) use bounded_int;

/// A list of at most `MAX` items, checked on deserialisation and published as `maxItems`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct BoundedVec<T, const MAX: usize>(Vec<T>);

impl<T, const MAX: usize> BoundedVec<T, MAX> {
    /// Checks the length.
    pub fn new(items: Vec<T>) -> Result<Self, String> {
        if items.len() > MAX {
            return Err(format!("must have at most {MAX} items, got {}", items.len()));
        }
        Ok(Self(items))
    }

    /// The items.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T, const MAX: usize> Default for BoundedVec<T, MAX> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, T: serde::Deserialize<'de>, const MAX: usize> serde::Deserialize<'de> for BoundedVec<T, MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items = Vec::<T>::deserialize(deserializer)?;
        Self::new(items).map_err(serde::de::Error::custom)
    }
}

impl<T: schemars::JsonSchema, const MAX: usize> schemars::JsonSchema for BoundedVec<T, MAX> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("BoundedVec_{}_{MAX}", T::schema_name()).into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "array", "items": generator.subschema_for::<T>(), "maxItems": MAX })
    }
}
pub(crate) use bounded_text;

/// Declares a name newtype (a playbook id, a channel, a tag): a string accepted only when `$valid`
/// says so, whose JSON Schema publishes `$pattern`. The check is a plain byte test rather than the
/// regex itself (no regex on every tool call); a property test per type holds the two to agreement.
/// `$rule` is the error's advice, written for a person.
macro_rules! checked_name {
    ($(#[$doc:meta])* $name:ident, $what:literal, valid $valid:expr, rule $rule:expr, pattern $pattern:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The JSON Schema pattern the check implements.
            pub const PATTERN: &'static str = $pattern;

            /// Checks the form.
            pub fn new(s: impl Into<String>) -> Result<Self, String> {
                let s = s.into();
                let valid: fn(&str) -> bool = $valid;
                if valid(&s) {
                    Ok(Self(s))
                } else {
                    Err(format!(
                        "`{}` is not a valid {}: {}",
                        s.chars().take(80).collect::<String>(),
                        $what,
                        $rule
                    ))
                }
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Self::new(<String as serde::Deserialize>::deserialize(deserializer)?).map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "pattern": Self::PATTERN })
            }
        }
    };
}

pub(crate) use checked_name;

#[cfg(test)]
#[allow(unreachable_pub, dead_code)]
mod tests {
    use serde::Deserialize as _;

    bounded_int!(
        /// Test type.
        Lines: u32, min 1, max 500, default 100
    );
    bounded_text!(
        /// Test type.
        Query, min 1, max 8
    );

    #[test]
    fn ints_are_checked_on_both_edges() {
        assert!(Lines::new(0).is_err());
        assert_eq!(Lines::new(1).map(Lines::get), Ok(1));
        assert_eq!(Lines::new(500).map(Lines::get), Ok(500));
        assert!(Lines::new(501).is_err());
        assert_eq!(Lines::default().get(), 100);
        let err = serde_json::from_str::<Lines>("501").unwrap_err();
        assert!(err.to_string().contains("between 1 and 500"), "{err}");
        assert!(serde_json::from_str::<Lines>("-1").is_err());
        assert!(serde_json::from_str::<Lines>("\"5\"").is_err());
    }

    #[test]
    fn text_counts_characters_not_bytes_and_refuses_nul() {
        assert!(Query::new("").is_err());
        assert!(Query::new("éééééééé").is_ok(), "8 characters, 16 bytes");
        assert!(Query::new("123456789").is_err());
        assert!(Query::new("a\0b").is_err());
        let value = serde_json::Value::String("ok".into());
        assert_eq!(Query::deserialize(value).ok().map(Query::into_inner), Some("ok".to_owned()));
    }
}
