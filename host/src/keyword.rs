//! Settings that are one of a few names (`earliest`, `cooperative-sticky`,
//! `dead-letter`): one table of names per enum gives its `FromStr`, `Display`
//! and serde forms, so a flag, a JSON body and `weir.toml` spell it the same
//! way, and the library needs no CLI derive to be parsed.

/// Implements `FromStr`, `Display`, `Serialize` and `Deserialize` for an enum
/// that has `fn name(self) -> &'static str`, `fn parse(&str) -> Option<Self>`
/// and `const ALL` (every variant, in the order an error lists them).
macro_rules! keywords {
    ($ty:ty) => {
        impl ::std::str::FromStr for $ty {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                Self::parse(s).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
                    format!("expected one of {}, got {s:?}", names.join(", "))
                })
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use keywords;
