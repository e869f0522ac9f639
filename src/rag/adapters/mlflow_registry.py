"""MLflow's model registry as typed calls over ``MlflowClient``.

One :class:`ModelRegistry` per process, built from ``MLFLOW_TRACKING_URI`` at start-up; its
``MlflowClient`` (and the import of MLflow, which takes seconds) waits for the first call, so a
process that builds one and never asks MLflow anything pays nothing for it. Model
versions are MLflow 3 logged models (``models:/<model_id>``) registered under a name; promotion
state lives in aliases (stages are deprecated). MLflow's errors become :mod:`rag.core.errors`
at this boundary, with messages that name the model and version.

MLflow reads its HTTP timeout and retry policy only from environment variables, so the
constructor sets them (unless the operator did): without that, a call to a server that is
down retries for minutes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from rag.core.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RagError,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "rag-models"
_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "ENDPOINT_NOT_FOUND"}
_INVALID = {"INVALID_PARAMETER_VALUE", "BAD_REQUEST", "INVALID_STATE"}


@dataclass(frozen=True)
class ModelVersionInfo:
    """One registered model version as the registry reports it."""

    name: str
    version: str
    aliases: tuple[str, ...]
    tags: dict[str, str]
    source: str
    status: str
    created_at: datetime
    description: str = ""

    def tag(self, key: str) -> str:
        return self.tags.get(key, "")


@dataclass(frozen=True)
class RegistryOptions:
    tracking_uri: str
    experiment: str = DEFAULT_EXPERIMENT
    timeout_s: float = 120.0  # per HTTP request; uploads of weights are single large requests
    max_retries: int = 2
    extra_env: Mapping[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def translated(what: str, uri: str) -> Iterator[None]:
    """Re-raise MLflow's and the HTTP stack's errors as the taxonomy; ``what`` names the
    operation and its subject (``"version 3 of rag-embedder"``)."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except RagError:
        raise
    except MlflowException as exc:
        code = str(getattr(exc, "error_code", "") or "")
        message = exc.message if hasattr(exc, "message") else str(exc)
        if code in _NOT_FOUND:
            raise NotFound(f"MLflow has no {what}: {message}") from None
        if code == "RESOURCE_ALREADY_EXISTS":
            raise AlreadyExists(f"MLflow already has {what}: {message}") from None
        if code in _INVALID:
            raise InvalidInput(f"MLflow rejected {what}: {message}") from None
        if code == "PERMISSION_DENIED":
            raise PermissionDenied(f"MLflow denied {what}: {message}") from None
        if code == "UNAUTHENTICATED":
            raise Unauthenticated(f"MLflow refused the credentials for {what}: {message}") from None
        raise Unavailable(
            f"MLflow at {uri} failed on {what}: {message}; is the tracking server running?"
        ) from None
    except OSError as exc:  # connection refused, reset, timeouts (requests' errors are OSErrors)
        raise Unavailable(
            f"MLflow at {uri} is unreachable ({type(exc).__name__}) during {what}; "
            "is the tracking server running (MLFLOW_TRACKING_URI)?"
        ) from None


class ModelRegistry:
    """Registered models, their versions, aliases and artifacts."""

    def __init__(self, options: RegistryOptions) -> None:
        for name, value in {
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(options.timeout_s)),
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(options.max_retries),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            **options.extra_env,
        }.items():
            os.environ.setdefault(name, value)
        self.options = options
        self.uri = options.tracking_uri
        self._mlflow: Any = None
        self._mlflow_lock = threading.Lock()
        self._experiment_id: str | None = None

    @property
    def _client(self) -> Any:
        """The ``MlflowClient``, built on first use (once, whichever thread asks first)."""
        if self._mlflow is None:
            with self._mlflow_lock:
                if self._mlflow is None:
                    from mlflow import MlflowClient

                    self._mlflow = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._mlflow

    def _experiment(self) -> str:
        if self._experiment_id is None:
            name = self.options.experiment
            with translated(f"experiment {name}", self.uri):
                experiment = self._client.get_experiment_by_name(name)
                self._experiment_id = (
                    experiment.experiment_id if experiment else self._client.create_experiment(name)
                )
        return self._experiment_id

    # -- registered models and versions -------------------------------------------------------
    def ensure_registered_model(self, name: str, description: str = "") -> None:
        with translated(f"registered model {name}", self.uri):
            try:
                self._client.create_registered_model(name, description=description or None)
                log.info("registered model %s created", name)
            except Exception as exc:
                if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                    raise

    def create_version(
        self,
        name: str,
        model_dir: Path,
        *,
        tags: Mapping[str, str],
        description: str = "",
        run_id: str | None = None,
    ) -> ModelVersionInfo:
        """Upload the MLflow model folder ``model_dir`` as a logged model and register it as
        the next version of ``name`` with ``tags``; ``run_id`` links it to the training run
        that produced it."""
        self.ensure_registered_model(name)
        experiment = self._experiment()
        with translated(f"a new version of {name}", self.uri):
            logged = self._client.create_logged_model(
                experiment, name=name, tags=dict(tags), model_type=tags.get("kind"), source_run_id=run_id
            )
            try:
                self._client.log_model_artifacts(logged.model_id, str(model_dir))
            except Exception:
                self._client.finalize_logged_model(logged.model_id, "FAILED")
                raise
            self._client.finalize_logged_model(logged.model_id, "READY")
            version = self._client.create_model_version(
                name,
                source=f"models:/{logged.model_id}",
                tags=dict(tags),
                description=description or None,
                model_id=logged.model_id,
                run_id=run_id,
            )
        return self.version(name, str(version.version))

    def version(self, name: str, version: str) -> ModelVersionInfo:
        with translated(f"version {version} of {name}", self.uri):
            return _info(self._client.get_model_version(name, version))

    def versions(self, name: str) -> list[ModelVersionInfo]:
        """Every version of ``name``, newest first (empty when the model is not registered)."""
        with translated(f"versions of {name}", self.uri):
            found = self._client.search_model_versions(f"name = '{_quoted(name)}'", max_results=1000)
            # Searched versions come without their aliases; the registered model has them.
            aliases = self._aliases(name) if found else {}
        versions = [_info(v, [a for a, n in aliases.items() if n == str(v.version)]) for v in found]
        return sorted(versions, key=lambda v: int(v.version), reverse=True)

    def _aliases(self, name: str) -> dict[str, str]:
        try:
            return {str(a): str(v) for a, v in dict(self._client.get_registered_model(name).aliases).items()}
        except Exception as exc:
            if getattr(exc, "error_code", "") in _NOT_FOUND:
                return {}
            raise

    def alias(self, name: str, alias: str) -> str | None:
        """The version ``alias`` points at, or None."""
        with translated(f"registered model {name}", self.uri):
            return self._aliases(name).get(alias)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        with translated(f"alias {alias} -> version {version} of {name}", self.uri):
            self._client.set_registered_model_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        with translated(f"alias {alias} of {name}", self.uri):
            self._client.delete_registered_model_alias(name, alias)

    def download(self, name: str, version: str, target: Path) -> Path:
        """Download version ``version`` of ``name`` (the MLflow model folder) into ``target``."""
        import mlflow.artifacts

        target.mkdir(parents=True, exist_ok=True)
        with translated(f"the artifacts of version {version} of {name}", self.uri):
            location = self._client.get_model_version_download_uri(name, version)
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=location, dst_path=str(target), tracking_uri=self.uri
            )
        return Path(local)

    # -- training runs --------------------------------------------------------------------------
    def start_run(self, run_name: str, *, params: Mapping[str, object], tags: Mapping[str, str]) -> str:
        """A new run in the experiment, with its parameters logged; returns its id."""
        with translated(f"a new run {run_name}", self.uri):
            run = self._client.create_run(self._experiment(), run_name=run_name, tags=dict(tags))
            run_id = str(run.info.run_id)
            for key, value in params.items():
                self._client.log_param(run_id, key, str(value))
        return run_id

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], *, step: int = 0) -> None:
        with translated(f"metrics of run {run_id}", self.uri):
            for key, value in metrics.items():
                self._client.log_metric(run_id, key, float(value), step=step)

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        with translated(f"an artifact of run {run_id}", self.uri):
            self._client.log_artifact(run_id, str(path), artifact_path=artifact_path)

    def set_run_tag(self, run_id: str, key: str, value: str) -> None:
        with translated(f"a tag of run {run_id}", self.uri):
            self._client.set_tag(run_id, key, value)

    def end_run(self, run_id: str, *, failed: bool = False) -> None:
        with translated(f"run {run_id}", self.uri):
            self._client.set_terminated(run_id, status="FAILED" if failed else "FINISHED")

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        with translated(f"a tag of version {version} of {name}", self.uri):
            self._client.set_model_version_tag(name, version, key, value)

    # -- webhooks -------------------------------------------------------------------------------
    def subscribe(self, hook_name: str, url: str, events: list[str], secret: str) -> str:
        """Create (or point at ``url`` again) the webhook ``hook_name``; return its id."""
        from mlflow.entities.webhook import WebhookEvent

        # MLflow types events as a Literal union; ours are checked by from_str at run time.
        subscribed: list[Any] = [WebhookEvent.from_str(cast(Any, event)) for event in events]
        with translated(f"webhook {hook_name}", self.uri):
            for hook in self._client.list_webhooks():
                if hook.name == hook_name:
                    self._client.update_webhook(
                        hook.webhook_id, url=url, events=subscribed, secret=secret, status="ACTIVE"
                    )
                    return str(hook.webhook_id)
            created = self._client.create_webhook(hook_name, url, subscribed, secret=secret)
        return str(created.webhook_id)

    def unsubscribe(self, hook_id: str) -> None:
        with translated(f"webhook {hook_id}", self.uri):
            self._client.delete_webhook(hook_id)


def _quoted(value: str) -> str:
    return value.replace("'", "\\'")


def _info(version: Any, aliases: list[str] | None = None) -> ModelVersionInfo:
    created = datetime.fromtimestamp(int(version.creation_timestamp or 0) / 1000, tz=UTC)
    return ModelVersionInfo(
        name=str(version.name),
        version=str(version.version),
        aliases=tuple(sorted(str(a) for a in (version.aliases or aliases or ()))),
        tags={str(k): str(v) for k, v in (version.tags or {}).items()},
        source=str(version.source or ""),
        status=str(version.status or ""),
        created_at=created,
        description=str(version.description or ""),
    )
