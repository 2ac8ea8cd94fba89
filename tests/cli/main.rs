//! The `llama-dialogue` command line's integration tests (this binary belongs to crates/cli, so
//! `CARGO_BIN_EXE_llama-dialogue` is set; every command runs in the repository's root). One
//! module per command family.

#[path = "../common/mod.rs"]
mod common;

/// The `llama-dialogue` executable, run in the repository's root (so paths in arguments and
/// messages read as a writer types them).
fn cli_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_llama-dialogue"));
    cmd.current_dir(common::repo());
    cmd
}

mod check;
mod commands;
mod constrain;
mod crash_safety;
mod eval;
mod lsp;
mod tools;
mod transcripts;
mod writer;
