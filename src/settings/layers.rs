//! Where a setting's value comes from: a flag, the `--config` file, the
//! environment, or its default, in that order of precedence.
//!
//! clap reads flags, environment variables and defaults; it also says which
//! of them a value came from, so the file can be slotted in between a flag
//! and the environment without declaring every setting twice.

use std::path::Path;
use std::time::Duration;

use clap::ArgMatches;
use clap::parser::ValueSource;

use super::SettingsError;
use crate::secret::Secret;

/// The sources of settings for one run of a subcommand.
pub struct Layers<'a> {
    matches: &'a ArgMatches,
    file: toml::Table,
}

impl<'a> Layers<'a> {
    /// Reads the `--config` file, if one was given, next to the parsed flags.
    ///
    /// `known` lists every setting id the subcommand accepts, so that a
    /// misspelt key in the file is an error rather than silently ignored.
    pub fn new(
        matches: &'a ArgMatches,
        config: Option<&Path>,
        known: &[&str],
    ) -> Result<Self, SettingsError> {
        let file = match config {
            Some(path) => read_file(path, known)?,
            None => toml::Table::new(),
        };
        Ok(Self { matches, file })
    }

    /// The winning text of a setting, or `None` when no layer sets it.
    pub fn text(&self, id: &str) -> Option<String> {
        let from_flag = self.matches.value_source(id) == Some(ValueSource::CommandLine);
        if !from_flag && let Some(value) = self.file.get(id) {
            return Some(toml_text(value));
        }
        self.matches
            .try_get_one::<String>(id)
            .ok()
            .flatten()
            .cloned()
    }

    /// A setting that must be present (it has a default).
    pub fn required(&self, id: &str) -> Result<String, SettingsError> {
        self.text(id).ok_or_else(|| SettingsError::Missing {
            setting: display_name(id),
        })
    }

    /// A setting parsed with `FromStr`.
    pub fn parsed<T>(&self, id: &str) -> Result<T, SettingsError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let text = self.required(id)?;
        text.trim()
            .parse()
            .map_err(|error: T::Err| SettingsError::Invalid {
                setting: display_name(id),
                why: error.to_string(),
            })
    }

    /// A duration written as people write them: `500ms`, `5s`, `2m`, `24h`.
    pub fn duration(&self, id: &str) -> Result<Duration, SettingsError> {
        parse_duration(id, &self.required(id)?)
    }

    /// A comma-separated list of durations; at least one.
    pub fn durations(&self, id: &str) -> Result<Vec<Duration>, SettingsError> {
        let text = self.required(id)?;
        let list = text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| parse_duration(id, part))
            .collect::<Result<Vec<_>, _>>()?;
        if list.is_empty() {
            return Err(SettingsError::Invalid {
                setting: display_name(id),
                why: "needs at least one duration".into(),
            });
        }
        Ok(list)
    }

    /// A secret given directly or, through `<id>_file`, as the contents of a
    /// file (the way container platforms mount secrets). The file wins.
    pub fn secret(&self, id: &str) -> Result<Option<Secret<String>>, SettingsError> {
        let file_id = format!("{id}_file");
        if let Some(path) = self.text(&file_id) {
            let contents =
                std::fs::read_to_string(&path).map_err(|source| SettingsError::SecretFile {
                    setting: display_name(&file_id),
                    path,
                    source,
                })?;
            // Files written by editors and `echo` end in a line break that is
            // not part of the secret.
            let value = contents.trim_end_matches(['\r', '\n']).to_owned();
            return Ok(Some(Secret::new(value)));
        }
        Ok(self.text(id).map(Secret::new))
    }
}

/// The environment variable behind a setting id, which is how users know it.
pub fn display_name(id: &str) -> String {
    format!(
        "CARD_ISSUER_{} (--{})",
        id.to_uppercase(),
        id.replace('_', "-")
    )
}

fn parse_duration(id: &str, text: &str) -> Result<Duration, SettingsError> {
    humantime::parse_duration(text.trim()).map_err(|error| SettingsError::Invalid {
        setting: display_name(id),
        why: format!("`{text}` is not a duration like 500ms, 5s, 2m or 24h ({error})"),
    })
}

fn read_file(path: &Path, known: &[&str]) -> Result<toml::Table, SettingsError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::ConfigFile {
        path: shown.clone(),
        source,
    })?;
    let table: toml::Table =
        text.parse()
            .map_err(|error: toml::de::Error| SettingsError::ConfigSyntax {
                path: shown.clone(),
                why: error.message().to_owned(),
            })?;
    if let Some(unknown) = table.keys().find(|key| !known.contains(&key.as_str())) {
        return Err(SettingsError::UnknownKey {
            path: shown,
            key: unknown.clone(),
        });
    }
    Ok(table)
}

fn toml_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(text) => text.clone(),
        toml::Value::Array(items) => items.iter().map(toml_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}
