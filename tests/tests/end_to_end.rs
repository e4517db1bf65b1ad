//! End-to-end suites: the real server on port 0, real phone stores in temp dirs.
//!
//! One test binary per crate: each suite is a module here, so the workspace links one
//! executable instead of one per file (disk, link time and CI time all drop with it).

mod audit;
mod bad_input;
mod blobs;
mod convergence;
mod device_cli;
mod diaries;
mod diary_server;
mod e2e;
mod field;
mod field_day;
mod handover;
mod import;
mod photo_phone;
mod photos;
mod views;
