"""Stream what a producer writes straight into object storage, hashing it on the way.

Backups never land on local disk: the producer (pg_dump through gzip, or tar) writes into a
pipe from a thread while the multipart upload reads the other end, so memory holds only a few
upload parts and no temp file is left behind, whatever fails. The other end of a restore pipes
a dump into psql; both report a failed tool by its exit status and the tail of its stderr
(:func:`exit_and_stderr`).
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from rag.adapters.objectstore import BlobStore

Producer = Callable[[IO[bytes]], None]
STDERR_TAIL_CHARS = 2000


def exit_and_stderr(proc: subprocess.Popen[bytes], stderr: IO[bytes]) -> tuple[int, str]:
    """Wait for ``proc``; its exit status and the end of what it wrote to the file ``stderr``."""
    code = proc.wait()
    stderr.seek(0)
    return code, stderr.read().decode(errors="replace").strip()[-STDERR_TAIL_CHARS:]


@dataclass(frozen=True)
class Stored:
    size_bytes: int
    sha256: str


class HashingReader(io.RawIOBase):
    """A readable that counts and sha256-hashes every byte read through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._hash.update(data)
        self.size += n
        return n

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        self._raw.close()
        super().close()


def upload_produced(
    blobs: BlobStore, bucket: str, key: str, produce: Producer, *, content_type: str
) -> Stored:
    """Run ``produce(sink)`` in a thread and upload what it writes as ``s3://bucket/key``.

    If the producer fails, the object (complete but truncated) is deleted and its error raised:
    a half-written backup never looks like one. If the upload fails, the producer is cut off.
    """
    read_fd, write_fd = os.pipe()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with open(write_fd, "wb", buffering=1 << 20) as sink:
                produce(sink)
        except BaseException as exc:
            errors.append(exc)

    reader = HashingReader(open(read_fd, "rb", buffering=0))  # noqa: SIM115 (closed below)
    thread = threading.Thread(target=run, name=f"produce-{key}", daemon=True)
    thread.start()
    try:
        blobs.upload_stream(bucket, key, io.BufferedReader(reader, 1 << 20), content_type=content_type)
    except BaseException:
        reader.close()  # the producer's next write fails (EPIPE) and it stops
        thread.join(timeout=60)
        raise
    thread.join()
    reader.close()
    if errors:
        blobs.delete(bucket, key)
        raise errors[0]
    return Stored(reader.size, reader.hexdigest())
