//! `storaged --dir DIR [--listen ADDR] [--page-size N] [--max-body-bytes N] [--base-path /PREFIX]`

fn main() -> std::process::ExitCode {
    storaged::main_with_args(std::env::args().skip(1))
}
