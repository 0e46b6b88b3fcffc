//! `[unmaintained]`: a project whose newest upload is older than `max-age` is flagged.

use std::ops::Range;

use crate::policy::diag::Origin;
use crate::policy::walk::{Val, Walk};

pub(crate) const KEYS: &[&str] = &["max-age"];

#[derive(Default)]
pub(crate) struct Raw {
    /// `Some(None)`: a later file switched the rule off again with `""`.
    max_age: Option<Option<(jiff::SignedDuration, Origin)>>,
}

impl Raw {
    pub(crate) fn key(
        &mut self,
        w: &mut Walk<'_>,
        key: &str,
        v: &Val<'_>,
        kspan: &Range<usize>,
        what: &str,
    ) {
        match key {
            "max-age" if Walk::is_unset(v) => self.max_age = Some(None),
            "max-age" => {
                if let Some(d) = w.duration(v, what) {
                    self.max_age = Some(Some((d, w.origin(kspan))));
                }
            }
            _ => {}
        }
    }

    /// The age past which a project is flagged; `None`: the rule is off.
    pub(crate) fn finish(self) -> Option<(jiff::SignedDuration, Origin)> {
        self.max_age.flatten().filter(|(d, _)| !d.is_zero())
    }
}
