//! `--remote URL [--remote-model NAME] [--remote-key-env VAR]`: lines from an OpenAI-compatible
//! server instead of a local model file.

use bevy_llama_dialogue_core::engine::backend::DialogueBackend;

/// Where a remote model is.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RemoteArgs {
    /// An OpenAI-compatible server to write the lines instead of a local model (llama.cpp's
    /// server, llama-cpp-python, vLLM, Ollama), e.g. `http://127.0.0.1:8080`.
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
    /// The model name to ask the server for (default: the first one it lists).
    #[arg(long, value_name = "NAME", requires = "remote")]
    pub remote_model: Option<String>,
    /// The environment variable that holds the server's API key.
    #[arg(long, value_name = "VAR", requires = "remote")]
    pub remote_key_env: Option<String>,
}

impl RemoteArgs {
    /// The remote backend, when `--remote` was given.
    #[cfg(feature = "remote")]
    pub fn backend(&self) -> Option<Box<dyn DialogueBackend>> {
        use bevy_llama_dialogue_core::engine::remote::{OpenAiCompatible, RemoteConfig};
        let url = self.remote.as_ref()?;
        let mut config = RemoteConfig::new(url.clone());
        config.model = self.remote_model.clone();
        config.api_key_env = self.remote_key_env.clone();
        Some(Box::new(OpenAiCompatible::spawn(config)))
    }

    /// Without the `remote` feature: a backend that says why it cannot run.
    #[cfg(not(feature = "remote"))]
    pub fn backend(&self) -> Option<Box<dyn DialogueBackend>> {
        use bevy_llama_dialogue_core::engine::backend::LocalLlama;
        use bevy_llama_dialogue_core::engine::source::ModelSource;
        use bevy_llama_dialogue_core::engine::worker::WorkerConfig;
        let url = self.remote.as_ref()?;
        let source = ModelSource::Remote {
            url: url.clone(),
            model: None,
            api_key_env: None,
        };
        Some(Box::new(LocalLlama::spawn(WorkerConfig::new(source))))
    }
}

/// `generate --remote`: the prompt as a chat message (with `--system` as the system message),
/// streamed from the server. The server applies its own chat template, so `--chat` is implied
/// and `--template` does not apply.
pub fn generate(args: &crate::generate::Args) -> crate::CliResult {
    use std::io::Write;
    use std::time::Duration;

    use bevy_llama_dialogue_core::engine::backend::{
        BackendEvent, BackendRequest, BackendStatus, ConversationId, GenerateRequest, Prompt,
    };
    use bevy_llama_dialogue_core::engine::constrain::Constraint;

    let constraint = args.constraint()?;
    if let Some((c, _)) = &constraint
        && !matches!(c, Constraint::JsonSchema(_))
    {
        return Err(format!(
            "--remote takes --json-schema only (sent as `response_format`); a {} cannot be sent",
            c.kind()
        )
        .into());
    }
    let Some(mut backend) = args.remote.backend() else {
        return Err("give --model or --remote".into());
    };
    loop {
        match backend.status() {
            BackendStatus::Ready => break,
            BackendStatus::Loading => std::thread::sleep(Duration::from_millis(5)),
            BackendStatus::Failed(why) => return Err(why.into()),
            BackendStatus::Stopped => return Err("the remote backend stopped".into()),
        }
    }
    let request = GenerateRequest {
        id: 1,
        conversation: ConversationId(0),
        prompt: Prompt::new(args.system.clone().unwrap_or_default(), args.prompt.clone()),
        params: args.sampling(),
        priority: 0,
        fallback: None,
        constraint: constraint.map(|(c, _)| std::sync::Arc::new(c)),
        banned: None,
    };
    backend.submit(BackendRequest::Generate(request))?;
    let mut stdout = std::io::stdout();
    let mut events = Vec::new();
    loop {
        events.clear();
        if backend.poll(64, &mut events) == 0 {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        for event in events.drain(..) {
            match event {
                BackendEvent::Text { text, .. } if !args.json => {
                    let _ = stdout.write_all(text.as_bytes());
                    let _ = stdout.flush();
                }
                BackendEvent::Finished {
                    reason,
                    text,
                    stats,
                    ..
                } => {
                    if args.json {
                        let out = serde_json::json!({
                            "text": text, "finish": reason, "stats": stats,
                            "backend": backend.label(),
                        });
                        println!("{out}");
                    } else {
                        println!();
                    }
                    eprintln!(
                        "{} | generated: {} chunks | ttft {:.1} ms | finish: {reason:?}",
                        backend.label(),
                        stats.generated_tokens,
                        stats.ttft_ms
                    );
                    return Ok(());
                }
                BackendEvent::Error { error, .. } => return Err(error.into()),
                _ => {}
            }
        }
    }
}
