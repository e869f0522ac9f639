"""What every local-stack component is: a command, its ports, a real readiness check."""

from __future__ import annotations

import abc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.stack.config import StackConfig
from rag.stack.process import PidFile, kill_leftovers, require_free_ports, spawn, stop, wait_until

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StackContext:
    """Configuration plus secrets: everything a component needs to know."""

    config: StackConfig
    secrets: dict[str, str]

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def venv_bin(self) -> Path:
        return Path(sys.executable).parent

    def data_dir(self, name: str) -> Path:
        return self.config.state_dir / "data" / name

    def base_env(self) -> dict[str, str]:
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env["PATH"] = f"{self.venv_bin}:{env.get('PATH', '/usr/bin:/bin')}"
        env.setdefault("LANG", "C.UTF-8")
        env["HF_HUB_OFFLINE"] = "1"
        env["TRANSFORMERS_OFFLINE"] = "1"
        env["PYTHONUNBUFFERED"] = "1"
        # No network but the package registries: nothing phones home.
        env["DO_NOT_TRACK"] = "1"
        env["MLFLOW_DISABLE_TELEMETRY"] = "true"
        env["HF_HUB_DISABLE_TELEMETRY"] = "1"
        return env


class Component(abc.ABC):
    """One local server process. Subclasses say how to start it and how to know it is ready."""

    name: str
    startup_timeout: float = 60.0
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 30.0
    stop_group: bool = True  # signal the whole process group (False: the leader only)
    # How long `up` gives a running but not-ready process to become ready (a dependency that
    # just came back) before it restarts it.
    repair_grace: float = 20.0
    # Batch and inference work (Triton, Airflow and its tasks, MLflow) runs at the lower CPU
    # priority StackConfig.batch_nice, so the API's RPCs and health checks come first.
    batch: bool = False

    def __init__(self, ctx: StackContext) -> None:
        self.ctx = ctx
        run_dir = ctx.config.state_dir / "run"
        self.pid_file = PidFile(run_dir / f"{self.name}.pid")
        self.log_path = ctx.config.state_dir / "logs" / f"{self.name}.log"

    # -- what subclasses provide -------------------------------------------------------------
    @abc.abstractmethod
    def ports(self) -> dict[str, int]:
        """Every port the process listens on, by name."""

    @abc.abstractmethod
    def command(self) -> list[str]:
        """The argv that runs the server in the foreground."""

    @abc.abstractmethod
    def check(self) -> str:
        """Make a real call (query, request); return a short detail, raise if not ready."""

    def live(self) -> None:
        """The server answers and can be provisioned (raise if not); ``check`` by default."""
        self.check()

    def env(self) -> dict[str, str]:
        return self.ctx.base_env()

    def user(self) -> str | None:
        return None

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """One-time set-up before the first start (initdb, runtime copy, config files)."""

    def after_start(self) -> None:  # noqa: B027 - optional hook
        """Idempotent provisioning once ready (databases, buckets, models)."""

    def endpoint(self) -> str:
        return f"{self.ctx.host}:{next(iter(self.ports().values()))}"

    # -- lifecycle ---------------------------------------------------------------------------
    def running_pid(self) -> int | None:
        return self.pid_file.running_pid()

    def start(self) -> bool:
        """Start or repair, then wait until ready; True if this call (re)started the process.

        A process that runs but does not answer within ``repair_grace`` is restarted; what a
        crashed one left behind (its process group) is killed first. Provisioning
        (``after_start``: databases, buckets, models) runs every time, so a restarted server
        gets back everything it served.
        """
        kill_leftovers(self.pid_file)  # before running_pid() forgets a crashed leader's PID
        if self.running_pid() is not None and not self._settles():
            log.warning("%s runs but is not ready after %.0fs; restarting it", self.name, self.repair_grace)
            self.stop()
        started = False
        if self.running_pid() is None:
            require_free_ports(self.name, self.ctx.host, self.ports())
            self.prepare()
            spawn(
                self.command(),
                log_path=self.log_path,
                pid_file=self.pid_file,
                env=self.env(),
                cwd=self.ctx.config.state_dir,
                user=self.user(),
                nice=self.ctx.config.batch_nice if self.batch else 0,
            )
            started = True
        self._wait(self._alive_and_live)
        self.after_start()
        self._wait(self._alive_and_ready)
        return started

    def _settles(self) -> bool:
        deadline = time.monotonic() + self.repair_grace
        while self.running_pid() is not None:
            try:
                self.live()
                return True
            except Exception:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.5)
        return False

    def _wait(self, ready: Callable[[], bool]) -> None:
        try:
            wait_until(ready, timeout=self.startup_timeout, what=self.name)
        except TimeoutError as exc:
            tail = self.log_tail()
            if self.running_pid() is None:
                raise RuntimeError(
                    f"{self.name} exited during start-up; see {self.log_path}\n{tail}"
                ) from None
            raise RuntimeError(f"{exc}; see {self.log_path}\n{tail}") from None

    def _alive_and_live(self) -> bool:
        if self.running_pid() is None:
            raise RuntimeError("process exited")
        self.live()
        return True

    def _alive_and_ready(self) -> bool:
        if self.running_pid() is None:
            raise RuntimeError("process exited")
        self.check()
        return True

    def stop(self) -> bool:
        return stop(self.pid_file, sig=self.stop_signal, timeout=self.stop_timeout, group=self.stop_group)

    def status(self) -> tuple[bool, str]:
        """(healthy, detail) from the PID file and a real call."""
        pid = self.running_pid()
        if pid is None:
            return False, "not running"
        try:
            detail = self.check()
        except Exception as exc:
            return (
                False,
                f"pid {pid}, not ready: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            )
        return True, f"pid {pid}, {detail}"

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join("    " + line for line in text[-lines:])
