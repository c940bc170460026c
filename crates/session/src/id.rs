use std::fmt;

use crate::error::{Error, Result};

/// A session id: 128 bits from the OS random source, written as 32 lowercase hex characters.
///
/// The only ways to get one are `Store::create_session` and [`SessionId::parse`], and `parse` accepts
/// nothing but that exact shape, so a `SessionId` is always safe to use as a folder name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(String);

impl SessionId {
    /// Length of an id: 32 lowercase hex characters (128 random bits).
    pub const LEN: usize = 32;

    /// Mints a fresh id. Minting alone does not create the session; use `Store::create_session`.
    pub(crate) fn mint() -> Result<SessionId> {
        Ok(SessionId(random_hex::<16>()?))
    }

    /// Accepts exactly 32 characters of `0-9a-f`. Everything else (uppercase, traversal strings,
    /// separators, NUL, other lengths) is [`Error::MalformedSessionId`].
    pub fn parse(text: &str) -> Result<SessionId> {
        let well_formed = text.len() == Self::LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if well_formed {
            Ok(SessionId(text.to_owned()))
        } else {
            Err(Error::MalformedSessionId)
        }
    }

    /// The 32 hex characters (safe as a folder name).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0)
    }
}

/// `N` random bytes from the OS as lowercase hex.
pub(crate) fn random_hex<const N: usize>() -> Result<String> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| Error::Entropy(e.to_string()))?;
    Ok(hex(&bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_ids_parse_and_differ() {
        let a = SessionId::mint().unwrap();
        let b = SessionId::mint().unwrap();
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str()).unwrap(), a);
        assert_eq!(a.as_str().len(), 32);
    }

    #[test]
    fn rejects_everything_but_32_lowercase_hex() {
        let bad = [
            "",
            "../../etc/passwd",
            "..",
            "0123456789abcdef0123456789abcde",   // 31
            "0123456789abcdef0123456789abcdef0", // 33
            "0123456789ABCDEF0123456789abcdef",
            "0123456789abcdef0123456789abcdeg",
            "0123456789abcdef/123456789abcdef",
            "0123456789abcdef\x00123456789abcdef",
            "../0123456789abcdef0123456789abc",
            "0123456789abcdef0123456789abcd\u{e9}",
            " 0123456789abcdef0123456789abcde",
            "550e8400-e29b-41d4-a716-446655440000",
        ];
        for text in bad {
            assert!(
                matches!(SessionId::parse(text), Err(Error::MalformedSessionId)),
                "{text:?}"
            );
        }
        assert!(SessionId::parse("0123456789abcdef0123456789abcdef").is_ok());
    }
}
