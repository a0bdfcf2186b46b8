//! Reference storaged server over a directory (protocol: docs/storaged-protocol.md).
//! The server lives in the `storaged` workspace crate (its binary is
//! `storaged`); this example keeps the old command working:
//!
//! ```text
//! cargo run --release --example storaged -- --dir DIR --listen 127.0.0.1:PORT \
//!     [--page-size N] [--max-body-bytes N] [--base-path /prefix]
//! ```

fn main() -> std::process::ExitCode {
    storaged::main_with_args(std::env::args().skip(1))
}
