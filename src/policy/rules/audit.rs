//! `[audit]`: what each audit finding does (`codes`), and which wheels are audited before
//! anyone asks and how those not audited yet are listed (`fleet`, `listing`;
//! [`crate::demand`]).

use std::collections::HashMap;
use std::ops::Range;

use crate::demand::{AuditDemand, Environment, Listing};
use crate::policy::diag::Origin;
use crate::policy::rule::RuleAction;
use crate::policy::walk::{Val, Walk};

pub(crate) const KEYS: &[&str] = &["codes", "listing", "fleet"];

#[derive(Default)]
pub(crate) struct Raw {
    codes: HashMap<String, (RuleAction, Origin)>,
    listing: Option<Listing>,
    fleet: Vec<Environment>,
}

impl Raw {
    pub(crate) fn key(
        &mut self,
        w: &mut Walk<'_>,
        key: &str,
        v: &Val<'_>,
        _kspan: &Range<usize>,
        what: &str,
    ) {
        match key {
            "codes" => self.codes(w, v, what),
            "listing" => {
                if let Some(text) = w.str(v, what) {
                    match Listing::parse(text) {
                        Some(l) => self.listing = Some(l),
                        None => w.error(
                            &v.span(),
                            "bad-value",
                            format!("{what}: `{text}` is not `held` or `audited`"),
                        ),
                    }
                }
            }
            "fleet" => self.fleet(w, v, what),
            _ => {}
        }
    }

    fn codes(&mut self, w: &mut Walk<'_>, v: &Val<'_>, what: &str) {
        let Some(t) = w.table(v, what) else { return };
        for (k, a) in t.iter() {
            let code: &str = k.get_ref();
            if !crate::audit::FindingCode::ALL
                .iter()
                .any(|c| c.as_str() == code)
            {
                w.error(
                    &k.span(),
                    "unknown-code",
                    format!("{what}: `{code}` is not an audit finding code (`pipwall audit --format json` names them)"),
                );
                continue;
            }
            if let Some(action) = w.action(a, what) {
                self.codes
                    .insert(code.to_owned(), (action, w.origin(&k.span())));
            }
        }
    }

    fn fleet(&mut self, w: &mut Walk<'_>, v: &Val<'_>, what: &str) {
        for item in w.array(v, what) {
            let Some(t) = w.table(item, what) else {
                continue;
            };
            let mut fields: [Option<&str>; 3] = [None; 3];
            for (k, fv, _) in w.keys(t, what, &["python", "platform", "implementation"]) {
                let slot = match k {
                    "python" => 0,
                    "platform" => 1,
                    _ => 2,
                };
                fields[slot] = w.str(fv, what);
            }
            let [Some(python), Some(platform), implementation] = fields else {
                w.error(
                    &item.span(),
                    "missing-key",
                    format!("{what}: each entry needs `python` and `platform`, e.g. {{ python = \"3.12\", platform = \"manylinux_2_28_x86_64\" }}"),
                );
                continue;
            };
            match Environment::declared(python, platform, implementation) {
                Ok(env) => {
                    if !self.fleet.contains(&env) {
                        self.fleet.push(env);
                    }
                }
                Err(e) => w.error(&item.span(), "bad-value", format!("{what}: {e}")),
            }
        }
    }

    /// The action per finding code, and what is audited before anyone asks.
    pub(crate) fn finish(self) -> (HashMap<String, (RuleAction, Origin)>, AuditDemand) {
        let demand = AuditDemand {
            listing: self.listing.unwrap_or_default(),
            fleet: self.fleet,
        };
        (self.codes, demand)
    }
}
