"""Tables on stdout, JSON in bench/results/, and the machine the numbers came from."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """CPU count, memory and the load average: the cores are shared, so the load goes with the numbers."""
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "gpu": False,
    }
    with contextlib.suppress(OSError):
        info["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return info


def load_now() -> str:
    try:
        one, five, _ = os.getloadavg()
        return f"load {one:.2f}/{five:.2f} on {os.cpu_count()} cpus"
    except OSError:
        return "load unknown"


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append(
            "  ".join(c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(row, widths, strict=True))
        )
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _numeric(text: str) -> bool:
    return text.replace(".", "", 1).replace("x", "").replace("-", "", 1).isdigit()


def ratio(value: float | None, floor: float | None) -> str:
    if value is None or not floor:
        return "-"
    return f"{value / floor:.2f}x"


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "NOT met")


def percentiles(samples_s: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds (nearest rank)."""
    ordered = sorted(samples_s)
    if not ordered:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0}

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] * 1000

    return {"p50_ms": statistics.median(ordered) * 1000, "p95_ms": at(0.95), "p99_ms": at(0.99)}


def save(name: str, payload: dict[str, Any], directory: Path = RESULTS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    body = {"benchmark": name, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine()}
    path.write_text(json.dumps(body | payload, indent=2, default=str) + "\n")
    return path
