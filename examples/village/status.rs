//! The model's state for the player: an overlay while a model loads (its file, size and the
//! seconds so far), when it is ready (how long it took) or failed (the reason; NPCs then speak
//! their authored lines); tokens/s and time to first token of the last line in a corner; and
//! the panel's model picker (the `.gguf` files in `models/`, or a path), which swaps the
//! backend when no line is in flight.

use std::path::{Path, PathBuf};
use std::time::Instant;

use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};
use bevy_llama_dialogue::engine::backend::LocalLlama;
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::engine::worker::WorkerConfig;
use bevy_llama_dialogue::plugin::{DialogueBackendHandle, DialogueBackendStatus, DialogueStats};

/// Seconds the "ready" card stays.
const READY_CARD: f32 = 5.0;

/// The model picker's state.
#[derive(Resource, Default)]
pub struct ModelPicker {
    /// `.gguf` files found in `models/`.
    pub found: Vec<PathBuf>,
    /// The path typed in.
    pub typed: String,
    /// Picked and waiting for the lines in flight to end.
    pub requested: Option<PathBuf>,
}

/// The load being shown.
#[derive(Resource)]
pub struct Loading {
    /// The model file, if any.
    pub file: Option<PathBuf>,
    /// Its size in bytes.
    pub bytes: u64,
    /// When the load started.
    pub started: Instant,
    /// When it ended (ready or failed), seconds after `started`.
    pub ended_after: Option<f32>,
    /// When it ended, in app time.
    pub ended_at: f32,
}

impl Loading {
    fn of(file: Option<PathBuf>) -> Self {
        let bytes = file
            .as_deref()
            .and_then(|f| std::fs::metadata(f).ok())
            .map_or(0, |m| m.len());
        Self {
            file,
            bytes,
            started: Instant::now(),
            ended_after: None,
            ended_at: 0.0,
        }
    }
}

pub fn plugin(app: &mut App) {
    let model = app.world().resource::<crate::DemoArgs>().model.clone();
    app.insert_resource(Loading::of(model))
        .insert_resource(ModelPicker {
            found: models_in(&models_dir()),
            ..default()
        })
        // The load is tracked before a swap, so a new one is first seen after the plugin has
        // read the new backend's status (in `PreUpdate`).
        .add_systems(Update, (track_load, swap_model).chain())
        .add_systems(EguiPrimaryContextPass, (overlay, speed_corner));
}

/// `models/` under the demo's asset root (`BEVY_ASSET_ROOT`, else the working directory).
fn models_dir() -> PathBuf {
    std::env::var_os("BEVY_ASSET_ROOT")
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
        .join("models")
}

fn models_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .collect();
    found.sort();
    found
}

/// A picked model replaces the backend once no line is in flight.
fn swap_model(
    mut commands: Commands,
    mut picker: ResMut<ModelPicker>,
    backend: Res<DialogueBackendHandle>,
) {
    if picker.requested.is_none() || backend.in_flight() > 0 {
        return;
    }
    let Some(path) = picker.requested.take() else {
        return;
    };
    info!("loading {}", path.display());
    let worker = LocalLlama::spawn(WorkerConfig::new(ModelSource::Path(path.clone())));
    commands.insert_resource(DialogueBackendHandle::new(Box::new(worker)));
    commands.insert_resource(Loading::of(Some(path)));
}

fn track_load(time: Res<Time>, status: Res<DialogueBackendStatus>, mut loading: ResMut<Loading>) {
    if loading.ended_after.is_none() && *status != DialogueBackendStatus::Loading {
        loading.ended_after = Some(loading.started.elapsed().as_secs_f32());
        loading.ended_at = time.elapsed_secs();
    }
}

/// The card at the top of the 3D view.
fn overlay(
    mut contexts: EguiContexts,
    time: Res<Time>,
    status: Res<DialogueBackendStatus>,
    backend: Res<DialogueBackendHandle>,
    loading: Res<Loading>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    let Some(file) = &loading.file else {
        return Ok(()); // no model: the panel says so
    };
    let name = file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let size = format!("{:.1} MB", loading.bytes as f64 / 1e6);
    let since_end = time.elapsed_secs() - loading.ended_at;
    let (colour, title, detail) = match (&*status, loading.ended_after) {
        (DialogueBackendStatus::Loading, _) => (
            egui::Color32::from_rgb(240, 200, 120),
            format!("Loading {name}"),
            format!(
                "{size} · {:.1} s so far · NPCs speak when it is ready",
                loading.started.elapsed().as_secs_f32()
            ),
        ),
        (DialogueBackendStatus::Ready, Some(after)) if since_end < READY_CARD => (
            egui::Color32::from_rgb(150, 220, 140),
            format!("Ready: {}", backend.label()),
            format!("{size} loaded in {after:.1} s"),
        ),
        (DialogueBackendStatus::Failed(reason), _) if since_end < READY_CARD * 3.0 => (
            egui::Color32::from_rgb(240, 120, 100),
            format!("{name} failed"),
            format!("{reason}\nNPCs speak the story's authored lines."),
        ),
        _ => return Ok(()),
    };
    egui::Area::new(egui::Id::new("model-status"))
        .anchor(
            egui::Align2::CENTER_TOP,
            egui::vec2(-crate::panel::PANEL_WIDTH / 2.0, 16.0),
        )
        .show(ctx, |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                ui.set_max_width(460.0);
                ui.horizontal(|ui| {
                    if *status == DialogueBackendStatus::Loading {
                        ui.add(egui::Spinner::new().size(22.0));
                    }
                    ui.label(egui::RichText::new(title).size(20.0).strong().color(colour));
                });
                ui.label(egui::RichText::new(detail).size(15.0));
            });
        });
    Ok(())
}

/// Tokens/s and time to first token of the last generated line, bottom left.
fn speed_corner(mut contexts: EguiContexts, stats: Res<DialogueStats>) -> Result {
    let ctx = contexts.ctx_mut()?;
    let Some(last) = &stats.last else {
        return Ok(());
    };
    egui::Area::new(egui::Id::new("speed"))
        .anchor(egui::Align2::LEFT_BOTTOM, egui::vec2(12.0, -12.0))
        .show(ctx, |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                ui.label(
                    egui::RichText::new(format!(
                        "{:.1} tok/s · TTFT {:.0} ms · {} lines",
                        last.decode_tok_s(),
                        last.ttft_ms,
                        stats.lines
                    ))
                    .monospace(),
                );
            });
        });
    Ok(())
}

/// The picker, drawn inside the dialogue panel.
pub fn picker_ui(ui: &mut egui::Ui, picker: &mut ModelPicker, in_flight: usize) {
    if picker.found.is_empty() {
        ui.label("No .gguf files in models/.");
    }
    let mut chosen = None;
    for file in &picker.found {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        if ui.button(name.as_ref()).clicked() {
            chosen = Some(file.clone());
        }
    }
    ui.horizontal(|ui| {
        ui.add(egui::TextEdit::singleline(&mut picker.typed).hint_text("path/to/model.gguf"));
        if ui.button("Load").clicked() && !picker.typed.trim().is_empty() {
            chosen = Some(PathBuf::from(picker.typed.trim()));
        }
    });
    if let Some(file) = chosen {
        picker.requested = Some(file);
    }
    if let Some(file) = &picker.requested {
        ui.label(format!(
            "{} waits for {in_flight} line(s) in flight",
            file.display()
        ));
    }
}
