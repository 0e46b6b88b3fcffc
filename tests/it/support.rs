//! The harness: a fake upstream index, fixture distributions, pipwall in-process, and real
//! pip and uv.

pub mod clients;
pub mod fixtures;
pub mod native;
pub mod pipwall;
pub mod postgres;
pub mod served;
pub mod upstream;

pub use clients::clients;
pub use fixtures::{sdist, wheel};
pub use pipwall::Pipwall;
pub use upstream::{FakeIndex, PageFormat};

/// Every file under `dir`, recursively (none for a folder that does not exist).
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}
