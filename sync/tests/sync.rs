//! The sync core's suites: records, rules, trust grading, attendance.
//!
//! One test binary per crate: each suite is a module here, so the workspace links one
//! executable instead of one per file (disk, link time and CI time all drop with it).

mod attendance;
mod diary_rules;
mod field_rules;
mod photo_rules;
mod records;
mod trust;
