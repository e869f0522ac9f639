"""Fuzz every RPC of the rag.v1 API: ``fuzz(target, examples, metadata=...)`` counts the answers by status.

Hypothesis (seeded, so a run is repeatable) draws for each example one RPC of every service
the rag.v1 protos declare, and one request for it:

- half the time a valid message, built from the request's descriptor within the limits of
  :mod:`grpc_services.validation`, so that it reaches the servicer and the stores (odd but
  valid values included: base64 page tokens of odd JSON, UUIDs in every spelling);
- 30 % a message with one hostile field: a NUL character, a string, list or map just past
  its limit, a number on or past its range's edge, NaN, an unknown enum value, a timestamp
  outside any calendar;
- 20 % raw bytes: random, a valid message cut short, or one with a string field that is not
  UTF-8 (a lone surrogate, a stray continuation byte).

Login (argon2) and Generate (the model) are drawn a third as often as the other RPCs.

Upload, the client stream, gets a sequence of such messages (a well-formed upload now and
then). The caller's ``metadata`` authenticates every call; use an admin of a tenant made for
the run (the uploads land there). A health check runs every ``health_every`` examples.

What a sound server answers is any status but INTERNAL or UNKNOWN, and health stays SERVING.
Requests that would change the stack are kept harmless: SystemCleanup and CleanupCache only
ever get ``days_old`` 3650 or a value out of range, UpdateAllModels only a dry run,
WarmModels only the embedder; Generate asks for at most 8 tokens.

The module is longer than most because one idea, a request for any RPC, needs a strategy for
every kind of protobuf field (valid and hostile scalars, maps, timestamps, raw wire bytes); split
apart, those strategies would only call each other across files.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st

from grpc_services.validation import DEFAULT_RULE, RULES, Rule
from rag.proto.rag.v1 import (
    admin_pb2,
    auth_pb2,
    document_pb2,
    feedback_pb2,
    generation_pb2,
    model_pb2,
    search_pb2,
)

SEED = 12
SERVER_ERRORS = frozenset({"INTERNAL", "UNKNOWN"})
_MODULES = (admin_pb2, auth_pb2, document_pb2, feedback_pb2, generation_pb2, model_pb2, search_pb2)
_GENERATE_MAX_TOKENS = 8
_SAFE_DAYS = 3650
_SLOW = frozenset(
    {
        "/rag.v1.AuthService/Login",
        "/rag.v1.GenerationService/Generate",
        "/rag.v1.GenerationService/GenerateStream",
    }
)

_FLOATS = frozenset({FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE})
_UNSIGNED = frozenset(
    {
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED64,
    }
)
_SIXTY_FOUR = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED64,
    }
)
_WORDS = ("vitamin", "sunlight", "bone", "health", "inhaler", "wheezing", "magnesium", "the", "a", "?")
_HOSTILE_TEXT = ("\x00", "a\x00b", "\ufeff", "\u202e", "%s", "' OR 1=1 --", "\\", "\n", " ", "\U0010ffff")


@dataclass(frozen=True)
class Rpc:
    """One method of the API, as the fuzzer calls it."""

    path: str  # "/rag.v1.SearchService/Search"
    request: type[Message]
    client_streaming: bool
    server_streaming: bool


@dataclass(frozen=True)
class Failure:
    method: str
    code: str
    details: str
    request: str  # a short description of what was sent


@dataclass
class FuzzReport:
    """What ``examples`` fuzzed requests got back."""

    examples: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    by_method: dict[str, Counter[str]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)  # INTERNAL and UNKNOWN answers
    health: Counter[str] = field(default_factory=Counter)  # health check outcomes
    seconds: dict[str, float] = field(default_factory=dict)  # time spent in calls, by method

    @property
    def server_errors(self) -> int:
        return sum(self.codes[code] for code in SERVER_ERRORS)

    @property
    def always_serving(self) -> bool:
        return set(self.health) <= {"SERVING"}


def rpcs() -> list[Rpc]:
    """Every RPC of every rag.v1 service, from the protos' descriptors."""
    found = []
    for module in _MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                found.append(_rpc(service.full_name, method))
    return sorted(found, key=lambda rpc: rpc.path)


def _rpc(service: str, method: MethodDescriptor) -> Rpc:
    return Rpc(
        f"/{service}/{method.name}",
        message_factory.GetMessageClass(method.input_type),
        method.client_streaming,
        method.server_streaming,
    )


# --- Strategies -------------------------------------------------------------------------------
# A request is valid (every field within its rule in grpc_services.validation, so it reaches
# the servicer and the stores), hostile (one field breaks a rule or sits on an edge), or raw.

_SAFE_CHARACTERS = st.characters(exclude_characters="\x00", exclude_categories=["Cs"])


def _words(max_chars: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(_WORDS), min_size=1, max_size=8).map(lambda w: " ".join(w)[:max_chars])


def _page_token() -> st.SearchStrategy[str]:
    part = st.one_of(
        st.text(max_size=12),
        st.integers(),
        st.none(),
        st.sampled_from(("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2024-02-30", "")),
        st.uuids().map(str),
        st.datetimes().map(lambda d: d.isoformat()),
    )
    encoded = st.lists(part, max_size=3).map(
        lambda parts: base64.urlsafe_b64encode(json.dumps(parts).encode())
    )
    return st.one_of(encoded.map(bytes.decode), st.text(_SAFE_CHARACTERS, max_size=24))


def _document_id() -> st.SearchStrategy[str]:
    spelled = st.sampled_from((str, lambda u: u.urn, lambda u: u.hex, lambda u: str(u).upper()))
    return st.one_of(st.tuples(st.uuids(), spelled).map(lambda pair: pair[1](pair[0])), st.just(""))


# Valid values with a meaning, for the fields that have one.
_FIELD_VALUES: dict[str, Callable[[], st.SearchStrategy[Any]]] = {
    "rag.v1.GetDocumentRequest.document_id": _document_id,
    "rag.v1.DeleteDocumentRequest.document_id": _document_id,
    "rag.v1.GradeResultRequest.document_id": _document_id,
    "rag.v1.SearchFilters.document_ids": lambda: st.lists(st.uuids().map(str), max_size=3),
    "rag.v1.ListDocumentsRequest.page_token": _page_token,
    "rag.v1.WarmModelsRequest.model_names": lambda: st.lists(st.just("embedder"), max_size=2),
    "rag.v1.UploadMetadata.filename": lambda: st.sampled_from(
        ("a.txt", "notes.md", "page.html", "x.pdf", "../../etc/passwd", ".rag/secrets.env", "", "a" * 255)
    ),
    "rag.v1.UploadMetadata.mime_type": lambda: st.sampled_from(("text/plain", "application/pdf", "", "x/y")),
}


def _rule(field_: FieldDescriptor) -> Rule:
    return RULES.get(field_.full_name, DEFAULT_RULE)


def _valid_scalar(field_: FieldDescriptor, rule: Rule) -> st.SearchStrategy[Any]:
    kind = field_.type
    if kind == FieldDescriptor.TYPE_STRING:
        return st.one_of(_words(rule.max_chars), st.text(_SAFE_CHARACTERS, max_size=min(24, rule.max_chars)))
    if kind == FieldDescriptor.TYPE_BYTES:
        return _words(rule.max_bytes).map(str.encode)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([value.number for value in field_.enum_type.values])
    low = -(2**31) if rule.minimum is None else rule.minimum
    high = 2**31 - 1 if rule.maximum is None else rule.maximum
    if kind in _FLOATS:
        return st.floats(low, high, width=32 if kind == FieldDescriptor.TYPE_FLOAT else 64)
    numbers = st.integers(max(int(low), _lowest(kind)), min(int(high), _highest(kind)))
    return st.one_of(st.just(0), numbers) if rule.zero_is_default else numbers


def _hostile_scalar(field_: FieldDescriptor, rule: Rule) -> st.SearchStrategy[Any]:
    kind = field_.type
    if kind == FieldDescriptor.TYPE_STRING:
        over = st.sampled_from(("x", "é", "\U0001f600")).map(lambda c: c * (rule.max_chars + 1))
        nul = st.tuples(_words(40), st.sampled_from(("\x00", "a\x00", "\x00\x00")), _words(40)).map("".join)
        odd = st.sampled_from(_HOSTILE_TEXT)
        return st.one_of(over, nul, odd, st.text(max_size=24))
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.one_of(st.just(b"x" * (rule.max_bytes + 1)), st.binary(max_size=64))
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_ENUM:
        numbers = [value.number for value in field_.enum_type.values]
        return st.sampled_from((max(numbers) + 1, max(numbers) + 7, -1, 2**31 - 1, -(2**31)))
    edges: list[float] = []
    for bound, step in ((rule.minimum, -1), (rule.maximum, 1)):
        if bound is not None:
            edges += [bound, bound + step]
    if kind in _FLOATS:
        return st.sampled_from((*edges, math.nan, math.inf, -math.inf, -0.0, 1e-45, 3.4e38))
    extremes = [_lowest(kind), _highest(kind), -1, 0]
    return st.sampled_from([int(e) for e in (*edges, *extremes) if _lowest(kind) <= e <= _highest(kind)])


def _lowest(kind: int) -> int:
    if kind in _UNSIGNED:
        return 0
    return -(2**63) if kind in _SIXTY_FOUR else -(2**31)


def _highest(kind: int) -> int:
    bits = 64 if kind in _SIXTY_FOUR else 32
    return int(2**bits - 1 if kind in _UNSIGNED else 2 ** (bits - 1) - 1)


def _timestamp(hostile: bool) -> st.SearchStrategy[dict[str, int]]:
    if not hostile:
        return st.fixed_dictionaries(
            {"seconds": st.integers(0, 4_102_444_800), "nanos": st.integers(0, 999_999_999)}
        )
    seconds = st.sampled_from((-(2**63), 2**63 - 1, -62_135_596_801, 253_402_300_800, 0))
    nanos = st.sampled_from((0, -1, 1_000_000_000, 2**31 - 1))
    return st.fixed_dictionaries({"seconds": seconds, "nanos": nanos})


def _value(field_: FieldDescriptor, depth: int, hostile: bool) -> st.SearchStrategy[Any]:
    """A value for the field: valid, or (``hostile``) breaking the field's rule or on its edge."""
    rule = _rule(field_)
    custom = _FIELD_VALUES.get(field_.full_name)
    if custom is not None and not hostile:
        return custom()
    if _is_map(field_):
        key, value = field_.message_type.fields_by_name["key"], field_.message_type.fields_by_name["value"]
        keys = _words(rule.max_key_chars)
        valid = st.dictionaries(keys, _value(value, depth, False), max_size=min(3, rule.max_items))
        if not hostile:
            return valid
        too_many = st.just({f"k{i}": "v" for i in range(rule.max_items + 1)})
        long_key = st.just({"k" * (rule.max_key_chars + 1): "v"})
        bad_key = _hostile_scalar(key, DEFAULT_RULE).map(lambda k: {k: "v"})
        bad_value = _value(value, depth, True).map(lambda v: {"k": v})
        return st.one_of(too_many, long_key, bad_key, bad_value)
    if field_.type == FieldDescriptor.TYPE_MESSAGE:
        if field_.message_type.full_name == "google.protobuf.Timestamp":
            one: st.SearchStrategy[Any] = _timestamp(hostile)
        else:
            one = _kwargs(field_.message_type, depth + 1, hostile)
    else:
        one = _hostile_scalar(field_, rule) if hostile else _valid_scalar(field_, rule)
    if not field_.is_repeated:
        return one
    if not hostile:
        return st.lists(one, max_size=min(3, rule.max_items))
    valid_item: st.SearchStrategy[Any] = (
        _valid_scalar(field_, rule) if field_.type != FieldDescriptor.TYPE_MESSAGE else st.just({})
    )
    too_long = valid_item.map(lambda item: [item] * (rule.max_items + 1))
    return st.one_of(too_long, st.lists(one, min_size=1, max_size=3))


def _is_map(field_: FieldDescriptor) -> bool:
    return field_.type == FieldDescriptor.TYPE_MESSAGE and bool(field_.message_type.GetOptions().map_entry)


@st.composite
def _kwargs(draw: st.DrawFn, descriptor: Descriptor, depth: int = 0, hostile: bool = False) -> dict[str, Any]:
    """Keyword arguments for a message: most fields set, one field hostile if asked."""
    kwargs: dict[str, Any] = {}
    if depth > 3:
        return kwargs
    in_oneof = {f.name for oneof in descriptor.oneofs for f in oneof.fields}
    for field_ in descriptor.fields:
        if field_.name not in in_oneof and draw(st.integers(0, 7)):
            kwargs[field_.name] = draw(_value(field_, depth, False))
    for oneof in descriptor.oneofs:
        member = draw(st.one_of(st.none(), st.sampled_from(list(oneof.fields))))
        if member is not None:
            kwargs[member.name] = draw(_value(member, depth, False))
    if hostile and descriptor.fields:
        target = draw(st.sampled_from(list(descriptor.fields)))
        if target.containing_oneof is not None:
            for sibling in target.containing_oneof.fields:
                kwargs.pop(sibling.name, None)
        kwargs[target.name] = draw(_value(target, depth, True))
    return kwargs


def _message(rpc: Rpc, *, hostile: bool) -> st.SearchStrategy[bytes]:
    # The stubs also allow upb's Descriptor type; at run time both are protobuf descriptors.
    return _kwargs(cast(Descriptor, rpc.request.DESCRIPTOR), 0, hostile).map(
        lambda kwargs: _serialize(rpc, kwargs)
    )


def _serialize(rpc: Rpc, kwargs: dict[str, Any]) -> bytes:
    message = rpc.request(**kwargs)
    _harmless(message)
    return bytes(message.SerializeToString())


def _harmless(message: Message) -> None:
    """Keep the request from changing the stack or running long (see the module doc)."""
    name = message.DESCRIPTOR.full_name
    fields: Any = message
    if name in ("rag.v1.SystemCleanupRequest", "rag.v1.CleanupCacheRequest"):
        if 0 <= fields.days_old <= _SAFE_DAYS:
            fields.days_old = _SAFE_DAYS
    elif name == "rag.v1.UpdateAllModelsRequest":
        fields.dry_run = True
    elif name == "rag.v1.WarmModelsRequest":
        if all(n in ("embedder", "reranker", "generator") for n in fields.model_names):
            del fields.model_names[:]
            fields.model_names.append("embedder")
    elif name in ("rag.v1.GenerateRequest", "rag.v1.GenerateStreamRequest") and (
        0 <= fields.max_tokens <= 1024 and not 1 <= fields.max_tokens <= _GENERATE_MAX_TOKENS
    ):
        fields.max_tokens = 1 + fields.max_tokens % _GENERATE_MAX_TOKENS


def _is_harmless(rpc: Rpc, data: bytes) -> bool:
    try:
        message = rpc.request.FromString(data)
    except Exception:
        return True  # the server cannot parse it either
    before = bytes(message.SerializeToString(deterministic=True))
    _harmless(message)
    return bytes(message.SerializeToString(deterministic=True)) == before


def _raw(rpc: Rpc) -> st.SearchStrategy[bytes]:
    valid = _message(rpc, hostile=False)
    truncated = st.tuples(valid, st.integers(0, 64)).map(
        lambda pair: pair[0][: max(0, len(pair[0]) - 1 - pair[1])]
    )
    strings = [f for f in rpc.request.DESCRIPTOR.fields if f.type == FieldDescriptor.TYPE_STRING]
    broken_utf8 = st.sampled_from((b"\xed\xa0\x80", b"\x80", b"ab\xffcd", b"\xc3", b"\xf4\x90\x80\x80"))
    kinds = [st.binary(max_size=48), truncated]
    if strings:
        kinds.append(
            st.tuples(valid, st.sampled_from(strings), broken_utf8).map(
                lambda t: t[0] + _length_delimited(t[1].number, t[2])
            )
        )
    return st.one_of(kinds).filter(lambda data: _is_harmless(rpc, data))


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _request(rpc: Rpc) -> st.SearchStrategy[bytes]:
    """Half valid (they reach the servicer and the stores), 30 % hostile, 20 % raw bytes."""
    valid, hostile, raw = _message(rpc, hostile=False), _message(rpc, hostile=True), _raw(rpc)
    return st.integers(0, 9).flatmap(lambda n: valid if n < 5 else hostile if n < 8 else raw)


def _upload(rpc: Rpc) -> st.SearchStrategy[list[bytes]]:
    body = st.lists(_words(1000), min_size=1, max_size=3)
    well_formed = st.tuples(_kwargs(cast(Descriptor, document_pb2.UploadMetadata.DESCRIPTOR)), body).map(
        lambda pair: [
            document_pb2.UploadRequest(metadata=document_pb2.UploadMetadata(**pair[0])).SerializeToString(),
            *(document_pb2.UploadRequest(chunk=text.encode()).SerializeToString() for text in pair[1]),
        ]
    )
    return st.one_of(well_formed, well_formed, st.lists(_request(rpc), max_size=4))


# --- Driver -----------------------------------------------------------------------------------


def fuzz(
    target: str | grpc.Channel,
    examples: int,
    *,
    metadata: Sequence[tuple[str, str]],
    seed_value: int = SEED,
    timeout_s: float = 30.0,
    health_every: int = 25,
) -> FuzzReport:
    """Send ``examples`` generated requests to ``target`` ("host:port", plaintext, or a channel)."""
    if isinstance(target, str):
        with grpc.insecure_channel(target) as channel:
            return fuzz(
                channel,
                examples,
                metadata=metadata,
                seed_value=seed_value,
                timeout_s=timeout_s,
                health_every=health_every,
            )
    channel = target
    report = FuzzReport()
    methods = rpcs()
    # Login (argon2) and Generate (the model) cost most per call: drawn a third as often.
    weighted = [rpc for rpc in methods for _ in range(1 if rpc.path in _SLOW else 3)]
    strategies = {rpc.path: (_upload(rpc) if rpc.client_streaming else _request(rpc)) for rpc in methods}
    health = health_pb2_grpc.HealthStub(channel)

    def check_health() -> None:
        try:
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            report.health[health_pb2.HealthCheckResponse.ServingStatus.Name(status.status)] += 1
        except grpc.RpcError as exc:
            report.health[f"check failed: {exc.code().name}"] += 1

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    @seed(seed_value)
    @given(st.data())
    def one(data: st.DataObject) -> None:
        rpc = data.draw(st.sampled_from(weighted))
        request = data.draw(strategies[rpc.path])
        began = time.perf_counter()
        code, details = _call(channel, rpc, request, metadata, timeout_s)
        report.seconds[rpc.path] = report.seconds.get(rpc.path, 0.0) + time.perf_counter() - began
        report.examples += 1
        report.codes[code] += 1
        report.by_method.setdefault(rpc.path, Counter())[code] += 1
        if code in SERVER_ERRORS:
            report.failures.append(Failure(rpc.path, code, details, _describe(request)))
        if report.examples % health_every == 0:
            check_health()

    one()
    check_health()
    return report


def _call(
    channel: grpc.Channel, rpc: Rpc, request: Any, metadata: Sequence[tuple[str, str]], timeout_s: float
) -> tuple[str, str]:
    """The status name and details of one call (requests and responses stay raw bytes)."""
    try:
        if rpc.client_streaming:
            channel.stream_unary(rpc.path)(iter(request), metadata=tuple(metadata), timeout=timeout_s)
        elif rpc.server_streaming:
            stream: Iterator[Any] = channel.unary_stream(rpc.path)(
                request, metadata=tuple(metadata), timeout=timeout_s
            )
            for _ in stream:
                pass
        else:
            channel.unary_unary(rpc.path)(request, metadata=tuple(metadata), timeout=timeout_s)
    except grpc.RpcError as exc:
        return exc.code().name, exc.details() or ""
    return "OK", ""


def _describe(request: object) -> str:
    text = repr(request)
    return text if len(text) <= 300 else text[:297] + "..."


def summary(report: FuzzReport) -> str:
    """Counts by status code, one line: ``OK 812, INVALID_ARGUMENT 1104, NOT_FOUND 84``."""
    return ", ".join(f"{code} {count}" for code, count in report.codes.most_common())
