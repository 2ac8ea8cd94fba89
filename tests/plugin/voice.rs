//! The voice plugin headless, with its real parts (Whisper tiny.en from PyPI, eSpeak NG): the
//! player's spoken words take the story's edge, the NPC's answer comes out as PCM with
//! visemes, and walking away stops the audio.

use crate::common;

use crate::app::*;
use bevy::prelude::*;
use bevy_llama_dialogue::engine::voice::audio::resample;
use bevy_llama_dialogue::engine::voice::listen::ListenConfig;
use bevy_llama_dialogue::plugin::*;
use common::voice::*;

#[derive(Resource, Default)]
struct Heard {
    partials: Vec<String>,
    spoke: Vec<PlayerSpoke>,
    audio: Vec<(Entity, String, usize, usize, f32)>,
    stopped: Vec<Entity>,
    mouth_open: Vec<(Entity, f32)>,
}

fn voice_app() -> App {
    app_with(lantern_plugin(), false, |app| {
        // Bevy's audio: without a sound device it plays nothing, but the sound entities exist.
        app.add_plugins(bevy::audio::AudioPlugin::default());
        app.add_plugins(DialogueVoicePlugin {
            whisper: Some(whisper_dir()),
            listen: ListenConfig {
                partial_every_ms: 700,
                ..ListenConfig::default()
            },
            ..default()
        })
        .init_resource::<Heard>()
        .add_systems(
            Last,
            |mut s: MessageReader<PlayerSpeaking>,
             mut p: MessageReader<PlayerSpoke>,
             mouths: Query<(Entity, &NpcMouth)>,
             mut h: ResMut<Heard>| {
                for m in s.read() {
                    h.partials.push(m.partial.clone());
                }
                h.spoke.extend(p.read().cloned());
                for (e, m) in &mouths {
                    if m.open > 0.0 {
                        h.mouth_open.push((e, m.open));
                    }
                }
            },
        )
        .add_observer(|a: On<NpcSpeechAudio>, mut h: ResMut<Heard>| {
            let s = &a.speech;
            let voiced = s.visemes.iter().filter(|v| v.open > 0.0).count();
            h.audio.push((
                a.entity,
                a.sentence.clone(),
                s.samples.len(),
                voiced,
                s.seconds(),
            ));
        })
        .add_observer(|a: On<NpcSpeechStopped>, mut h: ResMut<Heard>| {
            h.stopped.push(a.entity);
        });
    })
}

fn heard(app: &App) -> &Heard {
    app.world().resource::<Heard>()
}

/// Runs frames (16 ms of virtual audio each when `mic` has some left) until `done`.
fn run_with_mic(
    app: &mut App,
    mic: &mut Vec<f32>,
    rate: u32,
    mut done: impl FnMut(&mut App) -> bool,
) -> bool {
    let chunk = rate as usize / 10;
    for _ in 0..200_000 {
        if !mic.is_empty() {
            let n = chunk.min(mic.len());
            let samples: Vec<f32> = mic.drain(..n).collect();
            send(
                app,
                MicrophoneAudio {
                    samples,
                    sample_rate: rate,
                },
            );
        }
        app.update();
        if done(app) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_micros(300));
    }
    false
}

#[test]
fn spoken_words_take_the_edge_and_the_answer_is_spoken_with_visemes() {
    let mut app = voice_app();
    let wren = spawn_npc(&mut app, "wren", -3.0);
    let mara = spawn_npc(&mut app, "mara", -5.0);
    let player = app
        .world_mut()
        .spawn((DialogueListener, Transform::default()))
        .id();
    run_until_loaded(&mut app);
    let ready = |a: &mut App| {
        let s = a.world().resource::<VoiceStatus>();
        matches!(s.listening, VoicePart::Ready(_)) && matches!(s.speaking, VoicePart::Ready(_))
    };
    assert!(
        run_with_mic(&mut app, &mut Vec::new(), 16000, ready),
        "{:?}",
        app.world().resource::<VoiceStatus>()
    );

    send(&mut app, TalkTo { npc: wren });
    assert!(run_until(&mut app, |a| log(a).count("Choices") == 1));
    // Wren's authored greeting is spoken in Wren's voice: PCM and visemes on Wren.
    assert!(run_until(&mut app, |a| heard(a)
        .audio
        .iter()
        .any(|x| x.0 == wren)));
    let (_, sentence, samples, voiced, seconds) = heard(&app).audio[0].clone();
    assert!(
        !sentence.is_empty() && samples > 1000 && voiced > 3 && seconds > 0.3,
        "{:?}",
        heard(&app).audio[0]
    );
    send(
        &mut app,
        ChoicePicked {
            npc: wren,
            index: 0,
        },
    );
    assert!(run_until(&mut app, |a| log(a).count("Input") == 1));

    // The player faces Mara and says it aloud (eSpeak NG at its own 22.05 kHz, resampled by
    // the listener), in 100 ms chunks as a microphone would send it.
    app.world_mut().resource_mut::<VoiceFocus>().npc = Some(mara);
    let speech = spoken("where is the missing lantern", 0.6, 1.2);
    let mut mic = resample(&speech, 16000, 22050);
    let took = run_with_mic(&mut app, &mut mic, 22050, |a| {
        log(a).0.iter().any(|(_, k)| k == "Node: mara_lantern")
    });
    let h = heard(&app);
    assert!(
        took,
        "spoke {:?}, partials {:?}, log {:?}",
        h.spoke,
        h.partials,
        log(&app).0
    );
    assert_eq!(h.spoke.len(), 1, "{:?}", h.spoke);
    assert_eq!(h.spoke[0].npc, Some(mara));
    assert!(
        h.spoke[0].text.to_lowercase().matches("lantern").count() == 1,
        "{:?}",
        h.spoke[0]
    );
    assert!(
        h.partials.first().is_some_and(String::is_empty),
        "speaking started: {:?}",
        h.partials
    );
    let now = story(&mut app);
    let said = &now.state().unwrap().memories["mara"].turns;
    assert!(
        said.iter()
            .any(|t| t.content.to_lowercase().contains("lantern")),
        "{said:?}"
    );

    // Mara answers aloud; her mouth moves while the audio plays.
    let answered = run_until(&mut app, |a| {
        heard(a)
            .audio
            .iter()
            .any(|x| x.0 == mara && x.1.to_lowercase() != "well? what do you want?")
    });
    assert!(
        answered,
        "audio {:?}\nlog {:?}",
        heard(&app).audio,
        log(&app).0
    );
    let moving = run_until(&mut app, |a| {
        a.world()
            .get::<NpcVoicePlayback>(mara)
            .unwrap()
            .is_speaking()
            && a.world().get::<NpcMouth>(mara).unwrap().open > 0.0
    });
    assert!(moving, "Mara's mouth moves while her answer plays");
    let sounding = |a: &mut App| {
        a.world_mut()
            .query::<(&NpcVoiceSound, &ChildOf)>()
            .iter(a.world())
            .filter(|(s, c)| s.npc == mara && c.parent() == mara)
            .count()
    };
    assert!(
        sounding(&mut app) >= 1,
        "her sentence plays as a sound at her position"
    );
    let opened: Vec<f32> = heard(&app)
        .mouth_open
        .iter()
        .filter(|x| x.0 == mara)
        .map(|x| x.1)
        .collect();
    assert!(
        opened.iter().any(|&o| o != opened[0]),
        "the mouth changes shape: {opened:?}"
    );

    // The player walks away: Mara's audio stops at once and her mouth closes.
    app.world_mut()
        .get_mut::<Transform>(player)
        .unwrap()
        .translation = Vec3::new(0.0, 0.0, 100.0);
    assert!(run_until(&mut app, |a| heard(a).stopped.contains(&mara)));
    app.update();
    let p = app.world().get::<NpcVoicePlayback>(mara).unwrap();
    assert!(!p.is_speaking() && p.remaining_seconds() <= 0.0);
    assert_eq!(app.world().get::<NpcMouth>(mara).unwrap().open, 0.0);
    assert_eq!(sounding(&mut app), 0, "her sound entities are gone");
    let before = heard(&app).audio.iter().filter(|x| x.0 == mara).count();
    for _ in 0..200 {
        app.update();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert_eq!(
        heard(&app).audio.iter().filter(|x| x.0 == mara).count(),
        before,
        "no audio after the stop"
    );
}
