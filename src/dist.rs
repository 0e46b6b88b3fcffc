//! Distribution names, filenames and tags: the packaging standards that decide what a file *is*
//! before anything decides whether it may be seen. Pure functions of strings; no I/O.

pub mod filename;
pub mod name;
pub mod tags;

pub use filename::{DistFilename, FilenameError, SdistFilename, WheelFilename, project_of};
pub use name::{NameError, ProjectName};
pub use tags::{TagError, WheelTags};
