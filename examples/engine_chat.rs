//! Talk to a GGUF model with the Bevy-free engine: load, render a chat, stream the answer.
//!
//! ```sh
//! cargo run --release --example engine_chat -- tests/models/stories260K.gguf "Tell me about the lantern."
//! ```

use std::ops::ControlFlow;

use bevy_llama_dialogue::engine::chat::{ChatMessage, Role};
use bevy_llama_dialogue::engine::llama::Llama;
use bevy_llama_dialogue::engine::model::ModelOptions;
use bevy_llama_dialogue::engine::sampler::SamplingParams;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .unwrap_or_else(|| "tests/models/stories260K.gguf".into());
    let question = args
        .next()
        .unwrap_or_else(|| "Have you seen the lantern?".into());
    let mut llama = Llama::load(&model, &ModelOptions::default())?;
    println!("model: {model} (template {:?})", llama.template);
    let messages = [
        ChatMessage::new(
            Role::System,
            "You are Mara, the miller of Oakvale. Answer in one or two sentences.",
        ),
        ChatMessage::new(Role::User, question),
    ];
    let params = SamplingParams {
        max_tokens: 96,
        seed: Some(1),
        ..SamplingParams::default()
    };
    let reply = llama.chat(&messages, &params, &mut |text| {
        print!("{text}");
        ControlFlow::Continue(())
    })?;
    println!(
        "\n[{:?}; {} tokens, first after {:.0} ms, {:.1} tokens/s]",
        reply.finish,
        reply.stats.generated_tokens,
        reply.stats.ttft_ms,
        reply.stats.decode_tok_s()
    );
    Ok(())
}
