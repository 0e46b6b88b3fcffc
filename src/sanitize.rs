//! The one place untrusted text (names, filenames, upstream and advisory text, reasons built
//! from them) is made safe to print on a terminal, in a log line or in a page.
//!
//! Two shapes, for two uses: [`escape`] keeps every character visible (a control character
//! becomes its escape, so what was sent can still be read), for text a person must be able to
//! compare byte for byte; [`one_line`] makes a bounded single line for prose (summaries,
//! reasons, licenses), dropping what cannot be shown. Both remove the bidirectional-formatting
//! characters that can make a terminal show text other than what was logged.

/// Characters that change how the text around them is shown without showing themselves:
/// bidirectional embeddings, overrides and isolates, zero-width characters and the byte-order
/// mark.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
    )
}

/// Most characters [`escape`] keeps: a filename or name longer than this is hostile anyway.
const MAX_ESCAPED: usize = 1000;

/// Untrusted text with control and invisible characters escaped (`\u{202e}`, `\n`), at most
/// 1,000 characters of it.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_ESCAPED + 200));
    for c in s.chars().take(MAX_ESCAPED) {
        if c.is_control() || is_invisible(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// One line of at most `max_chars` characters: whitespace runs (line ends included) become one
/// space, other control and invisible characters go (so an escape sequence loses its ESC and
/// shows as the harmless text after it), and a cut line ends in `…`.
pub fn one_line(raw: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max_chars.saturating_mul(4)));
    let mut count = 0usize;
    let mut space = false;
    let mut truncated = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            space = count > 0;
            continue;
        }
        if c.is_control() || is_invisible(c) {
            continue;
        }
        let needed = if space { 2 } else { 1 };
        if count + needed > max_chars {
            truncated = true;
            break;
        }
        if space {
            out.push(' ');
            count += 1;
            space = false;
        }
        out.push(c);
        count += 1;
    }
    if truncated && max_chars > 0 {
        if count >= max_chars {
            out.pop();
        }
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_every_character_visible() {
        assert_eq!(escape("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        assert_eq!(escape("evil\u{202e}gpj.exe"), "evil\\u{202e}gpj.exe");
        assert_eq!(escape("numpy-2.0.whl"), "numpy-2.0.whl");
        assert_eq!(escape(&"x".repeat(5000)).len(), 1000);
    }

    #[test]
    fn one_line_collapses_drops_and_cuts() {
        assert_eq!(one_line("a\n\tb\u{202E}c\u{1b}", 50), "a bc");
        assert_eq!(one_line("  lead and trail  ", 50), "lead and trail");
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(one_line("zero\u{200b}width", 50), "zerowidth");
        assert_eq!(
            one_line("malware\u{1b}[31m report", 50),
            "malware[31m report"
        );
        assert_eq!(one_line("", 0), "");
    }
}
