//! The files in `deploy/` parse and say what they must: the dashboard and
//! the alerts name only metrics that `src/metrics.rs` defines, promtool
//! accepts the rules and passes their unit tests, and the Kubernetes and
//! compose files probe the right endpoints, outlast the shutdown grace, take
//! secrets from secrets and run as non-root.
//!
//! promtool comes from Debian's prometheus package (scripts/ensure-prometheus).

mod deploy_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use card_issuer::settings::Settings;
use serde_norway::Value as Yaml;

use deploy_support::{
    DASHBOARD, alert_rules, dashboard, defined_metrics, deploy, label_values_metric, metric_names,
    panel_queries, parse_yaml, read, require_prometheus_tool, variable_queries, yaml,
    yaml_documents,
};

/// Where the worker serves /metrics, /healthz and /readyz by default.
const METRICS_PORT: i64 = 9464;

// ---- every file parses

#[test]
fn every_yaml_and_json_file_in_deploy_parses() {
    let mut failures = Vec::new();
    let mut parsed = 0;
    for path in files_under(&deploy()) {
        let text = std::fs::read_to_string(&path).unwrap();
        let result = match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => parse_yaml(&text).map(|_| ()).map_err(|e| e.to_string()),
            Some("json") => serde_json::from_str::<serde_json::Value>(&text)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            _ => continue,
        };
        parsed += 1;
        if let Err(error) = result {
            failures.push(format!("{}: {error}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "unparsable files:\n{}",
        failures.join("\n")
    );
    assert!(
        parsed >= 10,
        "only {parsed} YAML and JSON files found in deploy/"
    );
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

// ---- the metric names

#[test]
fn the_name_scanner_finds_metrics_and_skips_functions_labels_and_numbers() {
    let cases = [
        (
            r#"histogram_quantile(0.95, sum by (le, endpoint) (rate(a_bucket{x=~"$i"}[$__rate_interval])))"#,
            vec!["a_bucket"],
        ),
        (
            "sum(rate(a[5m])) / sum(rate(b[5m])) > 0.25 and sum(increase(c[15m])) >= 20",
            vec!["a", "b", "c"],
        ),
        ("(sum(d) or vector(0)) + e offset 5m", vec!["d", "e"]),
        ("x unless on () sum(y) * 60 > 3e2", vec!["x", "y"]),
        (r#"absent(up{job="card-issuer"})"#, vec!["up"]),
    ];
    for (expr, expected) in cases {
        let names: Vec<String> = metric_names(expr).into_iter().collect();
        assert_eq!(names, expected, "{expr}");
    }
}

#[test]
fn the_dashboard_uses_only_metrics_that_src_metrics_defines_or_rabbitmq_exports() {
    let defined = defined_metrics();
    let series = defined.series_names();
    let dashboard = dashboard();
    let mut wrong = Vec::new();

    let variable_metrics = variable_queries(&dashboard)
        .into_iter()
        .map(|query| label_values_metric(&query).unwrap_or(query));
    let queries = panel_queries(&dashboard)
        .into_iter()
        .map(|query| (query.panel, query.expr))
        .chain(variable_metrics.map(|expr| ("(a template variable)".to_owned(), expr)));
    for (panel, expr) in queries {
        let names = metric_names(&expr);
        if names.is_empty() {
            wrong.push(format!("{panel:?} selects no metric: {expr}"));
        }
        for name in names {
            let known = series.contains(&name) || name.starts_with("rabbitmq_");
            if !known {
                wrong.push(format!(
                    "{panel:?} uses {name}, which src/metrics.rs does not define"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{DASHBOARD}:\n{}", wrong.join("\n"));
}

#[test]
fn every_metric_that_src_metrics_defines_is_on_the_dashboard() {
    let defined = defined_metrics();
    let on_dashboard: BTreeSet<String> = panel_queries(&dashboard())
        .iter()
        .flat_map(|query| metric_names(&query.expr))
        .filter_map(|name| defined.metric_of(&name))
        .collect();

    let missing: Vec<&String> = defined.names.difference(&on_dashboard).collect();

    assert!(
        missing.is_empty(),
        "metrics with no panel in {DASHBOARD}: {missing:?}"
    );
}

#[test]
fn the_dashboard_shows_the_queues_from_the_rabbitmq_plugin() {
    let exprs: Vec<String> = panel_queries(&dashboard())
        .into_iter()
        .map(|query| query.expr)
        .collect();
    for metric in [
        "rabbitmq_queue_messages_ready",
        "rabbitmq_queue_messages_unacked",
    ] {
        assert!(
            exprs.iter().any(|expr| metric_names(expr).contains(metric)),
            "no panel shows {metric}"
        );
    }
    let queues = exprs
        .iter()
        .filter(|expr| expr.contains("rabbitmq_"))
        .map(String::as_str)
        .collect::<String>();
    for queue in ["open-card", "status-check", "dead-letter", "delay"] {
        assert!(queues.contains(queue), "no queue panel selects {queue}");
    }
}

#[test]
fn every_panel_has_a_query_an_id_of_its_own_and_fits_the_grid() {
    let dashboard = dashboard();
    let mut ids = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().unwrap_or_default();
        let id = panel["id"].as_i64().expect("every panel has an id");
        assert!(ids.insert(id), "panel id {id} is used twice");
        let grid = &panel["gridPos"];
        let right = grid["x"].as_i64().unwrap() + grid["w"].as_i64().unwrap();
        assert!(right <= 24, "{title:?} reaches past the grid's 24 columns");
        if panel["type"] != "row" {
            let targets = panel["targets"].as_array().map_or(0, Vec::len);
            assert!(targets > 0, "{title:?} has no query");
        }
    }
    assert_eq!(dashboard["uid"], "card-issuer");
}

// ---- Grafana provisioning

#[test]
fn grafana_provisions_a_prometheus_datasource_and_the_dashboard_folder() {
    let datasources = yaml("grafana/provisioning/datasources/prometheus.yaml");
    let first = &datasources["datasources"][0];
    assert_eq!(datasources["apiVersion"].as_i64(), Some(1));
    assert_eq!(first["type"].as_str(), Some("prometheus"));

    let providers = yaml("grafana/provisioning/dashboards/card-issuer.yaml");
    let provider = &providers["providers"][0];
    assert_eq!(provider["type"].as_str(), Some("file"));
    let path = provider["options"]["path"]
        .as_str()
        .expect("a provider path");

    // compose.yaml mounts the dashboards where the provider looks.
    let compose = yaml("compose.yaml");
    let mounts = strings(&compose["services"]["grafana"]["volumes"]);
    assert!(
        mounts
            .iter()
            .any(|mount| mount.starts_with("./grafana/dashboards:") && mount.contains(path)),
        "compose.yaml does not mount ./grafana/dashboards at {path}: {mounts:?}"
    );
}

// ---- Prometheus: scrape configuration, rules and their unit tests

#[test]
fn prometheus_scrapes_the_worker_and_the_rabbitmq_plugin() {
    let config = yaml("prometheus/prometheus.yml");
    let jobs: BTreeMap<String, &Yaml> = config["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs")
        .iter()
        .map(|job| (job["job_name"].as_str().unwrap().to_owned(), job))
        .collect();

    let worker = jobs.get("card-issuer").expect("a job named card-issuer");
    let worker_text = serde_norway::to_string(worker).unwrap();
    assert!(
        worker_text.contains("9464"),
        "card-issuer job: {worker_text}"
    );

    let rabbitmq = jobs.get("rabbitmq").expect("a job named rabbitmq");
    let rabbitmq_text = serde_norway::to_string(rabbitmq).unwrap();
    assert!(
        rabbitmq_text.contains(":15692"),
        "rabbitmq job: {rabbitmq_text}"
    );
    assert_eq!(
        rabbitmq["metrics_path"].as_str(),
        Some("/metrics/per-object")
    );

    assert_eq!(strings(&config["rule_files"]), ["alerts.yml"]);
    assert!(!read("prometheus/prometheus.yml").contains("9090"));
}

#[test]
fn every_alert_has_a_severity_a_summary_a_description_and_a_runbook() {
    let rules = alert_rules();
    assert!(rules.len() >= 8, "only {} alerts", rules.len());
    for alert in rules {
        let severity = alert.rule["labels"]["severity"].as_str();
        assert!(
            matches!(severity, Some("critical" | "warning")),
            "{}: severity {severity:?}",
            alert.name
        );
        for annotation in ["summary", "description", "runbook"] {
            let text = alert.rule["annotations"][annotation].as_str().unwrap_or("");
            assert!(
                text.trim().len() > 10,
                "{} has no {annotation} worth reading",
                alert.name
            );
        }
    }
}

#[test]
fn the_alerts_use_only_metrics_that_exist() {
    let series = defined_metrics().series_names();
    for alert in alert_rules() {
        for name in metric_names(&alert.expr) {
            let known = series.contains(&name) || name.starts_with("rabbitmq_") || name == "up";
            assert!(known, "{} uses {name}, which nothing exports", alert.name);
        }
    }
}

#[test]
fn the_alerts_cover_what_operators_need_to_hear_about() {
    let exprs: String = alert_rules().into_iter().map(|alert| alert.expr).collect();
    for needle in [
        "card_issuer_outcomes_total{outcome=\"failed\"}",
        "1007|1009",
        "http_5xx",
        "timeout",
        "card_issuer_partner_auth_failures_total",
        "dead-letter",
        "card_issuer_dead_lettered_total",
        "rabbitmq_queue_messages_ready",
        "deadline_exceeded",
        "card_issuer_broker_ready",
        "up{job=\"card-issuer\"}",
        "card_issuer_publish_failures_total",
    ] {
        assert!(exprs.contains(needle), "no alert looks at {needle}");
    }
}

#[test]
fn every_alert_has_unit_tests_where_it_fires_and_where_it_stays_quiet() {
    let tests = yaml("prometheus/alerts.test.yml");
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for group in tests["tests"].as_sequence().expect("tests") {
        for case in group["alert_rule_test"].as_sequence().into_iter().flatten() {
            let name = case["alertname"].as_str().unwrap().to_owned();
            let expected = case["exp_alerts"].as_sequence().map_or(0, Vec::len);
            if expected > 0 {
                firing.insert(name);
            } else {
                quiet.insert(name);
            }
        }
    }
    for alert in alert_rules() {
        assert!(
            firing.contains(&alert.name),
            "no test where {} fires",
            alert.name
        );
        assert!(
            quiet.contains(&alert.name),
            "no test where {} stays quiet",
            alert.name
        );
    }
}

#[test]
fn promtool_accepts_the_rules_and_the_configuration() {
    promtool(&["check", "rules", "alerts.yml"]);
    promtool(&["check", "config", "prometheus.yml"]);
}

#[test]
fn promtool_unit_tests_of_the_alerts_pass() {
    promtool(&["test", "rules", "alerts.test.yml"]);
}

fn promtool(args: &[&str]) {
    let promtool = require_prometheus_tool("promtool");
    let output = Command::new(promtool)
        .args(args)
        .current_dir(deploy().join("prometheus"))
        .output()
        .expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

// ---- Kubernetes

/// Every document of every file in deploy/k8s, by kind.
fn k8s_objects() -> Vec<Yaml> {
    let mut objects = Vec::new();
    for path in files_under(&deploy().join("k8s")) {
        let relative = path.strip_prefix(deploy()).unwrap().to_str().unwrap();
        objects.extend(
            yaml_documents(relative)
                .into_iter()
                .filter(|object| object["kind"].is_string()),
        );
    }
    objects
}

fn k8s_object(kind: &str) -> Yaml {
    let mut found: Vec<Yaml> = k8s_objects()
        .into_iter()
        .filter(|object| object["kind"].as_str() == Some(kind))
        .collect();
    assert_eq!(found.len(), 1, "deploy/k8s holds one {kind}");
    found.remove(0)
}

fn worker_container(deployment: &Yaml) -> &Yaml {
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .expect("containers");
    containers
        .iter()
        .find(|c| c["name"].as_str() == Some("card-issuer"))
        .expect("a container named card-issuer")
}

/// The worker's shutdown grace: the container's CARD_ISSUER_SHUTDOWN_GRACE,
/// else the worker's default.
fn shutdown_grace(set: Option<&str>) -> Duration {
    match set {
        Some(text) => humantime::parse_duration(text).expect("a duration"),
        None => {
            let defaults = Settings::from_flags::<&str>(&[]).expect("the default settings load");
            defaults.worker.shutdown_grace
        }
    }
}

fn env_of(container: &Yaml) -> BTreeMap<String, Yaml> {
    container["env"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|var| (var["name"].as_str().unwrap().to_owned(), var.clone()))
        .collect()
}

#[test]
fn the_deployment_probes_healthz_and_readyz_on_the_metrics_port() {
    let deployment = k8s_object("Deployment");
    let container = worker_container(&deployment);
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe}");
        let port = match &get["port"] {
            Yaml::Number(number) => number.as_i64(),
            Yaml::String(name) => container["ports"]
                .as_sequence()
                .into_iter()
                .flatten()
                .find(|port| port["name"].as_str() == Some(name))
                .and_then(|port| port["containerPort"].as_i64()),
            other => panic!("{probe} port {other:?}"),
        };
        assert_eq!(port, Some(METRICS_PORT), "{probe} port");
    }
}

#[test]
fn the_termination_grace_period_outlasts_the_shutdown_grace() {
    let deployment = k8s_object("Deployment");
    let env = env_of(worker_container(&deployment));
    let set = env
        .get("CARD_ISSUER_SHUTDOWN_GRACE")
        .and_then(|var| var["value"].as_str());
    let grace = shutdown_grace(set).max(shutdown_grace(None));
    let period = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds is set");

    assert!(
        Duration::from_secs(period) > grace,
        "terminationGracePeriodSeconds {period} must exceed the shutdown grace {grace:?}"
    );
}

/// The worker's secret settings; each must come from a Secret.
const SECRET_SETTINGS: [&str; 3] = [
    "CARD_ISSUER_AMQP_URL",
    "CARD_ISSUER_PARTNER_USERNAME",
    "CARD_ISSUER_PARTNER_PASSWORD",
];

#[test]
fn the_deployment_takes_every_secret_from_a_secret_object() {
    let deployment = k8s_object("Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = worker_container(&deployment);
    let env = env_of(container);
    let secret_volumes: BTreeSet<&str> = pod["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter(|volume| volume["secret"]["secretName"].is_string())
        .map(|volume| volume["name"].as_str().unwrap())
        .collect();
    let secret_mounts: Vec<&str> = container["volumeMounts"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter(|mount| secret_volumes.contains(mount["name"].as_str().unwrap()))
        .map(|mount| mount["mountPath"].as_str().unwrap())
        .collect();

    for setting in SECRET_SETTINGS {
        let from_file = env.get(&format!("{setting}_FILE"));
        let direct = env.get(setting);
        match (from_file, direct) {
            (Some(var), _) => {
                let path = var["value"]
                    .as_str()
                    .expect("a _FILE variable holds a path");
                assert!(
                    secret_mounts.iter().any(|mount| path.starts_with(mount)),
                    "{setting}_FILE={path} is not in a mounted Secret ({secret_mounts:?})"
                );
            }
            (None, Some(var)) => assert!(
                var["valueFrom"]["secretKeyRef"]["name"].is_string(),
                "{setting} must come from a secretKeyRef, not a plain value"
            ),
            (None, None) => panic!("the Deployment does not set {setting} or {setting}_FILE"),
        }
    }
    for (name, var) in &env {
        let value = var["value"].as_str().unwrap_or_default();
        assert!(
            !(value.contains("://") && value.contains('@')),
            "{name} holds credentials in a plain value"
        );
    }
}

#[test]
fn the_pod_runs_as_non_root() {
    let deployment = k8s_object("Deployment");
    let security = &deployment["spec"]["template"]["spec"]["securityContext"];
    assert_eq!(security["runAsNonRoot"].as_bool(), Some(true));
    assert_ne!(security["runAsUser"].as_i64(), Some(0));
    let container = worker_container(&deployment);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"].as_bool(),
        Some(false)
    );
}

#[test]
fn the_disruption_budget_and_the_scaler_point_at_the_deployment() {
    let deployment = k8s_object("Deployment");
    let name = deployment["metadata"]["name"].as_str().unwrap();
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];

    let budget = k8s_object("PodDisruptionBudget");
    let selector = budget["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .expect("the budget selects by labels");
    for (key, value) in selector {
        assert_eq!(
            &pod_labels[key.as_str().unwrap()],
            value,
            "PDB selector {key:?}"
        );
    }

    let scaler = k8s_object("ScaledObject");
    assert_eq!(
        scaler["spec"]["scaleTargetRef"]["name"].as_str(),
        Some(name)
    );
    assert!(scaler["spec"]["minReplicaCount"].as_i64().unwrap_or(0) >= 1);
    let trigger = &scaler["spec"]["triggers"][0];
    assert_eq!(trigger["type"].as_str(), Some("rabbitmq"));
    assert_eq!(
        trigger["metadata"]["queueName"].as_str(),
        Some("card-issuer.open-card")
    );

    // The scaler reads the broker URL from the Secret the pods mount.
    let auth = k8s_object("TriggerAuthentication");
    let auth_name = trigger["authenticationRef"]["name"].as_str();
    assert_eq!(auth["metadata"]["name"].as_str(), auth_name);
    let secret = auth["spec"]["secretTargetRef"][0]["name"].as_str().unwrap();
    let mounted = deployment["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .any(|volume| volume["secret"]["secretName"].as_str() == Some(secret));
    assert!(mounted, "the Deployment does not mount the Secret {secret}");
}

// ---- compose and the Dockerfile

#[test]
fn compose_runs_the_worker_from_secret_files_as_non_root_with_time_to_stop() {
    let compose = yaml("compose.yaml");
    let services = &compose["services"];
    for service in ["rabbitmq", "partner", "worker", "prometheus", "grafana"] {
        assert!(services[service].is_mapping(), "no {service} service");
    }
    let worker = &services["worker"];
    let env = &worker["environment"];

    let set = env["CARD_ISSUER_SHUTDOWN_GRACE"].as_str();
    let grace = shutdown_grace(set).max(shutdown_grace(None));
    let stop = worker["stop_grace_period"]
        .as_str()
        .map(|text| humantime::parse_duration(text).unwrap())
        .expect("the worker sets stop_grace_period");
    assert!(
        stop > grace,
        "stop_grace_period {stop:?} <= shutdown grace {grace:?}"
    );

    let worker_secrets = strings(&worker["secrets"]);
    for setting in SECRET_SETTINGS {
        assert!(env[setting].is_null(), "{setting} is given in plain text");
        let path = env[format!("{setting}_FILE").as_str()]
            .as_str()
            .unwrap_or_else(|| panic!("the worker does not set {setting}_FILE"));
        let secret = path
            .strip_prefix("/run/secrets/")
            .expect("a compose secret");
        assert!(worker_secrets.iter().any(|s| s == secret), "{secret}");
        assert!(compose["secrets"][secret]["file"].is_string(), "{secret}");
    }

    let user = worker["user"].as_str().unwrap_or("");
    assert!(!user.is_empty() && !user.starts_with('0') && !user.starts_with("root"));
}

#[test]
fn compose_runs_rabbitmq_with_the_management_and_prometheus_plugins() {
    let compose = yaml("compose.yaml");
    let rabbitmq = &compose["services"]["rabbitmq"];
    let image = rabbitmq["image"].as_str().unwrap();
    let version = image
        .strip_prefix("rabbitmq:")
        .and_then(|tag| tag.split('-').next())
        .unwrap();
    let mut parts = version.split('.').map(|part| part.parse::<u32>().unwrap());
    let (major, minor) = (parts.next().unwrap(), parts.next().unwrap());
    assert!(
        (major, minor) >= (3, 10),
        "RabbitMQ {version} is older than 3.10"
    );

    let plugins = read("rabbitmq/enabled_plugins");
    assert!(plugins.contains("rabbitmq_management") && plugins.contains("rabbitmq_prometheus"));
    let mounts = strings(&rabbitmq["volumes"]);
    assert!(
        mounts
            .iter()
            .any(|m| m.starts_with("./rabbitmq/enabled_plugins:"))
    );

    let prometheus = strings(&compose["services"]["prometheus"]["volumes"]);
    assert!(prometheus.iter().any(|m| m.starts_with("./prometheus:")));
}

#[test]
fn the_dockerfile_is_multi_stage_and_runs_the_release_binary_as_non_root() {
    let dockerfile = read("Dockerfile");
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let stages = instructions
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(stages >= 2, "the Dockerfile has {stages} stage(s)");

    let last_stage = instructions
        .iter()
        .rposition(|line| line.starts_with("FROM "))
        .unwrap();
    let final_stage = &instructions[last_stage..];
    let has = |wanted: &str| final_stage.contains(&wanted);
    assert!(has("EXPOSE 9464"));
    assert!(has(r#"ENTRYPOINT ["card-issuer"]"#));
    assert!(has(r#"CMD ["run"]"#));
    assert!(
        final_stage
            .iter()
            .any(|line| line.starts_with("COPY --from=") && line.contains("card-issuer"))
    );
    let user = final_stage
        .iter()
        .rev()
        .find_map(|line| line.strip_prefix("USER "))
        .expect("the final stage sets USER");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric USER, so Kubernetes can verify runAsNonRoot");
    assert_ne!(uid, 0);
    assert!(dockerfile.contains("--release"));
}

fn strings(value: &Yaml) -> Vec<String> {
    value
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|item| item.as_str().expect("a string").to_owned())
        .collect()
}
