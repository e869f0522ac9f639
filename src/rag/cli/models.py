"""``rag models register|promote|rollback|list|webhook``: the MLflow -> Triton model lifecycle.

Each command is a thin call into :mod:`rag.modelops.lifecycle`, the same code the MLflow
webhook receiver and the model-registration DAG run.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rag.core.errors import InvalidInput
from rag.modelops.packaging import CHAMPION, ModelKind
from rag.settings import Settings

KINDS = [kind.value for kind in ModelKind]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = sub.add_parser("models", help="register, promote and roll back models (MLflow -> Triton)")
    actions = models.add_subparsers(dest="models_action", required=True)

    add = actions.add_parser("register", help="register weights as a new MLflow model version")
    add.add_argument("--kind", required=True, choices=KINDS)
    add.add_argument(
        "--path",
        type=Path,
        help="a sentence-transformers folder (embedder), a CrossEncoder folder (reranker), a "
        "transformers folder or .gguf file (generator); default: the packaged weights",
    )
    add.add_argument("--name", help="label of the weights in their model_version (default: folder name)")
    add.add_argument("--alias", help=f"set this alias on the new version ({CHAMPION} also promotes it)")
    add.add_argument("--description", default="")
    add.set_defaults(handler=_register)

    promote = actions.add_parser("promote", help=f"make a version the {CHAMPION} and serve it from Triton")
    promote.add_argument("--kind", required=True, choices=KINDS)
    promote.add_argument("--version", required=True, help="the MLflow model version number")
    promote.set_defaults(handler=_promote)

    rollback = actions.add_parser("rollback", help="serve again the version that served before")
    rollback.add_argument("--kind", required=True, choices=KINDS)
    rollback.set_defaults(handler=_rollback)

    list_ = actions.add_parser("list", help="versions, aliases and Triton state of each model")
    list_.add_argument("--kind", choices=KINDS, help="only this model")
    list_.set_defaults(handler=_list)

    webhook = actions.add_parser("webhook", help="receive MLflow's alias webhooks and promote")
    webhook.add_argument("--host", default="127.0.0.1")
    webhook.add_argument("--port", type=int, default=8085)
    webhook.add_argument(
        "--subscribe",
        metavar="URL",
        help="also create (or update) the MLflow webhook 'rag-promote' that posts to URL "
        "(e.g. http://127.0.0.1:8085/webhooks/mlflow), signed with SECRET_KEY",
    )
    webhook.set_defaults(handler=_webhook)


def _logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.LOG_LEVEL.value, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "urllib3", "botocore", "mlflow", "sentence_transformers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _register(args: argparse.Namespace, settings: Settings) -> int:
    from rag.modelops.lifecycle import open_lifecycle

    _logging(settings)
    with open_lifecycle(settings) as lifecycle:
        version = lifecycle.register(
            ModelKind(args.kind), args.path, name=args.name, alias=args.alias, description=args.description
        )
    aliases = f" (aliases: {', '.join(version.aliases)})" if version.aliases else ""
    print(f"registered {version.name} version {version.version}: {version.tag('model_version')}{aliases}")
    return 0


def _promote(args: argparse.Namespace, settings: Settings) -> int:
    from rag.modelops.lifecycle import open_lifecycle

    _logging(settings)
    with open_lifecycle(settings) as lifecycle:
        deployment = lifecycle.promote(ModelKind(args.kind), args.version)
    print(
        f"{deployment.registered_model} version {deployment.mlflow_version} is {CHAMPION} and serves "
        f"as Triton {deployment.model_name} version {deployment.triton_version}"
    )
    return 0


def _rollback(args: argparse.Namespace, settings: Settings) -> int:
    from rag.modelops.lifecycle import open_lifecycle

    _logging(settings)
    with open_lifecycle(settings) as lifecycle:
        deployment = lifecycle.rollback(ModelKind(args.kind))
    print(
        f"rolled back: {deployment.registered_model} version {deployment.mlflow_version} serves again "
        f"as Triton {deployment.model_name} version {deployment.triton_version}"
    )
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from rag.modelops.lifecycle import open_lifecycle

    kinds = [ModelKind(args.kind)] if args.kind else list(ModelKind)
    with open_lifecycle(settings) as lifecycle:
        for kind in kinds:
            status = lifecycle.status(kind)
            triton = ", ".join(f"v{v} {state}" for v, state in sorted(status.triton.items())) or "not loaded"
            serving = (
                f"MLflow v{status.serving.mlflow_version} as Triton v{status.serving.triton_version}"
                if status.serving
                else "no promoted version (Triton version 1 runs the packaged or configured weights)"
            )
            print(f"{kind.value}: {kind.registered_name}, {CHAMPION} = {status.champion or '-'}")
            print(f"  serving: {serving}")
            print(f"  Triton {kind.triton_model}: {triton}")
            if not status.versions:
                print("  no registered versions")
                continue
            print(f"  {'version':>7}  {'aliases':<16} {'model_version':<48} created")
            for version in status.versions:
                aliases = ",".join(version.aliases) or "-"
                created = version.created_at.strftime("%Y-%m-%d %H:%M")
                print(f"  {version.version:>7}  {aliases:<16} {version.tag('model_version'):<48} {created}")
    return 0


def _webhook(args: argparse.Namespace, settings: Settings) -> int:
    from rag.modelops.lifecycle import open_lifecycle
    from rag.modelops.webhook import EVENT, PATH, PromotionWorker, WebhookServer, create_app

    _logging(settings)
    secret = settings.SECRET_KEY.get_secret_value()
    with open_lifecycle(settings) as lifecycle:
        if args.subscribe:
            try:
                hook = lifecycle.registry.subscribe("rag-promote", args.subscribe, [EVENT], secret)
            except InvalidInput as exc:
                raise InvalidInput(
                    f"{exc}; a receiver on http:// or a private address needs the MLflow server "
                    "started with MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https and "
                    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true"
                ) from None
            print(f"MLflow webhook rag-promote ({hook}) posts {EVENT} to {args.subscribe}")
        worker = PromotionWorker(lifecycle.promote)
        try:
            print(f"receiving MLflow webhooks on http://{args.host}:{args.port}{PATH} (Ctrl-C stops)")
            WebhookServer(create_app(secret, worker), args.host, args.port).run()
        finally:
            worker.close()
    return 0
