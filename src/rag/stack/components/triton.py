"""NVIDIA Triton Inference Server: the ``tritonserver`` binary bundled in PyPI ``nvidia-pytriton``.

Runs on the repository's ``triton_models/`` in explicit model-control mode, so a broken model
never stops the server and models are loaded and unloaded through the model-control API.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from rag.stack.components.base import Component


def pytriton_dir() -> Path:
    spec = importlib.util.find_spec("pytriton")
    if spec is None or spec.origin is None:
        raise RuntimeError("nvidia-pytriton is not installed; run `make install`")
    return Path(spec.origin).parent


class Triton(Component):
    name = "triton"
    startup_timeout = 60.0
    batch = True

    @property
    def runtime(self) -> Path:
        return self.ctx.config.state_dir / "triton-runtime"

    @property
    def http_url(self) -> str:
        return f"http://{self.ctx.host}:{self.ctx.config.ports.triton_http}"

    def ports(self) -> dict[str, int]:
        ports = self.ctx.config.ports
        return {
            "triton_http": ports.triton_http,
            "triton_grpc": ports.triton_grpc,
            "triton_metrics": ports.triton_metrics,
        }

    def endpoint(self) -> str:
        return f"{self.ctx.host}:{self.ctx.config.ports.triton_grpc}"

    def prepare(self) -> None:
        self._prepare_runtime()
        self._render_repository()

    def _render_repository(self) -> None:
        """Render the templates for this machine into the stack's own model repository."""
        from rag.modelops.triton_config import RenderOptions, render_repository

        cfg = self.ctx.config
        options = RenderOptions(
            gpu=cfg.enable_gpu,
            reranker_model_path=str(cfg.reranker_model_path or ""),
            generator_cache_dir=str(cfg.model_cache_dir / "gguf"),
        )
        cfg.model_repository.mkdir(parents=True, exist_ok=True)
        render_repository(cfg.triton_model_repository, options, output=cfg.model_repository)

    def _prepare_runtime(self) -> None:
        """Lay out bin/, backends/ and caches/ with the stub for this Python (once)."""
        marker = self.runtime / ".complete"
        if marker.exists():
            return
        source = pytriton_dir() / "tritonserver"
        shutil.rmtree(self.runtime, ignore_errors=True)
        for part in ("bin", "backends", "caches"):
            shutil.copytree(source / part, self.runtime / part, symlinks=True)
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        stub = source / "python_backend_stubs" / version / "triton_python_backend_stub"
        shutil.copy2(stub, self.runtime / "backends" / "python" / "triton_python_backend_stub")
        marker.touch()

    def env(self) -> dict[str, str]:
        env = super().env()
        libs = [str(pytriton_dir().parent / "nvidia_pytriton.libs"), str(sysconfig.get_config_var("LIBDIR"))]
        env["LD_LIBRARY_PATH"] = ":".join(libs)
        env["ENABLE_GPU"] = "true" if self.ctx.config.enable_gpu else "false"
        return env

    def command(self) -> list[str]:
        ports = self.ctx.config.ports
        host = self.ctx.host
        return [
            str(self.runtime / "bin" / "tritonserver"),
            f"--model-repository={self.ctx.config.model_repository}",
            f"--backend-directory={self.runtime / 'backends'}",
            f"--cache-directory={self.runtime / 'caches'}",
            "--model-control-mode=explicit",
            "--exit-on-error=false",
            "--strict-readiness=true",
            f"--http-address={host}",
            f"--http-port={ports.triton_http}",
            f"--grpc-address={host}",
            f"--grpc-port={ports.triton_grpc}",
            f"--metrics-address={host}",
            f"--metrics-port={ports.triton_metrics}",
            "--allow-metrics=true",
            "--allow-gpu-metrics=false",
            "--log-verbose=0",
        ]

    def _ready_versions(self) -> dict[str, set[int]]:
        """Model -> its READY versions, from Triton's repository index."""
        index = httpx.post(f"{self.http_url}/v2/repository/index", json={"ready": True}, timeout=5)
        index.raise_for_status()
        ready: dict[str, set[int]] = {}
        for entry in index.json():
            if entry.get("state") == "READY" and str(entry.get("version", "")).isdigit():
                ready.setdefault(entry["name"], set()).add(int(entry["version"]))
        return ready

    def wanted_versions(self) -> dict[str, int]:
        """Each configured model and the version it must serve: the highest version folder in
        the stack's repository (a promotion exports the next number; Triton's ``latest 1``
        policy serves it)."""
        wanted = {}
        for model in self.ctx.config.models_to_load():
            folder = self.ctx.config.model_repository / model
            versions = folder.iterdir() if folder.is_dir() else iter(())
            numbers = [int(p.name) for p in versions if p.is_dir() and p.name.isdigit()]
            wanted[model] = max(numbers, default=1)
        return wanted

    def _missing(self) -> list[str]:
        ready = self._ready_versions()
        return [m for m, v in self.wanted_versions().items() if v not in ready.get(m, set())]

    def live(self) -> None:
        """The server answers (its models may still be missing: ``after_start`` loads them)."""
        httpx.get(f"{self.http_url}/v2/health/live", timeout=3).raise_for_status()

    def check(self) -> str:
        """Server ready and every configured model READY in the version it must serve."""
        httpx.get(f"{self.http_url}/v2/health/ready", timeout=3).raise_for_status()
        missing = self._missing()
        if missing:
            wanted = self.wanted_versions()
            raise RuntimeError("models not ready: " + ", ".join(f"{m} v{wanted[m]}" for m in missing))
        served = ", ".join(f"{m} v{v}" for m, v in sorted(self.wanted_versions().items()))
        return f"Triton at grpc {self.endpoint()} / http {self.http_url} ({served} ready)"

    def after_start(self) -> None:
        """Load, through the model-control API (in parallel), each configured model that is not
        READY in the version it must serve: after a restart, every model and promoted version."""
        wanted = self._missing()

        def load(model: str) -> None:
            response = httpx.post(f"{self.http_url}/v2/repository/models/{model}/load", timeout=600)
            if response.status_code != 200:
                detail = (
                    response.json().get("error", response.text)
                    if response.content
                    else response.reason_phrase
                )
                raise RuntimeError(f"Triton could not load model {model}: {detail}; see {self.log_path}")

        with ThreadPoolExecutor(max_workers=max(1, len(wanted))) as pool:
            list(pool.map(load, wanted))
