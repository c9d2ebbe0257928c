//! What the tests of `deploy/` share: the files, the queries in the
//! dashboard and the alerts, the metric names those queries use and the
//! ones `src/metrics.rs` defines, and finding Prometheus's tools.

// Each test binary uses part of this module.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use serde_norway::Value as Yaml;

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `deploy/`.
pub fn deploy() -> PathBuf {
    repo().join("deploy")
}

/// The text of a file under `deploy/`.
pub fn read(relative: &str) -> String {
    let path = deploy().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Every YAML document in a file under `deploy/`, merge keys (`<<`) applied.
pub fn yaml_documents(relative: &str) -> Vec<Yaml> {
    let text = read(relative);
    parse_yaml(&text).unwrap_or_else(|error| panic!("deploy/{relative}: {error}"))
}

/// Parses every document of a YAML text, merge keys applied.
pub fn parse_yaml(text: &str) -> Result<Vec<Yaml>, serde_norway::Error> {
    use serde::Deserialize;

    serde_norway::Deserializer::from_str(text)
        .map(|document| {
            let mut value = Yaml::deserialize(document)?;
            value.apply_merge()?;
            Ok(value)
        })
        .collect()
}

/// The single YAML document of a file under `deploy/`.
pub fn yaml(relative: &str) -> Yaml {
    let mut documents = yaml_documents(relative);
    assert_eq!(documents.len(), 1, "deploy/{relative} holds one document");
    documents.remove(0)
}

/// The dashboard's path under `deploy/`.
pub const DASHBOARD: &str = "grafana/dashboards/card-issuer.json";

/// The dashboard.
pub fn dashboard() -> Json {
    serde_json::from_str(&read(DASHBOARD)).unwrap_or_else(|error| panic!("{DASHBOARD}: {error}"))
}

/// One query of a dashboard panel.
#[derive(Clone, Debug)]
pub struct PanelQuery {
    /// The panel's title.
    pub panel: String,
    /// The PromQL, with Grafana's variables as written.
    pub expr: String,
}

/// Every panel query of the dashboard, rows' nested panels included.
pub fn panel_queries(dashboard: &Json) -> Vec<PanelQuery> {
    let mut queries = Vec::new();
    collect_queries(&dashboard["panels"], &mut queries);
    queries
}

fn collect_queries(panels: &Json, queries: &mut Vec<PanelQuery>) {
    for panel in panels.as_array().into_iter().flatten() {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_else(|| {
                panic!("a query of panel {title:?} has no PromQL `expr`: {target}")
            });
            queries.push(PanelQuery {
                panel: title.to_owned(),
                expr: expr.to_owned(),
            });
        }
        collect_queries(&panel["panels"], queries);
    }
}

/// The queries of the dashboard's template variables.
pub fn variable_queries(dashboard: &Json) -> Vec<String> {
    let variables = dashboard["templating"]["list"].as_array().cloned();
    variables
        .into_iter()
        .flatten()
        .filter(|variable| variable["type"] == "query")
        .map(|variable| {
            let query = &variable["query"];
            query["query"]
                .as_str()
                .or(query.as_str())
                .expect("a query variable has a query")
                .to_owned()
        })
        .collect()
}

/// The PromQL inside a Grafana `label_values(metric, label)` query.
pub fn label_values_metric(query: &str) -> Option<String> {
    let inner = query.strip_prefix("label_values(")?.strip_suffix(')')?;
    let (metric, _label) = inner.rsplit_once(',')?;
    Some(metric.trim().to_owned())
}

/// One alerting rule of `deploy/prometheus/alerts.yml`.
#[derive(Clone, Debug)]
pub struct AlertRule {
    /// The alert's name.
    pub name: String,
    /// Its expression.
    pub expr: String,
    /// The rule as written.
    pub rule: Yaml,
}

/// Every alerting rule.
pub fn alert_rules() -> Vec<AlertRule> {
    let file = yaml("prometheus/alerts.yml");
    let groups = file["groups"].as_sequence().expect("alerts.yml has groups");
    let mut rules = Vec::new();
    for group in groups {
        for rule in group["rules"].as_sequence().expect("a group has rules") {
            let name = rule["alert"].as_str().expect("every rule is an alert");
            let expr = rule["expr"].as_str().expect("every rule has an expr");
            rules.push(AlertRule {
                name: name.to_owned(),
                expr: expr.to_owned(),
                rule: rule.clone(),
            });
        }
    }
    rules
}

/// The metric names `src/metrics.rs` defines.
#[derive(Debug)]
pub struct DefinedMetrics {
    /// Every name, as exported.
    pub names: BTreeSet<String>,
    /// Those that are histograms.
    pub histograms: BTreeSet<String>,
}

impl DefinedMetrics {
    /// The series names Prometheus stores for the defined metrics: a
    /// histogram's `_bucket`, `_sum` and `_count`, every other metric's own.
    pub fn series_names(&self) -> BTreeSet<String> {
        let mut series = BTreeSet::new();
        for name in &self.names {
            if self.histograms.contains(name) {
                for suffix in ["_bucket", "_sum", "_count"] {
                    series.insert(format!("{name}{suffix}"));
                }
            } else {
                series.insert(name.clone());
            }
        }
        series
    }

    /// The defined metric a series name belongs to.
    pub fn metric_of(&self, series: &str) -> Option<String> {
        if self.names.contains(series) && !self.histograms.contains(series) {
            return Some(series.to_owned());
        }
        ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| series.strip_suffix(suffix))
            .find(|name| self.histograms.contains(*name))
            .map(str::to_owned)
    }
}

/// Reads the metric names from `src/metrics.rs`, the single place they are
/// defined: every `pub const NAME: &str = "card_issuer_…";`, and which of
/// them `describe_histogram!` describes.
pub fn defined_metrics() -> DefinedMetrics {
    let path = repo().join("src/metrics.rs");
    let source = std::fs::read_to_string(&path).expect("src/metrics.rs is readable");
    let mut by_constant = Vec::new();
    for line in source.lines() {
        let Some(rest) = line.trim().strip_prefix("pub const ") else {
            continue;
        };
        let Some((constant, value)) = rest.split_once(": &str = ") else {
            continue;
        };
        let name = value.trim_end_matches(';').trim_matches('"');
        if name.starts_with("card_issuer_") {
            by_constant.push((constant.to_owned(), name.to_owned()));
        }
    }
    let histograms = source
        .split("describe_histogram!(")
        .skip(1)
        .filter_map(|rest| {
            let constant: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            by_constant
                .iter()
                .find(|(known, _)| *known == constant)
                .map(|(_, name)| name.clone())
        })
        .collect();
    let names: BTreeSet<String> = by_constant.into_iter().map(|(_, name)| name).collect();
    assert!(
        names.len() >= 10,
        "too few metrics found in {path:?}: {names:?}"
    );
    DefinedMetrics { names, histograms }
}

/// PromQL's words that are neither functions nor metric names.
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "Inf", "NaN",
];

/// Words followed by a list of label names in parentheses.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression selects. A small scanner, enough
/// for the queries written here: it drops strings, label matchers and
/// ranges, the label lists of `by (…)` and the like, function and
/// aggregation names (a word before `(` or `by`), keywords and numbers; what
/// is left are metric names.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = without_enclosed(expr).chars().collect();
    let mut names = BTreeSet::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        if c.is_ascii_digit() || c == '.' {
            while at < chars.len() && (chars[at].is_ascii_alphanumeric() || chars[at] == '.') {
                at += 1;
            }
            continue;
        }
        if !(c.is_ascii_alphabetic() || c == '_' || c == ':') {
            at += 1;
            continue;
        }
        let start = at;
        while at < chars.len() && (chars[at].is_ascii_alphanumeric() || "_:".contains(chars[at])) {
            at += 1;
        }
        let word: String = chars[start..at].iter().collect();
        let mut next = at;
        while next < chars.len() && chars[next].is_whitespace() {
            next += 1;
        }
        let opens = chars.get(next) == Some(&'(');
        // `sum by (le) (…)`: an aggregation with its grouping first.
        let rest: String = chars[next..].iter().take(8).collect();
        let aggregates = ["by", "without"].iter().any(|grouping| {
            rest.strip_prefix(grouping)
                .is_some_and(|after| after.starts_with([' ', '(']))
        });
        if LABEL_LISTS.contains(&word.as_str()) {
            if opens {
                at = after_closing(&chars, next);
            }
        } else if !opens && !aggregates && !KEYWORDS.contains(&word.as_str()) {
            names.insert(word);
        }
    }
    names
}

/// The expression without string literals, `{…}` and `[…]`.
fn without_enclosed(expr: &str) -> String {
    let mut kept = String::new();
    let mut quote = None;
    let mut escaped = false;
    let mut depth = 0usize;
    for c in expr.chars() {
        if let Some(open) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == open {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '{' | '[' => depth += 1,
            '}' | ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => kept.push(c),
            _ => {}
        }
    }
    kept
}

fn after_closing(chars: &[char], open: usize) -> usize {
    let mut depth = 0;
    for (index, c) in chars.iter().enumerate().skip(open) {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return index + 1;
                }
            }
            _ => {}
        }
    }
    chars.len()
}

/// The path of a program on the PATH, or a panic that says how to get it.
pub fn require_prometheus_tool(program: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| is_executable(candidate))
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{program}` is not installed: run scripts/ensure-prometheus (it installs \
             Debian's prometheus package), then run the tests again"
        )
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;

    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
