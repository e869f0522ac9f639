"""Register model folders in MLflow and, optionally, promote them to Triton."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, Param, task
from rag_dag_defaults import Retries, rag_dag

log = logging.getLogger(__name__)
EMBEDDER = Asset("rag://models/embedder")

DOC = """
### Register models

Registers a model as a new version of its MLflow registered model (`rag-embedder`,
`rag-reranker`, `rag-generator`), with its weights as artifacts and tags for kind, dimension,
maximum sequence length and content digest. With **alias** `champion` the version is also
promoted: exported into the Triton model repository as a new numeric version, loaded through
Triton's model-control API, and the old version retired once the new one is READY, so no
request fails during the switch. A corrupt artifact fails the promotion with the reason and
the old version keeps serving.

The same promotion code runs from `rag models promote` and from the MLflow webhook on
`model_version_alias.created`. Promoting a new **embedder** marks the search index stale and
updates the Asset `rag://models/embedder`, which triggers `reembed_index`.

- **kind**: embedder, reranker or generator.
- **path**: a model folder on the workers (a sentence-transformers folder, a CrossEncoder
  folder, or a GGUF/transformers generator); empty registers the packaged default (not for the
  reranker, which has none offline).
- **alias**: empty, `champion` (register and promote) or any other alias to set.
"""


@rag_dag(
    "register_models",
    description="Register a model version in MLflow and optionally promote it to Triton",
    doc_md=DOC,
    schedule=None,
    tags=["models", "mlflow"],
    retries=Retries(2, timedelta(seconds=30), up_to=timedelta(minutes=10), timeout=timedelta(hours=1)),
    params={
        "kind": Param("embedder", type="string", enum=["embedder", "reranker", "generator"], title="Kind"),
        "path": Param(
            "",
            type="string",
            title="Model folder",
            description="On the workers; empty = the packaged default.",
        ),
        "alias": Param(
            "",
            type="string",
            pattern="^$|^[a-z][a-z0-9_-]{0,62}$",
            title="Alias",
            description="champion = register and promote to Triton; empty = register only.",
        ),
        "description": Param("", type="string", title="Description"),
    },
    native_params=False,
)
def register_models() -> None:
    @task
    def register(params: dict[str, Any] | None = None) -> dict[str, str]:
        """Register (and, with alias champion, promote) the model; returns its version."""
        from pathlib import Path

        from rag.modelops.lifecycle import open_lifecycle
        from rag.modelops.packaging import ModelKind
        from rag.settings import load_settings

        assert params is not None
        kind = ModelKind(params["kind"])
        path = Path(params["path"]) if params["path"] else None
        with open_lifecycle(load_settings()) as lifecycle:
            info = lifecycle.register(
                kind, path, alias=params["alias"] or None, description=params["description"]
            )
        log.info("registered %s version %s aliases %s", info.name, info.version, list(info.aliases))
        return {"kind": kind.value, "version": info.version, "aliases": ",".join(info.aliases)}

    @task(outlets=[EMBEDDER])
    def announce(result: dict[str, str]) -> None:
        """A promoted embedder makes the index stale: the Asset event starts reembed_index."""
        from airflow.sdk import get_current_context

        promoted = result["kind"] == "embedder" and "champion" in result["aliases"].split(",")
        context = get_current_context()
        if promoted:
            context["outlet_events"][EMBEDDER].extra = {"registered_version": result["version"]}
            log.info("embedder version %s promoted: re-embedding follows", result["version"])
        else:  # skipped tasks emit no Asset event: nothing to re-embed
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException("no embedder promotion: nothing to re-embed")

    # Any: what a task call returns here is an XComArg, which Airflow resolves to the value
    # the task returned before handing it on (Airflow's typing cannot say so).
    registered: Any = register()
    announce(registered)


register_models()
