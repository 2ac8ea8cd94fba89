//! `llama-dialogue tokenize`.

use bevy_llama_dialogue_core::engine::gguf::GgufFile;
use bevy_llama_dialogue_core::engine::tokenizer::Tokenizer;

use crate::{CliResult, ModelArg};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// Do not add BOS.
    #[arg(long)]
    no_bos: bool,
    /// Parse control tokens written as text (`</s>`); off by default, as for player text.
    #[arg(long)]
    parse_special: bool,
    /// Print exactly one JSON array of ids on stdout.
    #[arg(long)]
    json: bool,
    /// The text.
    text: String,
}

pub fn run(args: Args) -> CliResult {
    let tok = Tokenizer::from_gguf(&GgufFile::open(&args.model.model)?)?;
    let ids = if args.parse_special {
        tok.encode_trusted(&args.text, !args.no_bos)
    } else {
        tok.encode(&args.text, !args.no_bos)
    };
    if args.json {
        println!("{}", serde_json::to_string(&ids)?);
    } else {
        for id in ids {
            println!("{id}\t{:?}", tok.piece(id).unwrap_or(""));
        }
    }
    Ok(())
}
