//! `[unmaintained]`: a project whose newest upload is older than `max-age` is flagged.

use jiff::Timestamp;

use crate::index::FileEntry;
use crate::policy::check::Hit;
use crate::policy::decision::Code;
use crate::policy::rule::{Rule, RuleId};
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

/// A project whose newest upload (of `files`) is older than `max_age`; `recheck_by` is told
/// when a project still maintained would turn unmaintained, so its page is decided again then.
pub(crate) fn page_hit<'a>(
    rule: &'a Rule,
    max_age: Option<&(jiff::SignedDuration, Origin)>,
    files: &[FileEntry],
    now: Timestamp,
    recheck_by: impl Fn(Timestamp),
) -> Option<Hit<'a>> {
    let (max, origin) = max_age?;
    if rule.is_off() {
        return None;
    }
    let newest = newest_upload(files)?;
    let stale_from = newest.checked_add(*max).ok()?;
    if stale_from > now {
        recheck_by(stale_from);
        return None;
    }
    Some(Hit {
        origin: Some(origin.clone()),
        ..Hit::of(
            RuleId::Unmaintained,
            rule,
            Code::Unmaintained,
            format!(
                "newest upload {newest}, the limit is {} days",
                max.as_secs() / 86_400
            ),
        )
    })
}

/// The newest upload-time of a page's files. PEP 700 times are checked on parse to one fixed
/// form, so the greatest string is the newest (to the second) and only it is parsed.
fn newest_upload(files: &[FileEntry]) -> Option<Timestamp> {
    files
        .iter()
        .filter_map(|f| f.upload_time.as_deref())
        .max()
        .and_then(|t| t.parse().ok())
}
