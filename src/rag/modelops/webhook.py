"""The MLflow webhook receiver: the alias ``champion`` set on a version -> promote it.

MLflow 3 delivers ``model_version_alias.created`` events as a JSON POST signed with the
webhook's secret (here ``SECRET_KEY``) the Standard Webhooks way: the header
``X-MLflow-Signature: v1,<base64 HMAC-SHA256>`` over ``"<delivery id>.<timestamp>.<body>"``,
with ``X-MLflow-Delivery-Id`` and ``X-MLflow-Timestamp``. A missing or wrong signature, or a
timestamp more than five minutes away (a replay), is answered 401 and nothing happens. A body
over ``MAX_BODY_BYTES`` is answered 413 without being read further, chunked or not.

A verified event for one of RAG System's registered models is answered 202 at once and
promoted by one worker thread, in arrival order: MLflow gives a delivery ~30 s, loading a
model can take longer. ``GET /webhooks/mlflow/deliveries/<id>`` tells how a delivery went.
Promotion is :meth:`rag.modelops.lifecycle.ModelLifecycle.promote`, the code the CLI runs;
it does nothing for a version that already serves, so the event that a promotion's own alias
change fires is harmless.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from rag.core.errors import RagError, Unauthenticated
from rag.modelops.packaging import CHAMPION, ModelKind

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

PATH = "/webhooks/mlflow"
SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_HEADER = "X-MLflow-Delivery-Id"
SIGNATURE_VERSION = "v1"
EVENT = "model_version_alias.created"
MAX_AGE_S = 300.0
MAX_BODY_BYTES = 64 * 1024
_KEPT_DELIVERIES = 1000


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The ``X-MLflow-Signature`` value MLflow sends for ``body``."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    max_age_s: float = MAX_AGE_S,
) -> str:
    """Check a delivery's signature and freshness; return its delivery id.

    ``headers`` must look names up case-insensitively (Starlette's do). Raises
    :class:`Unauthenticated` saying what is wrong.
    """
    delivery_id = headers.get(DELIVERY_HEADER, "")
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    if not (delivery_id and timestamp and signature):
        raise Unauthenticated(
            f"unsigned delivery: {SIGNATURE_HEADER}, {TIMESTAMP_HEADER} and {DELIVERY_HEADER} are required"
        )
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise Unauthenticated(f"{TIMESTAMP_HEADER} must be Unix seconds") from None
    if abs((time.time() if now is None else now) - sent_at) > max_age_s:
        raise Unauthenticated(f"{TIMESTAMP_HEADER} is more than {max_age_s:.0f}s away (a replay?)")
    expected = sign(secret, delivery_id, timestamp, body)
    # A header may list several signatures (key rotation): any valid one will do.
    offered = [part.strip() for part in signature.split(" ") if part.strip()]
    if not any(hmac.compare_digest(candidate, expected) for candidate in offered):
        raise Unauthenticated("bad signature: is the webhook's secret this receiver's SECRET_KEY?")
    return delivery_id


@dataclass
class Delivery:
    """One verified event and what became of it."""

    id: str
    model: str
    version: str
    status: str  # queued, running, succeeded, failed
    detail: str = ""


class PromotionWorker:
    """Runs promotions one at a time on a thread, remembering the latest deliveries."""

    def __init__(self, promote: Callable[[ModelKind, str], object]) -> None:
        self._promote = promote
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="promotion")
        self._lock = threading.Lock()
        self._deliveries: OrderedDict[str, Delivery] = OrderedDict()

    def submit(self, delivery_id: str, kind: ModelKind, version: str) -> Delivery:
        """Queue a promotion; a delivery id seen before (MLflow's retry) is not queued again."""
        with self._lock:
            known = self._deliveries.get(delivery_id)
            if known is not None:
                return known
            delivery = Delivery(delivery_id, kind.registered_name, version, "queued")
            self._deliveries[delivery_id] = delivery
            while len(self._deliveries) > _KEPT_DELIVERIES:
                self._deliveries.popitem(last=False)
        self._pool.submit(self._run, delivery, kind)
        return delivery

    def get(self, delivery_id: str) -> Delivery | None:
        with self._lock:
            return self._deliveries.get(delivery_id)

    def _run(self, delivery: Delivery, kind: ModelKind) -> None:
        delivery.status = "running"
        try:
            self._promote(kind, delivery.version)
        except RagError as exc:
            delivery.status, delivery.detail = "failed", str(exc)
            log.error("delivery %s: %s", delivery.id, exc)
        except Exception as exc:  # a bug must not kill the worker thread
            delivery.status, delivery.detail = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("delivery %s failed unexpectedly", delivery.id)
        else:
            delivery.status = "succeeded"
            log.info("delivery %s: %s version %s promoted", delivery.id, delivery.model, delivery.version)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def create_app(secret: str, worker: PromotionWorker) -> Starlette:
    """The receiver as an ASGI app (``POST /webhooks/mlflow``)."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def receive(request: Request) -> Response:
        try:
            body = await _capped_body(request, MAX_BODY_BYTES)
        except _BodyRefused as refused:
            return JSONResponse({"error": refused.message}, status_code=refused.status)
        try:
            delivery_id = verify(secret, request.headers, body)
        except Unauthenticated as exc:
            log.warning("rejected a webhook delivery from %s: %s", request.client, exc)
            return JSONResponse({"error": str(exc)}, status_code=401)
        try:
            event = json.loads(body)
            name, event_type = _event(event)
        except (ValueError, TypeError, KeyError) as exc:
            return JSONResponse({"error": f"not an MLflow webhook payload ({exc})"}, status_code=400)
        data = event.get("data") or {}
        kind = ModelKind.of_registered_name(name)
        if event_type != EVENT or data.get("alias") != CHAMPION or kind is None:
            reason = f"{event_type} for {name}@{data.get('alias')}: only {EVENT} @{CHAMPION} of rag-* models"
            return JSONResponse({"status": "ignored", "reason": reason})
        delivery = worker.submit(delivery_id, kind, str(data["version"]))
        return JSONResponse(asdict(delivery), status_code=202)

    async def delivery(request: Request) -> Response:
        found = worker.get(request.path_params["delivery_id"])
        if found is None:
            return JSONResponse({"error": "unknown delivery"}, status_code=404)
        return JSONResponse(asdict(found))

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route(PATH, receive, methods=["POST"]),
            Route(PATH + "/deliveries/{delivery_id}", delivery, methods=["GET"]),
            Route("/healthz", health, methods=["GET"]),
        ]
    )
    app.add_middleware(SecurityHeaders)
    return app


class _BodyRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


async def _capped_body(request: Request, limit: int) -> bytes:
    """The request body, read no further than ``limit`` bytes whatever the framing: a declared
    ``Content-Length`` over the limit is refused unread, a chunked body is counted as it
    arrives and refused at the first byte past the limit (413)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise _BodyRefused(400, "Content-Length must be a number of bytes")
        if int(declared) > limit:
            raise _BodyRefused(413, f"body over {limit} bytes")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise _BodyRefused(413, f"body over {limit} bytes")
    return bytes(body)


def _event(event: Any) -> tuple[str, str]:
    if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
        raise ValueError("expected an object with entity, action and data")
    data = event["data"]
    return str(data["name"]), f"{event['entity']}.{event['action']}"


class SecurityHeaders:
    """Adds the usual hardening headers to every response (SPEC §4: HTTP endpoints)."""

    HEADERS = (
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"cache-control", b"no-store"),
        (b"content-security-policy", b"default-src 'none'"),
        (b"referrer-policy", b"no-referrer"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


class WebhookServer:
    """The receiver on a uvicorn server in a background thread (tests; the CLI runs it in
    the foreground with :meth:`run`). Port 0 picks a free port (see :attr:`port`)."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self.host = host

    def run(self) -> None:
        self._server.run()

    def start(self, timeout_s: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._server.run, name="mlflow-webhook", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the webhook receiver did not start")
            time.sleep(0.02)

    @property
    def port(self) -> int:
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{PATH}"

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
