//! `llama-dialogue inspect`.

use std::collections::BTreeMap;

use bevy_llama_dialogue_core::engine::chat::ChatTemplate;
use bevy_llama_dialogue_core::engine::config::LlamaConfig;
use bevy_llama_dialogue_core::engine::cpu::{KernelLevel, compiled_features};
use bevy_llama_dialogue_core::engine::gguf::{GgufFile, MetadataExt};
use bevy_llama_dialogue_core::engine::tokenizer::Tokenizer;
use serde::Serialize;

use crate::{CliResult, ModelArg};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    file: String,
    file_size: u64,
    gguf_version: u32,
    architecture: String,
    config: LlamaConfig,
    vocab_size: usize,
    bos: u32,
    eos: u32,
    add_bos: bool,
    /// `SentencePiece`, or `byte-level BPE (<pre-tokenizer>)`.
    tokenizer: String,
    /// The tokens that end generation, as `id text`.
    end_of_generation: Vec<String>,
    chat_template: ChatTemplate,
    chat_template_source: &'static str,
    tensor_count: usize,
    tensor_types: BTreeMap<String, usize>,
    weight_bytes: u64,
    cpu_features: Vec<&'static str>,
    /// The kernel level a model loads with here (`LLAMA_DIALOGUE_CPU`, else the best).
    kernels: String,
    /// Every level this CPU supports.
    kernel_levels: Vec<&'static str>,
}

pub fn run(args: Args) -> CliResult {
    let gguf = GgufFile::open(&args.model.model)?;
    let config = LlamaConfig::from_gguf(&gguf)?;
    let tok = Tokenizer::from_gguf(&gguf)?;
    let jinja = gguf.opt_str("tokenizer.chat_template")?;
    let mut tensor_types = BTreeMap::new();
    for t in gguf.tensors() {
        *tensor_types.entry(t.ty.name()).or_insert(0) += 1;
    }
    let report = Report {
        file: args.model.model.display().to_string(),
        file_size: gguf.file_size(),
        gguf_version: gguf.header().version,
        architecture: gguf
            .opt_str("general.architecture")?
            .unwrap_or("?")
            .to_owned(),
        chat_template: ChatTemplate::for_vocabulary(&tok, jinja, config.name.as_deref()),
        chat_template_source: match (jinja, &config.name) {
            (Some(_), _) => "tokenizer.chat_template",
            (None, Some(_)) => "general.name",
            (None, None) => "default",
        },
        config,
        vocab_size: tok.vocab_size(),
        bos: tok.bos_id(),
        eos: tok.eos_id(),
        add_bos: tok.adds_bos(),
        tokenizer: match tok.pre_tokenizer() {
            Some(pre) => format!("byte-level BPE (pre-tokenizer {pre:?})"),
            None => "SentencePiece".to_owned(),
        },
        end_of_generation: tok
            .eog_ids()
            .iter()
            .map(|&id| format!("{id} {}", tok.piece(id).unwrap_or("?")))
            .collect(),
        tensor_count: gguf.tensors().len(),
        tensor_types,
        weight_bytes: gguf.tensors().iter().filter_map(|t| t.byte_size()).sum(),
        cpu_features: compiled_features(),
        kernels: KernelLevel::choose(None).map_or_else(|e| e.to_string(), |l| l.to_string()),
        kernel_levels: KernelLevel::ALL
            .into_iter()
            .filter(|l| l.is_supported())
            .map(KernelLevel::name)
            .collect(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let c = &report.config;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "file:            {} ({:.1} MiB, GGUF v{})",
        report.file,
        mib(report.file_size),
        report.gguf_version
    );
    println!("architecture:    {}", report.architecture);
    println!("name:            {}", c.name.as_deref().unwrap_or("-"));
    println!("context_length:  {}", c.context_length);
    println!("embedding:       {}", c.embedding_length);
    println!("blocks:          {}", c.block_count);
    println!("feed_forward:    {}", c.feed_forward_length);
    println!(
        "heads:           {} query, {} key/value, head size {}",
        c.head_count, c.head_count_kv, c.head_dim
    );
    println!(
        "rope:            dimension {}, freq_base {}, scale {}",
        c.rope_dimension, c.rope_freq_base, c.rope_freq_scale
    );
    println!("rms_norm_eps:    {:e}", c.rms_norm_eps);
    println!(
        "vocab:           {} tokens (bos {}, eos {}, add_bos {})",
        report.vocab_size, report.bos, report.eos, report.add_bos
    );
    println!("tokenizer:       {}", report.tokenizer);
    println!("end tokens:      {}", report.end_of_generation.join(", "));
    println!(
        "chat_template:   {:?} (from {})",
        report.chat_template, report.chat_template_source
    );
    let types: Vec<String> = report
        .tensor_types
        .iter()
        .map(|(t, n)| format!("{t}: {n}"))
        .collect();
    println!(
        "tensors:         {} ({})",
        report.tensor_count,
        types.join(", ")
    );
    println!("weights:         {:.1} MiB", mib(report.weight_bytes));
    println!("cpu features:    {}", report.cpu_features.join(" "));
    println!(
        "kernels:         {} (this CPU supports: {})",
        report.kernels,
        report.kernel_levels.join(", ")
    );
    Ok(())
}
