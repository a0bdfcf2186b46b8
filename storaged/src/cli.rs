//! The command line shared by the `storaged` binary and vectord's
//! `examples/storaged.rs`.

use crate::server::{serve, ServerOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: storaged --dir DIR [--listen ADDR] [--page-size N] \
                     [--max-body-bytes N] [--base-path /PREFIX]";

fn parse_args(
    mut args: impl Iterator<Item = String>,
) -> Result<(PathBuf, String, ServerOptions), String> {
    let mut dir: Option<PathBuf> = None;
    let mut listen = "127.0.0.1:7070".to_string();
    let mut opts = ServerOptions::default();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Err(String::new());
        }
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--listen" => listen = value()?,
            "--page-size" => {
                opts.page_size = value()?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("--page-size must be a positive integer")?
            }
            "--max-body-bytes" => {
                opts.max_body_bytes = value()?
                    .parse()
                    .map_err(|_| "--max-body-bytes must be an integer")?
            }
            "--base-path" => {
                let b = value()?;
                if !b.is_empty() && !b.starts_with('/') {
                    return Err("--base-path must start with /".into());
                }
                opts.base_path = b;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let dir = dir.ok_or("--dir is required")?;
    Ok((dir, listen, opts))
}

/// Runs the server with command-line `args` (without the program name).
/// Prints `listening on ADDR` once bound (`--listen 127.0.0.1:0` picks a
/// free port), then serves until the process ends.
pub fn main_with_args(args: impl Iterator<Item = String>) -> ExitCode {
    let (dir, listen, opts) = match parse_args(args) {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("storaged: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(&listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("storaged: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("storaged: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    match listener.local_addr() {
        Ok(addr) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "listening on {addr}");
            let _ = out.flush();
        }
        Err(e) => {
            eprintln!("storaged: {e}");
            return ExitCode::FAILURE;
        }
    }
    match serve(&dir, listener, &opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("storaged: {e}");
            ExitCode::FAILURE
        }
    }
}
