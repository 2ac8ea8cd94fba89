//! [`Espeak`]: the [`Voice`] on eSpeak NG (the system's `libespeak-ng`, through
//! `espeakng-sys`). eSpeak NG keeps global state, so every call goes through one process-wide
//! lock; it synthesises synchronously into our buffer with phoneme events for the visemes.
#![allow(unsafe_code)] // eSpeak NG's C API; each unsafe block says why it is sound

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_int, c_short, c_void};
use std::sync::Mutex;

use espeakng_sys as sys;

use super::tts::{Speech, Viseme, Voice, VoiceError, VoiceSpec, mouth_for_phoneme};

/// eSpeak NG's sample rate once initialised (0: not yet).
static ENGINE: Mutex<u32> = Mutex::new(0);

/// Text to speech with eSpeak NG.
#[derive(Debug)]
pub struct Espeak {
    sample_rate: u32,
    /// Voice names as asked (`en-gb+f3`) → the name eSpeak NG accepts (`gmw/en+f3`): the
    /// language lookup lists and reads every installed voice, so it is done once per name.
    resolved: HashMap<String, CString>,
}

/// What the callback collects for one `espeak_Synth` call.
#[derive(Default)]
struct Collected {
    samples: Vec<i16>,
    /// (milliseconds into the audio, phoneme mnemonic)
    phonemes: Vec<(u32, String)>,
}

extern "C" fn collect(wav: *mut c_short, count: c_int, events: *mut sys::espeak_EVENT) -> c_int {
    if events.is_null() {
        return 0;
    }
    // SAFETY: eSpeak passes the `user_data` given to `espeak_Synth` (a live `Collected`, only
    // touched on this thread during that call) in every event, and an event list ended by
    // `espeakEVENT_LIST_TERMINATED`; `wav` holds `count` samples when not null.
    unsafe {
        let out = (*events).user_data as *mut Collected;
        if out.is_null() {
            return 0;
        }
        let out = &mut *out;
        if !wav.is_null() && count > 0 {
            out.samples
                .extend_from_slice(std::slice::from_raw_parts(wav, count as usize));
        }
        let mut e = events;
        while (*e).type_ != sys::espeak_EVENT_TYPE_espeakEVENT_LIST_TERMINATED {
            if (*e).type_ == sys::espeak_EVENT_TYPE_espeakEVENT_PHONEME {
                let raw = (*e).id.string;
                let bytes: Vec<u8> = raw
                    .iter()
                    .take_while(|&&b| b != 0)
                    .map(|&b| b as u8)
                    .collect();
                let ms = (*e).audio_position.max(0) as u32;
                out.phonemes
                    .push((ms, String::from_utf8_lossy(&bytes).into_owned()));
            }
            e = e.add(1);
        }
    }
    0
}

impl Espeak {
    /// Starts eSpeak NG (once per process) with its installed data files.
    pub fn new() -> Result<Self, VoiceError> {
        let mut rate = ENGINE
            .lock()
            .map_err(|_| VoiceError::Init("lock poisoned".into()))?;
        if *rate == 0 {
            // SAFETY: plain FFI calls under the process-wide lock; a null path means the
            // installed data directory.
            let r = unsafe {
                sys::espeak_Initialize(
                    sys::espeak_AUDIO_OUTPUT_AUDIO_OUTPUT_SYNCHRONOUS,
                    200,
                    std::ptr::null(),
                    (sys::espeakINITIALIZE_PHONEME_EVENTS | sys::espeakINITIALIZE_DONT_EXIT)
                        as c_int,
                )
            };
            if r <= 0 {
                return Err(VoiceError::Init(
                    "espeak_Initialize failed (are the espeak-ng-data files installed?)".into(),
                ));
            }
            // SAFETY: `collect` matches `t_espeak_callback`.
            unsafe { sys::espeak_SetSynthCallback(Some(collect)) };
            *rate = r as u32;
        }
        Ok(Self {
            sample_rate: *rate,
            resolved: HashMap::new(),
        })
    }

    /// eSpeak NG's version.
    pub fn version() -> String {
        // SAFETY: returns a static string; the data path out-parameter may be null.
        unsafe {
            let v = sys::espeak_Info(std::ptr::null_mut());
            if v.is_null() {
                "?".into()
            } else {
                CStr::from_ptr(v).to_string_lossy().into_owned()
            }
        }
    }
}

/// Selects the voice `asked` names and returns the name eSpeak NG took: the name itself (a
/// voice file), else for a language code ("en-gb") the installed voice that speaks it (by
/// eSpeak's priority), keeping a variant ("+f3"). Call with the engine lock held.
unsafe fn resolve_voice(asked: &str, name: CString) -> Option<CString> {
    // SAFETY: plain FFI calls with NUL-terminated strings that outlive them.
    unsafe {
        if sys::espeak_SetVoiceByName(name.as_ptr()) == sys::espeak_ERROR_EE_OK {
            return Some(name);
        }
        let (lang, variant) = match asked.split_once('+') {
            Some((l, v)) => (l, Some(v)),
            None => (asked, None),
        };
        let id = voice_for_language(lang).map(|id| match variant {
            Some(v) => format!("{id}+{v}"),
            None => id,
        })?;
        let id = CString::new(id).ok()?;
        (sys::espeak_SetVoiceByName(id.as_ptr()) == sys::espeak_ERROR_EE_OK).then_some(id)
    }
}

/// The identifier of the installed voice that speaks `lang` with the best priority
/// (eSpeak's voice list: each entry's languages are `[priority byte, name, NUL]*, NUL`).
/// Call with the engine lock held.
unsafe fn voice_for_language(lang: &str) -> Option<String> {
    let mut best: Option<(u8, String)> = None;
    // SAFETY: eSpeak returns a NULL-terminated array of voices it owns, valid until the next
    // list call (we hold the engine lock); `languages` is a byte list ended by a zero
    // priority.
    unsafe {
        let list = sys::espeak_ListVoices(std::ptr::null_mut());
        if list.is_null() {
            return None;
        }
        let mut i = 0;
        while !(*list.add(i)).is_null() {
            let v = &**list.add(i);
            i += 1;
            if v.languages.is_null() || v.identifier.is_null() {
                continue;
            }
            let mut p = v.languages as *const u8;
            while *p != 0 {
                let priority = *p;
                let name = CStr::from_ptr(p.add(1) as *const std::ffi::c_char);
                if name.to_bytes().eq_ignore_ascii_case(lang.as_bytes())
                    && best.as_ref().is_none_or(|(b, _)| priority < *b)
                {
                    let id = CStr::from_ptr(v.identifier).to_string_lossy().into_owned();
                    best = Some((priority, id));
                }
                p = p.add(1 + name.to_bytes().len() + 1);
            }
        }
    }
    best.map(|(_, id)| id)
}

fn check(code: sys::espeak_ERROR, what: &str) -> Result<(), VoiceError> {
    if code == sys::espeak_ERROR_EE_OK {
        Ok(())
    } else {
        Err(VoiceError::Synth(format!("{what} returned {code}")))
    }
}

impl Voice for Espeak {
    fn label(&self) -> String {
        format!("eSpeak NG {}", Self::version())
    }

    fn synthesize(&mut self, text: &str, spec: &VoiceSpec) -> Result<Speech, VoiceError> {
        // A panic on an earlier call (outside eSpeak's own code, which does not unwind) left
        // eSpeak's state whole: the lock is taken again.
        let _engine = ENGINE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let name = CString::new(spec.name.as_str())
            .map_err(|_| VoiceError::UnknownVoice(spec.name.clone()))?;
        // Text for eSpeak: plain (no SSML), and bounded everywhere its parser recurses.
        let clean = super::speakable::for_espeak(text);
        let c_text = CString::new(clean).map_err(|e| VoiceError::Synth(e.to_string()))?;
        let mut out = Collected::default();
        // SAFETY: all pointers live across the calls; synchronous mode runs the callback
        // inside `espeak_Synth` with `user_data` = `&mut out`, under the lock.
        unsafe {
            let known = self.resolved.get(&spec.name).is_some_and(|id| {
                sys::espeak_SetVoiceByName(id.as_ptr()) == sys::espeak_ERROR_EE_OK
            });
            if !known {
                let id = resolve_voice(&spec.name, name)
                    .ok_or_else(|| VoiceError::UnknownVoice(spec.name.clone()))?;
                self.resolved.insert(spec.name.clone(), id);
            }
            check(
                sys::espeak_SetParameter(
                    sys::espeak_PARAMETER_espeakRATE,
                    spec.rate.clamp(80, 450) as c_int,
                    0,
                ),
                "espeak_SetParameter(rate)",
            )?;
            check(
                sys::espeak_SetParameter(
                    sys::espeak_PARAMETER_espeakPITCH,
                    spec.pitch.min(100) as c_int,
                    0,
                ),
                "espeak_SetParameter(pitch)",
            )?;
            let bytes = c_text.as_bytes_with_nul();
            check(
                sys::espeak_Synth(
                    bytes.as_ptr() as *const c_void,
                    bytes.len(),
                    0,
                    sys::espeak_POSITION_TYPE_POS_CHARACTER,
                    0,
                    sys::espeakCHARS_UTF8,
                    std::ptr::null_mut(),
                    &mut out as *mut Collected as *mut c_void,
                ),
                "espeak_Synth",
            )?;
            check(sys::espeak_Synchronize(), "espeak_Synchronize")?;
        }
        let rate = self.sample_rate;
        let samples: Vec<f32> = out.samples.iter().map(|&s| s as f32 / 32768.0).collect();
        let mut visemes: Vec<Viseme> = Vec::with_capacity(out.phonemes.len() + 1);
        for (ms, name) in &out.phonemes {
            let at = (*ms as u64 * rate as u64 / 1000) as usize;
            let open = mouth_for_phoneme(name);
            match visemes.last_mut() {
                Some(last) if last.at == at => last.open = open,
                Some(last) if last.at > at => {}
                _ => visemes.push(Viseme { at, open }),
            }
        }
        if visemes.first().is_none_or(|v| v.at > 0) {
            visemes.insert(0, Viseme { at: 0, open: 0.0 });
        }
        Ok(Speech {
            sample_rate: rate,
            samples,
            visemes,
        })
    }
}
