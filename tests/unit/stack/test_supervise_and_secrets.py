from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from rag.stack.secrets import SECRET_NAMES, ensure_secrets, read_env_file
from rag.stack.supervise import SEPARATOR, split_commands


def test_split_commands() -> None:
    assert split_commands(["a", "1", SEPARATOR, "b", SEPARATOR]) == [["a", "1"], ["b"]]


def test_supervisor_stops_everything_when_one_child_dies() -> None:
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    fail = [sys.executable, "-c", "import sys, time; time.sleep(0.5); sys.exit(3)"]
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "rag.stack.supervise", *sleep, SEPARATOR, *fail],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 3
    assert time.monotonic() - began < 20


def test_supervisor_forwards_sigterm() -> None:
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    proc = subprocess.Popen([sys.executable, "-m", "rag.stack.supervise", *sleep, SEPARATOR, *sleep])
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) is not None


def test_secrets_generated_once_private_and_completed(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    first = ensure_secrets(path)
    assert set(SECRET_NAMES) <= set(first)
    assert all(len(first[name]) >= 16 for name in SECRET_NAMES)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ensure_secrets(path) == first  # stable across runs
    values = read_env_file(path)
    del values["JWT_SECRET_KEY"]
    path.write_text("".join(f"{k}='{v}'\n" for k, v in values.items()))
    again = ensure_secrets(path)
    assert again["REDIS_PASSWORD"] == first["REDIS_PASSWORD"]
    assert again["JWT_SECRET_KEY"] and again["JWT_SECRET_KEY"] != first["JWT_SECRET_KEY"]
