//! Errors at the edges: the library's errors are typed (thiserror) where they arise; this is
//! how any of them is told to a person in one line.

/// Every cause of an error in one line: hyper's top-level messages alone ("client error
/// (Connect)") do not say what went wrong.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
