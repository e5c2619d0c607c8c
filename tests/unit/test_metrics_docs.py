"""docs/ ships a Grafana dashboard and Prometheus alert rules built on the metrics the app exports (SPEC 15): every
metric they name exists, the rules have the shape Prometheus loads, and operations.md explains every metric.
(``promtool check rules`` / ``promtool test rules docs/prometheus-alerts-test.yml`` check the PromQL itself.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock
from adapters.prometheus import PrometheusMetrics, StateGauges
from domain.campaigns import CampaignService, CampaignSpec
from domain.codes import CodeHasher
from domain.model import PromoType
from tests.conftest import T0

DOCS = Path(__file__).resolve().parents[2] / "docs"
METRIC_NAME = re.compile(r"\bstarpromo_[a-z_]+\b")
SEVERITIES = {"info", "warning", "critical"}


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Every sample name the app exports, with one recording of each kind and one budgeted campaign."""
    metrics = PrometheusMetrics(CollectorRegistry())
    metrics.redeem_finished("ACCEPTED", 0.003)
    metrics.http_request_started()
    metrics.http_request_finished("/internal/promo/redeem", "POST", 200, 0.004)
    metrics.job_finished("run_promo_reservation_expiry", "ok", 0.2)
    metrics.alert_delivery_finished("slack", "delivered")
    metrics.telegram_call_finished("sendMessage", "ok")
    uow_factory = InMemoryUnitOfWorkFactory()
    CampaignService(uow_factory, ManualClock(T0), CodeHasher("p")).create(
        CampaignSpec(name="docs", promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=5, max_total_uses=9),
        actor="test")
    text = metrics.exposition(StateGauges(uow_factory)).decode()
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DOCS / "metrics-grafana-dashboard.json").read_text(encoding="utf-8"))
    return data


def test_the_spec_15_metrics_are_exported_under_their_names(exported: set[str]) -> None:
    assert {"starpromo_redeem_total", "starpromo_redeem_duration_seconds_bucket", "starpromo_http_requests_total",
            "starpromo_http_request_duration_seconds_bucket", "starpromo_job_runs_total",
            "starpromo_job_duration_seconds_bucket", "starpromo_alert_deliveries_total",
            "starpromo_telegram_api_calls_total", "starpromo_telegram_outbox_pending",
            "starpromo_campaign_budget_remaining"} <= exported


def test_the_alert_rules_have_the_shape_prometheus_loads_and_cover_what_ops_page_on(exported: set[str]) -> None:
    rules = _rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]
        used = set(METRIC_NAME.findall(rule["expr"]))
        assert used <= exported, (rule["alert"], used - exported)
    exprs = {rule["alert"]: rule["expr"] for rule in rules}
    covered = {
        "redeem error rate": "StarpromoRedeemErrorRate",
        "job failures": "StarpromoJobFailures",
        "alert delivery failures": "StarpromoAlertDeliveryFailures",
        "outbox backlog": "StarpromoTelegramOutboxBacklog",
        "budget nearly used": "StarpromoCampaignBudgetNearlyUsed",
    }
    assert set(covered.values()) <= set(exprs)
    assert "starpromo_telegram_outbox_pending" in exprs["StarpromoTelegramOutboxBacklog"]
    assert "starpromo_campaign_budget_remaining" in exprs["StarpromoCampaignBudgetNearlyUsed"]


def test_the_grafana_dashboard_imports_with_a_prometheus_input_and_graphs_exported_metrics(
        exported: set[str]) -> None:
    dash = _dashboard()
    assert [i["pluginId"] for i in dash["__inputs"]] == ["prometheus"]
    assert dash["uid"] and dash["title"] == "starpromo"
    panels = dash["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    graphed: set[str] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}"
            used = set(METRIC_NAME.findall(target["expr"]))
            assert used and used <= exported, (panel["title"], used - exported)
            graphed |= used
    families = {re.sub(r"_(bucket|count|sum)$", "", name) for name in exported}
    assert {re.sub(r"_(bucket|count|sum)$", "", name) for name in graphed} == families  # every metric has a panel


def test_operations_md_explains_every_exported_metric(exported: set[str]) -> None:
    text = (DOCS / "operations.md").read_text(encoding="utf-8")
    families = {re.sub(r"_(bucket|count|sum)$", "", name) for name in exported}
    assert sorted(f for f in families if f"`{f}" not in text) == []
