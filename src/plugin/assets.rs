//! Personas and stories as Bevy assets. A story asset is validated with its cast at load, so a
//! broken edit is refused with its `file:line:col` errors and the last good version stays.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bevy::asset::io::Reader;
use bevy::asset::{AssetLoader, LoadContext};
use bevy::prelude::*;

use crate::story::{
    CastMember, Diagnostics, Estimate, Persona, SourceText, StoryBundle, Translation,
    check_translation, parse_persona, parse_story, translation_path,
};

/// A persona file (`*.persona.ron`).
#[derive(Asset, TypePath, Debug, Clone)]
pub struct PersonaAsset(pub Persona);

/// A validated story with its cast (`*.story.ron`; the persona files it names are read and
/// checked with it, and editing one reloads the story).
#[derive(Asset, TypePath, Debug, Clone)]
pub struct StoryAsset(pub Arc<StoryBundle>);

/// Why a persona or story file was refused.
#[derive(Debug, thiserror::Error)]
pub enum StoryLoadError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A persona file named by the story's cast could not be read.
    #[error("{story}: cast file `{file}`: {reason}")]
    Cast {
        /// The story.
        story: String,
        /// The persona file.
        file: String,
        /// Why.
        reason: String,
    },
    /// The file is not valid UTF-8.
    #[error("{0}: not UTF-8 text")]
    Utf8(String),
    /// Syntax or validation errors, one `file:line:col: error: ...` per line.
    #[error("{0}")]
    Invalid(Diagnostics),
    /// The story's translation for the plugin's locale cannot be used, one `file:line: ...`
    /// per line.
    #[error("{0}")]
    Translation(String),
}

/// Turns an asset path into the path a writer sees (`stories/lantern.story.ron`).
fn display_path(root: &std::path::Path, ctx: &LoadContext) -> PathBuf {
    root.join(ctx.path().path())
}

async fn read_text(
    reader: &mut dyn Reader,
    shown: &std::path::Path,
) -> Result<String, StoryLoadError> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .await
        .map_err(|source| StoryLoadError::Io {
            path: shown.display().to_string(),
            source,
        })?;
    String::from_utf8(bytes).map_err(|_| StoryLoadError::Utf8(shown.display().to_string()))
}

/// Loads `*.persona.ron`.
#[derive(Debug, Clone, TypePath)]
pub struct PersonaLoader {
    /// Folder shown in error messages before the asset path.
    pub shown_root: PathBuf,
}

impl AssetLoader for PersonaLoader {
    type Asset = PersonaAsset;
    type Settings = ();
    type Error = StoryLoadError;

    async fn load(
        &self,
        reader: &mut dyn Reader,
        _settings: &(),
        ctx: &mut LoadContext<'_>,
    ) -> Result<PersonaAsset, StoryLoadError> {
        let shown = display_path(&self.shown_root, ctx);
        let text = read_text(reader, &shown).await?;
        parse_persona(&SourceText::new(shown, text))
            .map(PersonaAsset)
            .map_err(|d| StoryLoadError::Invalid(Diagnostics(vec![d])))
    }

    fn extensions(&self) -> &[&str] {
        &["persona.ron"]
    }
}

/// Loads `*.story.ron` with its cast, and validates them together.
#[derive(Debug, Clone, TypePath)]
pub struct StoryLoader {
    /// Folder shown in error messages before the asset path.
    pub shown_root: PathBuf,
    /// Load each story's translation for this locale, if it has one.
    pub locale: Option<String>,
}

impl StoryLoader {
    /// The bundle in `locale`, if the story has a translation next to it (a loader dependency,
    /// so editing it reloads the story); without one, the authored text with a warning.
    async fn localize(
        &self,
        bundle: StoryBundle,
        locale: &str,
        shown: &Path,
        ctx: &mut LoadContext<'_>,
    ) -> Result<StoryBundle, StoryLoadError> {
        let shown_table = translation_path(shown, locale);
        let file_name = shown_table
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let asset_path = ctx
            .path()
            .resolve_embed_str(&file_name)
            .map_err(|e| StoryLoadError::Translation(e.to_string()))?;
        let Ok(bytes) = ctx.read_asset_bytes(asset_path).await else {
            warn!(
                "{}: no `{locale}` translation; the story plays in its authored language",
                shown_table.display()
            );
            return Ok(bundle);
        };
        let text = String::from_utf8(bytes)
            .map_err(|_| StoryLoadError::Utf8(shown_table.display().to_string()))?;
        let table = Translation::from_csv(&shown_table, &text)
            .map_err(|e| StoryLoadError::Translation(e.to_string()))?;
        let report = check_translation(&bundle.story, &table);
        for w in &report.warnings {
            warn!("{w}");
        }
        if !report.errors.is_empty() {
            return Err(StoryLoadError::Translation(report.errors.join("\n")));
        }
        Ok(bundle.localized(&table))
    }
}

impl AssetLoader for StoryLoader {
    type Asset = StoryAsset;
    type Settings = ();
    type Error = StoryLoadError;

    async fn load(
        &self,
        reader: &mut dyn Reader,
        _settings: &(),
        ctx: &mut LoadContext<'_>,
    ) -> Result<StoryAsset, StoryLoadError> {
        let shown = display_path(&self.shown_root, ctx);
        let text = read_text(reader, &shown).await?;
        let source = SourceText::new(&shown, text);
        let story =
            parse_story(&source).map_err(|d| StoryLoadError::Invalid(Diagnostics(vec![d])))?;
        let mut cast = BTreeMap::new();
        for (key, file) in &story.cast {
            let cast_err = |reason: String| StoryLoadError::Cast {
                story: shown.display().to_string(),
                file: file.clone(),
                reason,
            };
            let path = ctx
                .path()
                .resolve_embed_str(file)
                .map_err(|e| cast_err(e.to_string()))?;
            // A loader dependency: editing the persona file reloads this story.
            let bytes = ctx
                .read_asset_bytes(path.clone())
                .await
                .map_err(|e| cast_err(e.to_string()))?;
            let persona_shown = self.shown_root.join(path.path());
            let text = String::from_utf8(bytes)
                .map_err(|_| StoryLoadError::Utf8(persona_shown.display().to_string()))?;
            let persona_source = SourceText::new(persona_shown, text);
            let persona = parse_persona(&persona_source)
                .map_err(|d| StoryLoadError::Invalid(Diagnostics(vec![d])))?;
            cast.insert(
                key.clone(),
                CastMember {
                    source: persona_source,
                    persona,
                },
            );
        }
        let mut bundle = StoryBundle::from_parts(source, story, cast, &Estimate)
            .map_err(StoryLoadError::Invalid)?;
        for w in &bundle.warnings {
            warn!("{w}");
        }
        if let Some(locale) = &self.locale {
            bundle = self.localize(bundle, locale, &shown, ctx).await?;
        }
        Ok(StoryAsset(Arc::new(bundle)))
    }

    fn extensions(&self) -> &[&str] {
        &["story.ron"]
    }
}
