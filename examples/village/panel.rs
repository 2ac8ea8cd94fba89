//! The egui dialogue panel: history, the line streaming now, numbered choices, a text box, the
//! story journal and a debug pane.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};
use bevy_llama_dialogue::plugin::*;

use crate::player::Nearby;
use crate::scene::NpcLabel;

/// Whether egui has the keyboard (typing must not walk the player).
#[derive(Resource, Default)]
pub struct UiFocus(pub bool);

/// What the panel shows, fed by the plugin's events.
#[derive(Resource, Default)]
pub struct Conversation {
    /// Finished lines: (speaker, text).
    pub history: Vec<(String, String)>,
    /// The NPC whose line is streaming.
    pub speaking: Option<Entity>,
    /// The streaming line is narration.
    pub narration: bool,
    /// Choices waiting for an answer: (NPC, options).
    pub choices: Option<(Entity, Vec<String>)>,
    /// Free text asked for: (NPC, prompt).
    pub input: Option<(Entity, Option<String>)>,
    /// What the player is typing.
    pub typed: String,
    /// The ending reached.
    pub ended: Option<String>,
    /// The last error.
    pub error: Option<String>,
}

/// The panel's width (logical pixels); bubbles stay left of it.
pub const PANEL_WIDTH: f32 = 400.0;

pub fn plugin(app: &mut App) {
    app.insert_resource(crate::bubble::PanelInset(PANEL_WIDTH));
    app.add_observer(|e: On<LineQueued>, mut c: ResMut<Conversation>| {
        c.speaking = Some(e.entity);
        c.narration = e.speaker.is_none();
    })
    .add_observer(
        |e: On<LineFinished>, mut c: ResMut<Conversation>, labels: Query<&NpcLabel>| {
            let who = match labels.get(e.entity) {
                Ok(l) if !c.narration => l.name.clone(),
                _ => String::new(),
            };
            c.history.push((who, e.text.clone()));
            c.speaking = None;
        },
    )
    .add_observer(|e: On<ChoicesPresented>, mut c: ResMut<Conversation>| {
        if let Some(t) = &e.text {
            c.history.push((String::new(), t.clone()));
        }
        c.choices = Some((e.entity, e.options.clone()));
    })
    .add_observer(|_: On<ChoicesWithdrawn>, mut c: ResMut<Conversation>| {
        c.choices = None;
        c.input = None;
    })
    .add_observer(|e: On<InputRequested>, mut c: ResMut<Conversation>| {
        c.input = Some((e.entity, e.prompt.clone()));
    })
    .add_observer(|e: On<StoryEnded>, mut c: ResMut<Conversation>| {
        c.ended = Some(e.title.clone());
        if let Some(t) = &e.text {
            c.history.push((String::new(), t.clone()));
        }
    })
    .add_observer(|e: On<DialogueError>, mut c: ResMut<Conversation>| {
        c.error = Some(e.message.clone())
    })
    .add_systems(Update, clear_answered.after(DialogueSystems::Input))
    .add_systems(EguiPrimaryContextPass, (hint, dialogue_panel));
}

/// Choices and input prompts disappear once answered.
fn clear_answered(
    mut c: ResMut<Conversation>,
    mut picked: MessageReader<ChoicePicked>,
    mut said: MessageReader<PlayerSaid>,
) {
    if picked.read().count() > 0 {
        c.choices = None;
    }
    for s in said.read() {
        c.history.push(("You".into(), s.text.clone()));
        c.input = None;
    }
}

fn hint(
    mut contexts: EguiContexts,
    nearby: Res<Nearby>,
    labels: Query<&NpcLabel>,
    c: Res<Conversation>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    let Some(npc) = nearby.0 else { return Ok(()) };
    if c.choices.is_some() || c.input.is_some() || c.speaking.is_some() {
        return Ok(());
    }
    let (name, color) = labels.get(npc).map_or(("them", egui::Color32::WHITE), |l| {
        let c = l.color.to_srgba();
        let u = |v: f32| (v.clamp(0.0, 1.0) * 255.0) as u8;
        (
            l.name.as_str(),
            egui::Color32::from_rgb(u(c.red), u(c.green), u(c.blue)),
        )
    });
    egui::Area::new(egui::Id::new("hint"))
        .anchor(egui::Align2::CENTER_BOTTOM, egui::vec2(-190.0, -40.0))
        .show(ctx, |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.label(egui::RichText::new("Press E to talk to").size(20.0));
                    ui.label(egui::RichText::new(name).size(20.0).strong().color(color));
                });
            });
        });
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn dialogue_panel(
    mut contexts: EguiContexts,
    mut c: ResMut<Conversation>,
    mut focus: ResMut<UiFocus>,
    stories: Query<&DialogueStory, With<PlayerStory>>,
    backend: Res<DialogueBackendHandle>,
    stats: Res<DialogueStats>,
    buffers: Query<(&SpeechBuffer, &NpcLabel)>,
    mut pick: MessageWriter<ChoicePicked>,
    mut said: MessageWriter<PlayerSaid>,
    mut picker: ResMut<crate::status::ModelPicker>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    let story = stories.single().ok();
    let state = story.and_then(|s| s.state());
    focus.0 = ctx.egui_wants_keyboard_input();
    let mut viewport = egui::Ui::new(
        ctx.clone(),
        "viewport".into(),
        egui::UiBuilder::new()
            .layer_id(egui::LayerId::background())
            .max_rect(ctx.viewport_rect()),
    );
    egui::Panel::right("dialogue").exact_size(PANEL_WIDTH).show(&mut viewport, |ui| {
        ui.heading("The Lantern of Millbrook");
        if backend.has_model() {
            ui.label(format!("Voices: {}", backend.label()));
        } else {
            ui.colored_label(
                egui::Color32::from_rgb(200, 120, 40),
                "No model loaded: NPCs speak the story's authored lines (--model PATH.gguf for a model).",
            );
        }
        ui.separator();
        egui::ScrollArea::vertical().max_height(300.0).stick_to_bottom(true).show(ui, |ui| {
            for (who, text) in &c.history {
                if who.is_empty() {
                    ui.label(egui::RichText::new(text).italics());
                } else {
                    ui.label(egui::RichText::new(format!("{who}: {text}")));
                }
            }
            if let Some(npc) = c.speaking
                && let Ok((buffer, label)) = buffers.get(npc)
            {
                let text = if buffer.thinking { "…".to_owned() } else { buffer.text.clone() };
                ui.label(egui::RichText::new(format!("{}: {text} …", label.name)).strong());
            }
        });
        ui.separator();
        if let Some((npc, options)) = c.choices.clone() {
            for (i, option) in options.iter().enumerate() {
                if ui.button(format!("{}. {option}", i + 1)).clicked() {
                    pick.write(ChoicePicked { npc, index: i });
                }
            }
        }
        if let Some((npc, prompt)) = c.input.clone() {
            ui.label(prompt.unwrap_or_else(|| "Say something:".into()));
            let edit = ui.text_edit_singleline(&mut c.typed);
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (ui.button("Say").clicked() || enter) && !c.typed.trim().is_empty() {
                let text = std::mem::take(&mut c.typed);
                said.write(PlayerSaid { npc, text });
            }
        }
        if let Some(ending) = &c.ended {
            ui.strong(format!("Ending reached: {ending}"));
        }
        ui.separator();
        egui::CollapsingHeader::new("Journal").default_open(true).show(ui, |ui| {
            if let Some(state) = state {
                let v = |k: &str| state.variables.get(k).map(ToString::to_string).unwrap_or_default();
                ui.label(format!("Clues found: {}", v("clues")));
                ui.label(format!("Mara's trust: {}   Tobin's trust: {}", v("trust_mara"), v("trust_tobin")));
                ui.label(format!("Elder Wren's patience: {}", v("patience")));
                if v("confessed") == "true" {
                    ui.label("Tobin confessed: he broke the lantern.");
                } else if v("saw_thief") == "true" {
                    ui.label("Mara saw Tobin carrying something toward the forge.");
                }
            }
        });
        egui::CollapsingHeader::new("Model").default_open(false).show(ui, |ui| {
            crate::status::picker_ui(ui, &mut picker, backend.in_flight());
        });
        egui::CollapsingHeader::new("Debug").default_open(false).show(ui, |ui| {
            ui.label(format!("backend: {}", backend.label()));
            if let Some(last) = &stats.last {
                ui.label(format!(
                    "last line: {:.1} tok/s, TTFT {:.0} ms, {} prompt tokens ({} cached)",
                    last.decode_tok_s(),
                    last.ttft_ms,
                    last.prompt_tokens,
                    last.cached_tokens
                ));
            }
            ui.label(format!(
                "queue: {}   prefix-cache hits: {}/{} lines",
                stats.queue, stats.cache_hits, stats.lines
            ));
            if let Some(state) = state {
                ui.label(format!("node: {}", state.node));
                for (k, v) in &state.variables {
                    ui.label(format!("  {k} = {v}"));
                }
            }
            if let Some(p) = story.and_then(|s| s.last_prompt.as_ref()) {
                egui::CollapsingHeader::new("last prompt").show(ui, |ui| {
                    ui.label(egui::RichText::new(&p.system).small());
                    for t in &p.turns {
                        ui.label(egui::RichText::new(format!("[{:?}] {}", t.role, t.content)).small());
                    }
                });
            }
            if let Some(e) = &c.error {
                ui.colored_label(egui::Color32::RED, e);
            }
        });
    });
    Ok(())
}
