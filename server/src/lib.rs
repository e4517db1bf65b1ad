//! fieldsync server library: storage, auth, the HTTP/WebSocket API and the running server.
//! The `fieldsync` binary (main.rs) only parses the command line and calls into here.

pub mod app;
pub mod audit;
pub mod auth;
pub mod blobs;
pub mod demo;
pub mod handover;
pub mod http;
pub mod import;
pub mod media;
pub mod photo_media;
pub mod report;
pub mod store;
