//! storaged: the reference implementation of vectord's object service
//! (protocol: `docs/storaged-protocol.md`) over one directory.
//!
//! Its own crate so that the server is not compiled into the vectord
//! library every C program links, and so that vectord's tests can start it
//! (a dev-dependency) without a dependency cycle: this crate does not depend
//! on vectord. It shares vectord's key encoding, so a directory written by
//! either is read the same way by both.

mod cli;
mod dir;
pub mod key;
pub mod server;

pub use cli::main_with_args;
pub use server::{serve, serve_until, spawn, spawn_for_tests, ServerHandle, ServerOptions};
