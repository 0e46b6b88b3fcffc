//! Sizes as people write them, the same on the command line and in a policy: `1024`, `500K`,
//! `10G`, `1T`. A unit with `B` after a bare letter (`KB`, `MB`, `GB`, `TB`) is decimal, as
//! disks are sold; a bare letter or an `iB` unit (`K`/`KiB`, `M`/`MiB`, …) is binary, as
//! memory is counted. Case does not matter.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SizeError {
    #[error("`{0}` is not a size like 500M, 10GB or 1048576")]
    Invalid(String),
    #[error("`{0}` is too large")]
    TooLarge(String),
}

/// Bytes in `text`.
pub fn parse(text: &str) -> Result<u64, SizeError> {
    let s = text.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| SizeError::Invalid(text.to_owned()))?;
    let unit = unit.trim().to_ascii_lowercase();
    let (power, decimal) = match unit.as_str() {
        "" | "b" => (0, false),
        "k" | "kib" => (1, false),
        "kb" => (1, true),
        "m" | "mib" => (2, false),
        "mb" => (2, true),
        "g" | "gib" => (3, false),
        "gb" => (3, true),
        "t" | "tib" => (4, false),
        "tb" => (4, true),
        _ => return Err(SizeError::Invalid(text.to_owned())),
    };
    let base: u64 = if decimal { 1000 } else { 1024 };
    base.checked_pow(power)
        .and_then(|m| n.checked_mul(m))
        .ok_or_else(|| SizeError::TooLarge(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_the_same_everywhere() {
        assert_eq!(parse("1024"), Ok(1024));
        assert_eq!(parse("500MiB"), Ok(500 << 20));
        assert_eq!(parse("500m"), Ok(500 << 20));
        assert_eq!(parse("64K"), Ok(64 << 10));
        assert_eq!(parse("2GB"), Ok(2_000_000_000));
        // Issue 13: `--cache-max-size 10GB` was refused on the command line.
        assert_eq!(parse("10GB"), Ok(10_000_000_000));
        assert_eq!(parse("10G"), Ok(10 << 30));
        assert_eq!(parse(" 1 T "), Ok(1 << 40));
        assert_eq!(parse("3tb"), Ok(3_000_000_000_000));
    }

    #[test]
    fn nonsense_and_overflow_are_errors() {
        assert!(matches!(parse("12 parsecs"), Err(SizeError::Invalid(_))));
        assert!(matches!(parse(""), Err(SizeError::Invalid(_))));
        assert!(matches!(parse("-1"), Err(SizeError::Invalid(_))));
        assert!(matches!(parse("99999999999T"), Err(SizeError::TooLarge(_))));
        assert!(matches!(
            parse("99999999999999999999"),
            Err(SizeError::Invalid(_))
        ));
    }
}
