//! The harness: a fake upstream index, fixture distributions, pipwall in-process, and real
//! pip and uv.

pub mod clients;
pub mod fixtures;
pub mod native;
pub mod pipwall;
pub mod served;
pub mod upstream;

pub use clients::clients;
pub use fixtures::{sdist, wheel};
pub use pipwall::Pipwall;
pub use upstream::{FakeIndex, PageFormat};
