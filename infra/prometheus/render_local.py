"""Render a prometheus.yml for the local stack (``make up``), with the stack's real ports.

    python infra/prometheus/render_local.py [--state-dir .rag] [--output .rag/prometheus/prometheus.yml]
    prometheus --config.file=.rag/prometheus/prometheus.yml --storage.tsdb.path=.rag/prometheus/data \
        --web.listen-address=127.0.0.1:29090

Scraped locally: the gRPC API's metrics port, Triton's metrics port and SeaweedFS's
-metricsPort. Not scraped locally: MLflow (the stack runs it without --expose-prometheus),
PostgreSQL and Redis (no exporters in the local stack) and Airflow (StatsD, no exporter); the
production file infra/prometheus/prometheus.yml scrapes those through their exporters.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent


def local_config(
    ports: dict[str, int],
    *,
    host: str = "127.0.0.1",
    prometheus_port: int = 29090,
    scrape_interval: str = "15s",
    evaluation_interval: str = "15s",
) -> dict[str, Any]:
    """The configuration as a dict; ``ports`` is ``Ports.all_ports()`` of the stack."""

    def job(name: str, port: int, **extra: Any) -> dict[str, Any]:
        return {"job_name": name, "static_configs": [{"targets": [f"{host}:{port}"]}], **extra}

    return {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": evaluation_interval,
            "external_labels": {"system": "rag", "env": "local"},
        },
        "rule_files": [str(HERE / "rules" / "*.yml")],
        "scrape_configs": [
            job("prometheus", prometheus_port),
            job("rag-api", ports["metrics"], metrics_path="/metrics"),
            job("triton", ports["triton_metrics"]),
            job("seaweedfs", ports["seaweedfs metricsPort"]),
        ],
    }


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(HERE.parents[1] / "src"))
    from rag.stack.config import StackConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, help="the stack's state directory (default .rag/)")
    parser.add_argument(
        "--output", type=Path, help="where to write (default: <state-dir>/prometheus/prometheus.yml)"
    )
    parser.add_argument("--prometheus-port", type=int, default=29090)
    parser.add_argument("--scrape-interval", default="15s")
    parser.add_argument("--evaluation-interval", default="15s")
    args = parser.parse_args(argv)
    config = StackConfig.load(args.state_dir)
    rendered = local_config(
        config.ports.all_ports(),
        host=config.host,
        prometheus_port=args.prometheus_port,
        scrape_interval=args.scrape_interval,
        evaluation_interval=args.evaluation_interval,
    )
    output = args.output or config.state_dir / "prometheus" / "prometheus.yml"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        "# Rendered by infra/prometheus/render_local.py for the stack in "
        f"{config.state_dir}; do not edit.\n" + yaml.safe_dump(rendered, sort_keys=False)
    )
    print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
