//! Scopes: several policies served by one pipwall, each at `/NAME/simple/` (the default at
//! `/simple/`). Only the names live here, below everything that routes, authenticates or
//! serves by scope.

/// The scope of the plain index at `/simple/`.
pub const DEFAULT: &str = "default";

/// Whether `name` may name a scope: a short lowercase word that is not one of pipwall's own
/// top-level paths, so `/NAME/simple/` can never shadow them.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_'))
        && !matches!(name, "simple" | "files" | "healthz" | "readyz" | "metrics")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_lowercase_words_that_shadow_nothing() {
        for ok in ["ci", "team-a", "x_1", "0day"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "CI",
            "-x",
            "a/b",
            "simple",
            "files",
            "metrics",
            &"a".repeat(65),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
