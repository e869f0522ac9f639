"""Grafana dashboards: valid JSON models whose PromQL parses (checked by promtool)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from tests.unit.infra.tools import INFRA, tool

DASHBOARDS = sorted((INFRA / "grafana" / "dashboards").glob("*.json"))


def test_dashboards_are_complete_models() -> None:
    assert {p.stem for p in DASHBOARDS} == {
        "rag-search",
        "rag-ingestion",
        "rag-triton",
        "rag-postgres",
        "rag-cache",
    }
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] == path.stem and dashboard["title"].startswith("RAG / ")
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)) and dashboard["panels"]
        for panel in dashboard["panels"]:
            assert panel["targets"], (path.name, panel["title"])


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    # promtool has no "parse this expression" command; it parses every rule of a rule file.
    rules = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                expr = target["expr"].replace("$__rate_interval", "5m").replace("$__interval", "1m")
                rules.append(
                    {
                        "record": f"dashboard:{path.stem.replace('-', '_')}:{panel['id']}{target['refId']}",
                        "expr": expr,
                    }
                )
    file = tmp_path / "dashboards.yml"
    file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout + result.stderr
