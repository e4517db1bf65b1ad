//! The server's suites: the store on both backends, crash safety, demo seed, media, reports.
//!
//! One test binary per crate: each suite is a module here, so the workspace links one
//! executable instead of one per file (disk, link time and CI time all drop with it).

mod crash;
mod demo;
mod handover_cli;
mod import_cli;
mod media;
mod report;
mod store;
