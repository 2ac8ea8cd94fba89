//! Checks of a persona's `voice`: pitch and rate within what a synthesiser takes. (Whether the
//! voice name exists depends on the voices installed where the game runs; the voice plugin
//! reports an unknown one when it speaks.)

use super::super::diagnostic::Diagnostic;
use super::Check;

impl Check<'_> {
    /// Each cast persona's `voice` ranges.
    pub(super) fn voices(&mut self) {
        for member in self.cast.values() {
            let (Some(v), src) = (&member.persona.voice, &member.source) else {
                continue;
            };
            let voice = src.find_field("voice", 0).unwrap_or(0);
            let at = |field: &str| src.location(src.find_field(field, voice).unwrap_or(voice));
            if v.pitch > 100 {
                self.out.push(
                    Diagnostic::error(
                        &src.path,
                        at("pitch"),
                        format!("voice pitch {} is over 100", v.pitch),
                    )
                    .with_help("pitch runs from 0 (low) to 100 (high); 50 is the voice's own"),
                );
            }
            if !(80..=450).contains(&v.rate) {
                self.out.push(
                    Diagnostic::error(
                        &src.path,
                        at("rate"),
                        format!("voice rate {} words per minute is outside 80..=450", v.rate),
                    )
                    .with_help("175 is eSpeak NG's usual speed"),
                );
            }
            if v.name.trim().is_empty() || v.name.chars().any(char::is_whitespace) {
                self.out.push(Diagnostic::error(
                    &src.path,
                    at("name"),
                    format!(
                        "voice name `{}` is not a voice name (`en-gb`, `en-us+f3`)",
                        v.name
                    ),
                ));
            }
        }
    }
}
