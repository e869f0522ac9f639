"""A failed tool is reported by its exit status and the end of its stderr."""

from __future__ import annotations

import subprocess
import sys
import tempfile

from rag.operations.streams import STDERR_TAIL_CHARS, exit_and_stderr


def test_the_exit_status_and_the_last_characters_of_stderr() -> None:
    script = "import sys; sys.stderr.write('x' * 5000 + 'the real error'); sys.exit(3)"
    with (
        tempfile.TemporaryFile() as stderr,
        subprocess.Popen([sys.executable, "-c", script], stderr=stderr) as proc,
    ):
        code, message = exit_and_stderr(proc, stderr)
    assert code == 3
    assert message.endswith("the real error") and len(message) == STDERR_TAIL_CHARS
