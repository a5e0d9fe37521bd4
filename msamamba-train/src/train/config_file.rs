//! Reading a run's config file (`config.json`, `pretrain --config`) strictly. burn's
//! `Config::load` ignores a key it does not know (a typo silently trains with the default) and
//! fails on any missing field with a serde message; this reader names an unknown key and the
//! file, fills a missing field that has a default and says which defaults it used, and refuses a
//! missing field without one with what to do. Hand-written because burn's derive gives no hook
//! for either (its serde struct has no `deny_unknown_fields` and no `default`s).
//!
//! Configs carry a `version` ([`CONFIG_VERSION`] for those this msamamba writes); a config
//! without one was written before versions were recorded.

use std::path::{Path, PathBuf};

use burn::config::Config;
use serde_json::{Map, Value};
use thiserror::Error;

/// The version of the configs this msamamba writes. Raise it when a field is renamed or its
/// meaning changes, and teach [`load_config`] to read the older form.
pub const CONFIG_VERSION: u32 = 1;

/// A config saved with a run, read back by [`load_config`].
pub trait SavedConfig: Config {
    /// What it configures, for messages: `pre-training`, `fine-tuning`.
    const KIND: &'static str;
    /// The top-level key only this kind of config has (`model`, `classifier`).
    const KEY: &'static str;
    /// The top-level key only the other kind of config has.
    const OTHER_KEY: &'static str;
    /// The command that writes it, for messages: `msamamba pretrain`.
    const COMMAND: &'static str;
    /// Dotted keys without a default: a config lacking one is refused.
    const REQUIRED: &'static [&'static str];
    /// The config with every default; a required field holds any value of its type (never used
    /// but for its keys).
    fn reference() -> Self;
}

/// Why a config file cannot be read.
#[derive(Debug, Error)]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not JSON, or not an object.
    #[error("{}: not a JSON config: {reason}", path.display())]
    NotJson {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A config of the other kind (a fine-tuning run's given where a pre-training one is read).
    #[error("{}: not a {kind} config (it has `{found}`, not `{key}`)", path.display())]
    OtherKind {
        /// The file.
        path: PathBuf,
        /// The kind expected.
        kind: &'static str,
        /// The key that kind has.
        key: &'static str,
        /// The key only the other kind has.
        found: &'static str,
    },
    /// A key the config does not have.
    #[error("{}: unknown key `{key}`{hint}; remove it or correct its name", path.display())]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key, dotted (`model.d_modle`).
        key: String,
        /// ` (did you mean `x`?)`, or nothing.
        hint: String,
    },
    /// A version this msamamba cannot read.
    #[error(
        "{}: config version {found}, but this msamamba reads version {CONFIG_VERSION} and older: use the msamamba that wrote it",
        path.display()
    )]
    Newer {
        /// The file.
        path: PathBuf,
        /// The version found, as written.
        found: String,
    },
    /// A field without a default is missing.
    #[error(
        "{}: field `{key}` is missing and has no default (a config from an older msamamba, or edited?): add it, or run `{command}` again to write a complete config",
        path.display()
    )]
    Missing {
        /// The file.
        path: PathBuf,
        /// The key, dotted.
        key: String,
        /// The command that writes such configs.
        command: &'static str,
    },
    /// A value of the wrong type.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// serde's words.
        reason: String,
    },
}

/// A config read, and the fields that took their defaults (`key = value`).
#[derive(Debug)]
pub struct Loaded<C> {
    /// The config, missing fields filled with their defaults.
    pub config: C,
    /// The fields the file lacked, each with the default used, `model.bidirectional = false`.
    pub defaults: Vec<String>,
    /// Whether the file has no `version` (written before versions were recorded).
    pub unversioned: bool,
}

/// Reads the config at `path`; a note on stderr names the defaults used for fields it lacks.
pub fn load_config<C: SavedConfig>(path: &Path) -> Result<C, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let loaded = parse_config::<C>(&text, path)?;
    if !loaded.defaults.is_empty() {
        let written = if loaded.unversioned {
            " (it has no `version`: written by an older msamamba, or by hand)"
        } else {
            ""
        };
        tracing::warn!(
            "{}{written}: {} missing, the defaults used: {}",
            path.display(),
            if loaded.defaults.len() == 1 {
                "1 field is"
            } else {
                "some fields are"
            },
            loaded.defaults.join(", ")
        );
    }
    Ok(loaded.config)
}

/// Parses `text`, the config file `path` (for messages).
pub fn parse_config<C: SavedConfig>(text: &str, path: &Path) -> Result<Loaded<C>, ConfigFileError> {
    let path_buf = || path.to_path_buf();
    let value: Value = serde_json::from_str(text).map_err(|e| ConfigFileError::NotJson {
        path: path_buf(),
        reason: e.to_string(),
    })?;
    let Value::Object(mut object) = value else {
        return Err(ConfigFileError::NotJson {
            path: path_buf(),
            reason: "not an object".into(),
        });
    };
    let unversioned = match object.get("version") {
        None => true,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|v| v <= u64::from(CONFIG_VERSION)) => false,
        Some(Value::Number(n)) if n.as_u64().is_some() => {
            return Err(ConfigFileError::Newer {
                path: path_buf(),
                found: n.to_string(),
            });
        }
        Some(found) => {
            return Err(ConfigFileError::Invalid {
                path: path_buf(),
                reason: format!("`version` must be a whole number, got {found}"),
            });
        }
    };
    // A burn config serialises to an object: anything else leaves nothing to check against.
    let reference = match serde_json::to_value(C::reference()) {
        Ok(Value::Object(reference)) => reference,
        _ => Map::new(),
    };
    if !object.contains_key(C::KEY) && object.contains_key(C::OTHER_KEY) {
        return Err(ConfigFileError::OtherKind {
            path: path_buf(),
            kind: C::KIND,
            key: C::KEY,
            found: C::OTHER_KEY,
        });
    }
    let mut defaults = Vec::new();
    fill(&mut object, &reference, "", C::REQUIRED, &mut defaults).map_err(|missing| match missing {
        Problem::Unknown { key, hint } => ConfigFileError::UnknownKey {
            path: path_buf(),
            key,
            hint,
        },
        Problem::Missing(key) => ConfigFileError::Missing {
            path: path_buf(),
            key,
            command: C::COMMAND,
        },
    })?;
    // The version is the file's age, not a setting: read, it is this version's config.
    defaults.retain(|field| !field.starts_with("version ="));
    object.insert("version".into(), Value::from(CONFIG_VERSION));
    let config = serde_json::from_value(Value::Object(object)).map_err(|e| ConfigFileError::Invalid {
        path: path_buf(),
        reason: e.to_string(),
    })?;
    Ok(Loaded {
        config,
        defaults,
        unversioned,
    })
}

/// What [`fill`] found wrong.
enum Problem {
    Unknown { key: String, hint: String },
    Missing(String),
}

/// Checks `object` (under the dotted `prefix`) against `reference`: a key the reference lacks is
/// an error; a key it lacks is filled from the reference, recorded in `defaults`, unless
/// `required`. Objects are compared inside; a field whose default is `null` (an `Option`) may
/// hold anything.
fn fill(
    object: &mut Map<String, Value>,
    reference: &Map<String, Value>,
    prefix: &str,
    required: &[&str],
    defaults: &mut Vec<String>,
) -> Result<(), Problem> {
    for (key, value) in object.iter_mut() {
        let dotted = format!("{prefix}{key}");
        match (reference.get(key), value) {
            (None, _) => {
                let hint = closest(key, reference.keys())
                    .map(|k| format!(" (did you mean `{prefix}{k}`?)"))
                    .unwrap_or_default();
                return Err(Problem::Unknown { key: dotted, hint });
            }
            (Some(Value::Object(inner)), Value::Object(value)) => {
                fill(value, inner, &format!("{dotted}."), required, defaults)?
            }
            _ => {}
        }
    }
    for (key, default) in reference {
        if object.contains_key(key) {
            continue;
        }
        let dotted = format!("{prefix}{key}");
        if required.contains(&dotted.as_str()) {
            return Err(Problem::Missing(dotted));
        }
        // A missing object holds its required fields too.
        if let Some(inner) = required.iter().find(|r| r.starts_with(&format!("{dotted}."))) {
            return Err(Problem::Missing(inner.to_string()));
        }
        let shown = match default {
            Value::Object(_) => "all defaults".to_string(),
            other => other.to_string(),
        };
        defaults.push(format!("{dotted} = {shown}"));
        object.insert(key.clone(), default.clone());
    }
    Ok(())
}

/// The key of `known` nearest to `key`, when it is a likely typo of it (at most 2 edits).
fn closest<'a>(key: &str, known: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    known
        .map(|k| (edits(key, k), k))
        .filter(|&(d, _)| d <= 2)
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, for [`closest`].
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::finetune::FinetuneConfig;
    use crate::train::pretrain::PretrainConfig;

    fn parse<C: SavedConfig>(text: &str) -> Result<Loaded<C>, ConfigFileError> {
        parse_config::<C>(text, Path::new("run/config.json"))
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it_and_the_file() {
        let err = parse::<PretrainConfig>("{\"version\": 1, \"lr\": 0.001, \"stepz\": 10}").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("run/config.json: unknown key `stepz`"), "{text}");
        assert!(text.contains("did you mean `steps`?"), "{text}");
        let err = parse::<PretrainConfig>("{\"model\": {\"d_modle\": 16}}").unwrap_err();
        assert!(err.to_string().contains("unknown key `model.d_modle`"), "{err}");
    }

    #[test]
    fn a_config_without_version_loads_with_the_defaults_it_lacks_named() {
        let written = burn::config::config_to_json(&PretrainConfig::new().with_steps(7));
        let mut old: Value = serde_json::from_str(&written).unwrap();
        let object = old.as_object_mut().unwrap();
        object.remove("version");
        object.remove("rows");
        object["model"].as_object_mut().unwrap().remove("bidirectional");
        let loaded = parse::<PretrainConfig>(&old.to_string()).unwrap();
        assert!(loaded.unversioned);
        assert_eq!(loaded.config.steps, 7);
        assert_eq!(loaded.config.version, CONFIG_VERSION);
        let mut defaults = loaded.defaults;
        defaults.sort();
        assert_eq!(defaults, ["model.bidirectional = false", "rows = []"]);
    }

    #[test]
    fn a_config_this_version_writes_reads_back_with_no_defaults_used() {
        let config = PretrainConfig::new().with_steps(7);
        let loaded = parse::<PretrainConfig>(&burn::config::config_to_json(&config)).unwrap();
        assert!(!loaded.unversioned && loaded.defaults.is_empty());
        assert_eq!(
            burn::config::config_to_json(&loaded.config),
            burn::config::config_to_json(&config)
        );
    }

    #[test]
    fn a_missing_field_without_default_is_refused_naming_it() {
        let written = burn::config::config_to_json(&FinetuneConfig::reference());
        let mut old: Value = serde_json::from_str(&written).unwrap();
        old.as_object_mut().unwrap().remove("labels");
        let err = parse::<FinetuneConfig>(&old.to_string()).unwrap_err().to_string();
        assert!(err.contains("field `labels` is missing"), "{err}");
        assert!(err.contains("msamamba finetune"), "{err}");
    }

    #[test]
    fn a_newer_version_and_the_other_kind_of_config_are_refused() {
        let err = parse::<PretrainConfig>("{\"version\": 99}").unwrap_err();
        assert!(err.to_string().contains("config version 99"), "{err}");
        let err = parse::<PretrainConfig>("{\"version\": \"one\"}").unwrap_err();
        assert!(err.to_string().contains("`version` must be a whole number"), "{err}");
        let finetune = burn::config::config_to_json(&FinetuneConfig::reference());
        let err = parse::<PretrainConfig>(&finetune).unwrap_err();
        assert!(err.to_string().contains("not a pre-training config"), "{err}");
    }
}
