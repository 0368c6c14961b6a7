//! [`PageSize`]: how many items a listing returns, with its default and cap.

use super::ValidationError;

/// A number of items to list, between 0 and [`PageSize::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(usize);

impl PageSize {
    /// A listing's length when the caller names none (the simulator's `no` default).
    pub const DEFAULT: PageSize = PageSize(100);
    /// A timeline page as people read it: the original MiniTwit's `PER_PAGE`.
    pub const PER_PAGE: PageSize = PageSize(30);
    /// The largest page any listing returns; larger requests are capped to it.
    pub const MAX: usize = 1000;

    /// A page of `n` items, capped at [`PageSize::MAX`].
    pub fn new(n: usize) -> Self {
        Self(n.min(Self::MAX))
    }

    /// Parses a requested size, such as the simulator's `no` query parameter: absent
    /// means [`PageSize::DEFAULT`]; a non-negative integer is capped at
    /// [`PageSize::MAX`]; anything else (negative, not a number, beyond `u64`) is refused.
    pub fn parse(raw: Option<&str>) -> Result<Self, ValidationError> {
        match raw {
            None => Ok(Self::DEFAULT),
            Some(raw) => raw
                .trim()
                .parse::<u64>()
                .map(|n| Self::new(usize::try_from(n).unwrap_or(usize::MAX)))
                .map_err(|_| ValidationError::PageSizeInvalid),
        }
    }

    /// The number of items.
    pub fn get(self) -> usize {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_caps_and_refuses() {
        assert_eq!(PageSize::parse(None).unwrap().get(), 100);
        assert_eq!(PageSize::parse(Some("7")).unwrap().get(), 7);
        assert_eq!(PageSize::parse(Some("0")).unwrap().get(), 0);
        assert_eq!(PageSize::parse(Some("99999999999")).unwrap().get(), PageSize::MAX);
        for bad in ["-1", "abc", "1.5", "", "999999999999999999999999999"] {
            assert_eq!(PageSize::parse(Some(bad)), Err(ValidationError::PageSizeInvalid));
        }
    }
}
