//! The walk over the TOML table: typed getters that record every problem with
//! its key path and go on, so that one run reports them all.
//!
//! Before the walk, [`Reader::substitute_env`] replaces every string value
//! that is exactly `"${NAME}"` with the environment variable `NAME`, in every
//! table and array, so that secrets (the PostgreSQL password, hashes) need not
//! sit in the file. It is the one place the environment enters the
//! configuration.
//!
//! A section reads its keys through [`Keys`], which knows the table's path, so
//! a getter names only the key: `keys.duration("window", 900)`. A wrong type or
//! a value out of range is an error at that key and gives the default, so the
//! walk continues and finds the next problem too.

use std::collections::BTreeMap;
use std::env::VarError;
use std::path::{Path, PathBuf};

use oauth_core::Scope;
use time::Duration;
use toml::{Table, Value};

use super::{ConfigError, KeyPath, Section};

/// Collects the problems of one configuration and resolves its relative paths.
#[derive(Debug)]
pub(super) struct Reader {
    dir: PathBuf,
    pub(super) errors: Vec<ConfigError>,
    pub(super) warnings: Vec<ConfigError>,
}

impl Reader {
    /// A reader for a file in `dir`.
    pub(super) fn new(dir: &Path) -> Self {
        Reader { dir: dir.to_owned(), errors: Vec::new(), warnings: Vec::new() }
    }

    /// Replaces every string value of `root` (in nested tables and arrays
    /// too) that is exactly `"${NAME}"` with the value `env` gives for `NAME`.
    /// An unset or non-UTF-8 variable, a bad name, and a `${` anywhere else
    /// in a value are errors at the value's key path; the value is left as it
    /// was, and the walk goes on.
    pub(super) fn substitute_env(&mut self, root: &mut Table, env: &dyn Fn(&str) -> Result<String, VarError>) {
        for (key, value) in root.iter_mut() {
            self.substitute_value(value, KeyPath::root().key(key), env);
        }
    }

    fn substitute_value(&mut self, value: &mut Value, at: KeyPath, env: &dyn Fn(&str) -> Result<String, VarError>) {
        match value {
            Value::String(s) => {
                if let Some(replaced) = self.env_value(s, &at, env) {
                    *s = replaced;
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.substitute_value(item, at.index(i), env);
                }
            }
            Value::Table(t) => {
                for (key, item) in t.iter_mut() {
                    self.substitute_value(item, at.key(key), env);
                }
            }
            _ => {}
        }
    }

    /// The replacement of one string value, if it names a variable.
    fn env_value(&mut self, raw: &str, at: &KeyPath, env: &dyn Fn(&str) -> Result<String, VarError>) -> Option<String> {
        if !raw.contains("${") {
            return None;
        }
        let Some(name) = raw.strip_prefix("${").and_then(|r| r.strip_suffix('}')) else {
            // Only whole values are replaced: a variable spliced into a URL
            // would need escaping the file cannot express.
            self.errors.push(ConfigError::new(
                at.clone(),
                "holds \"${\" inside a longer value; only a whole value \"${NAME}\" is read from the \
                 environment (put the whole value in the variable)",
            ));
            return None;
        };
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            self.errors.push(ConfigError::new(
                at.clone(),
                format!(
                    "\"${{{name}}}\" is not an environment variable name (letters, digits and _, not starting \
                     with a digit)"
                ),
            ));
            return None;
        }
        match env(name) {
            Ok(v) => Some(v),
            Err(VarError::NotPresent) => {
                self.errors.push(ConfigError::new(at.clone(), format!("the environment variable {name} is not set")));
                None
            }
            Err(VarError::NotUnicode(_)) => {
                self.errors.push(ConfigError::new(at.clone(), format!("the environment variable {name} is not UTF-8")));
                None
            }
        }
    }

    /// The keys of `table` at `path`, every key not in `schema` reported as
    /// unknown.
    pub(super) fn keys<'r, 'a>(&'r mut self, table: &'a Table, path: KeyPath, schema: &[&str]) -> Keys<'r, 'a> {
        for key in table.keys() {
            if !schema.contains(&key.as_str()) {
                self.errors.push(ConfigError::new(path.key(key), "unknown key"));
            }
        }
        Keys { reader: self, table, path }
    }

    /// Reads section `S` from its table of `root`; an absent table reads as
    /// empty, so every key takes its default.
    pub(super) fn section<S: Section>(&mut self, root: &Table) -> Option<S> {
        let empty = Table::new();
        let table = self.table(root, S::TABLE).unwrap_or(&empty);
        S::read(&mut self.keys(table, KeyPath::root().key(S::TABLE), S::KEYS))
    }

    /// Reads section `S` only when its table is present.
    pub(super) fn optional_section<S: Section>(&mut self, root: &Table) -> Option<S> {
        let table = self.table(root, S::TABLE)?;
        S::read(&mut self.keys(table, KeyPath::root().key(S::TABLE), S::KEYS))
    }

    /// The tables of the array of tables `key` of `root`, each with its path
    /// (`clients[1]`); read each through [`Reader::keys`].
    pub(super) fn array_of_tables<'a>(&mut self, root: &'a Table, key: &str) -> Vec<(&'a Table, KeyPath)> {
        let mut out = Vec::new();
        let list = Keys { reader: self, table: root, path: KeyPath::root() }
            .value(key, "an array of tables", Value::is_array)
            .and_then(Value::as_array);
        let Some(list) = list else {
            return out;
        };
        for (i, entry) in list.iter().enumerate() {
            let path = KeyPath::root().key(key).index(i);
            match entry.as_table() {
                Some(t) => out.push((t, path)),
                None => self.errors.push(ConfigError::new(path, "must be a table")),
            }
        }
        out
    }

    fn table<'a>(&mut self, root: &'a Table, key: &str) -> Option<&'a Table> {
        Keys { reader: self, table: root, path: KeyPath::root() }.value(key, "a table", Value::is_table)?.as_table()
    }

    fn file(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() { p.to_owned() } else { self.dir.join(p) }
    }
}

/// One table being read: its path, and the reader that collects problems.
#[derive(Debug)]
pub(super) struct Keys<'r, 'a> {
    reader: &'r mut Reader,
    table: &'a Table,
    path: KeyPath,
}

impl<'a> Keys<'_, 'a> {
    /// The path of `key` in this table.
    pub(super) fn path(&self, key: &str) -> KeyPath {
        self.path.key(key)
    }

    /// The path of this table itself.
    pub(super) fn here(&self) -> KeyPath {
        self.path.clone()
    }

    /// Records an error at `at`.
    pub(super) fn error(&mut self, at: KeyPath, message: impl Into<String>) {
        self.reader.errors.push(ConfigError::new(at, message));
    }

    /// Records a warning at `at`.
    pub(super) fn warn(&mut self, at: KeyPath, message: impl Into<String>) {
        self.reader.warnings.push(ConfigError::new(at, message));
    }

    fn value(&mut self, key: &str, want: &str, ok: fn(&Value) -> bool) -> Option<&'a Value> {
        let table = self.table;
        let v = table.get(key)?;
        if ok(v) {
            Some(v)
        } else {
            let at = self.path(key);
            self.error(at, format!("must be {want}, not {}", v.type_str()));
            None
        }
    }

    /// Whether the table has `key` at all.
    pub(super) fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// A string.
    pub(super) fn string(&mut self, key: &str) -> Option<String> {
        self.value(key, "a string", Value::is_str).and_then(Value::as_str).map(str::to_owned)
    }

    /// A string that must be there.
    pub(super) fn required_string(&mut self, key: &str) -> Option<String> {
        let s = self.string(key);
        if s.is_none() {
            let at = self.path(key);
            self.error(at, "is required");
        }
        s
    }

    /// A boolean.
    pub(super) fn boolean(&mut self, key: &str, default: bool) -> bool {
        self.value(key, "a boolean", Value::is_bool).and_then(Value::as_bool).unwrap_or(default)
    }

    /// An integer from `min` to `max`.
    pub(super) fn int(&mut self, key: &str, default: i64, min: i64, max: i64) -> i64 {
        let Some(v) = self.value(key, "an integer", Value::is_integer).and_then(Value::as_integer) else {
            return default;
        };
        if v < min || v > max {
            let range = if max == i64::MAX { format!("at least {min}") } else { format!("from {min} to {max}") };
            let at = self.path(key);
            self.error(at, format!("must be {range}, not {v}"));
            return default;
        }
        v
    }

    /// A count from `min` to `max` that fits a `u32`.
    pub(super) fn count(&mut self, key: &str, default: u32, min: u32, max: u32) -> u32 {
        // Bounded by `max`, so the conversion cannot fail.
        u32::try_from(self.int(key, default.into(), min.into(), max.into())).unwrap_or(default)
    }

    /// A size from `min` to `max` that fits a `usize`.
    pub(super) fn size(&mut self, key: &str, default: usize, min: usize, max: usize) -> usize {
        let wide = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        usize::try_from(self.int(key, wide(default), wide(min), wide(max))).unwrap_or(default)
    }

    /// A duration written as whole seconds, at least 1.
    pub(super) fn duration(&mut self, key: &str, default_secs: i64) -> Duration {
        Duration::seconds(self.int(key, default_secs, 1, i64::MAX))
    }

    /// A duration written as whole seconds, from `min` to `max`.
    pub(super) fn duration_within(&mut self, key: &str, default_secs: i64, min: i64, max: i64) -> Duration {
        Duration::seconds(self.int(key, default_secs, min, max))
    }

    /// An array of strings.
    pub(super) fn strings(&mut self, key: &str) -> Option<Vec<String>> {
        let path = self.path(key);
        let v = self.value(key, "an array of strings", Value::is_array)?.as_array()?;
        let mut out = Vec::new();
        for (i, item) in v.iter().enumerate() {
            match item.as_str() {
                Some(s) => out.push(s.to_owned()),
                None => self.error(path.index(i), "must be a string"),
            }
        }
        Some(out)
    }

    /// An array of scope tokens, each once (missing: the empty scope).
    pub(super) fn scope(&mut self, key: &str) -> Option<Scope> {
        let tokens = self.strings(key).unwrap_or_default();
        let scope = Scope::from_tokens(&tokens);
        if scope.is_err() {
            let at = self.path(key);
            self.error(at, "must be scope tokens, each once");
        }
        scope.ok()
    }

    /// A table of strings.
    pub(super) fn string_map(&mut self, key: &str) -> BTreeMap<String, String> {
        let path = self.path(key);
        let mut out = BTreeMap::new();
        let Some(m) = self.value(key, "a table", Value::is_table).and_then(Value::as_table) else {
            return out;
        };
        for (k, v) in m {
            match v.as_str() {
                Some(s) => {
                    out.insert(k.clone(), s.to_owned());
                }
                None => self.error(path.key(k), "must be a string"),
            }
        }
        out
    }

    /// `[scope_descriptions]`: English words as string values, and Dutch
    /// ones in its `nl` table (`[scope_descriptions.nl]`).
    pub(super) fn scope_descriptions(&mut self, key: &str) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let path = self.path(key);
        let (mut en, mut nl) = (BTreeMap::new(), BTreeMap::new());
        let Some(m) = self.value(key, "a table", Value::is_table).and_then(Value::as_table) else {
            return (en, nl);
        };
        for (k, v) in m {
            match (k.as_str(), v) {
                ("nl", Value::Table(dutch)) => {
                    for (scope, words) in dutch {
                        match words.as_str() {
                            Some(s) => {
                                nl.insert(scope.clone(), s.to_owned());
                            }
                            None => self.error(path.key("nl").key(scope), "must be a string"),
                        }
                    }
                }
                (_, Value::String(s)) => {
                    en.insert(k.clone(), s.clone());
                }
                (_, Value::Table(_)) => self.error(path.key(k), "the only table of translations is nl"),
                _ => self.error(path.key(k), "must be a string"),
            }
        }
        (en, nl)
    }

    /// A file path, resolved against the configuration file's folder.
    pub(super) fn file(&mut self, key: &str) -> Option<PathBuf> {
        self.string(key).map(|p| self.resolve(&p))
    }

    /// `p` resolved against the configuration file's folder.
    pub(super) fn resolve(&self, p: &str) -> PathBuf {
        self.reader.file(p)
    }
}
