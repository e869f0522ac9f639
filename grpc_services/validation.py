"""One validation layer for every RPC: the limits of every request field, checked before a servicer runs.

A small walker over the protobuf descriptors, applied to every request message by
:class:`grpc_services.interceptors.validation.ValidationInterceptor` (each message of a
client stream too). Every string field is refused when it holds a NUL character or a lone
surrogate, every enum field when it holds a number the enum does not define, every float when
it is not finite, every ``google.protobuf.Timestamp`` outside 0001-01-01..9999-12-31. Lengths,
item counts and numeric ranges come from :data:`RULES`, one entry per field (full name), with
defaults for the fields it does not list. A violation raises
:class:`~rag.core.errors.InvalidInput` naming the field by its path (``filters.metadata``,
``model_names[2]``); the proto comments state the same limits.

A request that does not even parse (truncated, corrupt, invalid UTF-8 in a string field)
becomes an :class:`Undecodable` through :func:`lenient_deserializer` and is refused here too,
naming the field whose UTF-8 is broken when the wire format says which.

Why not buf's protovalidate (it installs and runs with our protobuf pin): its rules are
annotations on each field, with no NUL or surrogate rule of its own (a CEL expression per string
field), so a field added without one goes unchecked; it also brings buf/validate/validate.proto
into the proto build and a native extension. This walker checks every field of every message,
new ones included, with the limits in one Python table the servicers import.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from rag.core.auth import MAX_USERNAME_CHARS
from rag.core.authentication import MAX_PASSWORD_CHARS
from rag.core.documents import (
    MAX_METADATA_KEY_CHARS,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE_CHARS,
    MAX_TITLE_CHARS,
)
from rag.core.errors import InvalidInput
from rag.core.labels import MAX_GRADE, MIN_GRADE
from rag.core.search import MAX_QUERY_CHARS, MAX_TOP_K
from rag.generation.service import MAX_TEMPERATURE, MAX_TOKENS_LIMIT

# Limits of the API itself (no domain code owns them); the servicers read them from here.
MAX_PAGE_SIZE = 200
MAX_DAYS_OLD = 3650
MAX_UPLOAD_CHUNK_BYTES = 4 * 1024 * 1024
MAX_DOCUMENT_ID_CHARS = 64  # a UUID in any spelling uuid.UUID accepts
MAX_FILTER_DOCUMENT_IDS = 1000

# Fields RULES does not name.
DEFAULT_MAX_CHARS = 4096
DEFAULT_MAX_BYTES = 64 * 1024
DEFAULT_MAX_ITEMS = 100
MAX_DEPTH = 32  # nested messages (ours nest 3 deep; grpc's reflection a few more)


@dataclass(frozen=True, slots=True)
class Rule:
    """The limits of one field. For a repeated field ``max_chars``/``max_bytes``/the range apply
    to each item and ``max_items`` to the count; for a map, ``max_items`` counts the keys and
    ``max_key_chars``/``max_chars`` bound each key and value."""

    max_chars: int = DEFAULT_MAX_CHARS
    max_bytes: int = DEFAULT_MAX_BYTES
    max_items: int = DEFAULT_MAX_ITEMS
    max_key_chars: int = DEFAULT_MAX_CHARS
    minimum: float | None = None
    maximum: float | None = None
    # proto3 cannot tell 0 from unset: 0 asks for the server's default and skips the range.
    zero_is_default: bool = False


DEFAULT_RULE = Rule()

_TOP_K = Rule(minimum=1, maximum=MAX_TOP_K, zero_is_default=True)
_DAYS_OLD = Rule(minimum=1, maximum=MAX_DAYS_OLD, zero_is_default=True)
_METADATA = Rule(
    max_items=MAX_METADATA_KEYS, max_key_chars=MAX_METADATA_KEY_CHARS, max_chars=MAX_METADATA_VALUE_CHARS
)
_DOCUMENT_ID = Rule(max_chars=MAX_DOCUMENT_ID_CHARS)
_GENERATION = {
    "question": Rule(max_chars=MAX_QUERY_CHARS),
    "top_k": _TOP_K,
    "max_tokens": Rule(minimum=1, maximum=MAX_TOKENS_LIMIT, zero_is_default=True),
    "temperature": Rule(minimum=0.0, maximum=MAX_TEMPERATURE),
}

# The one table of per-field limits, by field full name. Keep protos/rag/v1/*.proto in step.
RULES: Mapping[str, Rule] = {
    "rag.v1.SearchRequest.query": Rule(max_chars=MAX_QUERY_CHARS),
    "rag.v1.SearchRequest.top_k": _TOP_K,
    "rag.v1.SearchFilters.document_ids": Rule(
        max_items=MAX_FILTER_DOCUMENT_IDS, max_chars=MAX_DOCUMENT_ID_CHARS
    ),
    "rag.v1.SearchFilters.metadata": _METADATA,
    **{f"rag.v1.GenerateRequest.{name}": rule for name, rule in _GENERATION.items()},
    **{f"rag.v1.GenerateStreamRequest.{name}": rule for name, rule in _GENERATION.items()},
    "rag.v1.UploadMetadata.filename": Rule(max_chars=255),
    "rag.v1.UploadMetadata.title": Rule(max_chars=MAX_TITLE_CHARS),
    "rag.v1.UploadMetadata.mime_type": Rule(max_chars=255),
    "rag.v1.UploadMetadata.metadata": _METADATA,
    "rag.v1.UploadRequest.chunk": Rule(max_bytes=MAX_UPLOAD_CHUNK_BYTES),
    "rag.v1.GetDocumentRequest.document_id": _DOCUMENT_ID,
    "rag.v1.GradeResultRequest.query": Rule(max_chars=MAX_QUERY_CHARS),
    "rag.v1.GradeResultRequest.document_id": _DOCUMENT_ID,
    "rag.v1.GradeResultRequest.chunk_id": Rule(minimum=1, zero_is_default=True),
    "rag.v1.GradeResultRequest.grade": Rule(minimum=MIN_GRADE, maximum=MAX_GRADE),
    "rag.v1.DeleteDocumentRequest.document_id": _DOCUMENT_ID,
    "rag.v1.ListDocumentsRequest.page_size": Rule(minimum=1, maximum=MAX_PAGE_SIZE, zero_is_default=True),
    "rag.v1.LoginRequest.username": Rule(max_chars=MAX_USERNAME_CHARS),
    "rag.v1.LoginRequest.password": Rule(max_chars=MAX_PASSWORD_CHARS),
    "rag.v1.WarmModelsRequest.model_names": Rule(max_items=16, max_chars=64),
    "rag.v1.SystemCleanupRequest.days_old": _DAYS_OLD,
    "rag.v1.CleanupCacheRequest.days_old": _DAYS_OLD,
}

# google.protobuf.Timestamp's own range (RFC 3339 years 1..9999).
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799
_SURROGATE = re.compile("[\ud800-\udfff]")
_FLOATS = frozenset({FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE})


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A request the server could not parse; :func:`validate` refuses it."""

    descriptor: Descriptor | None
    data: bytes


def lenient_deserializer(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """``deserialize`` returning an :class:`Undecodable` instead of raising.

    grpc.aio answers UNKNOWN when a deserializer raises, before any interceptor runs; this way
    the refusal reaches the validation layer and becomes INVALID_ARGUMENT.
    """
    if deserialize is None:
        return None
    message_class = getattr(deserialize, "__self__", None)
    descriptor = getattr(message_class, "DESCRIPTOR", None)
    parse = deserialize  # bound for the closure (mypy cannot narrow inside it)

    def lenient(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception:  # DecodeError, or anything else a parser throws at garbage
            return Undecodable(descriptor if isinstance(descriptor, Descriptor) else None, data)

    return lenient


def validate(request: object) -> None:
    """Raise :class:`InvalidInput` naming the first field of ``request`` that breaks a rule."""
    if isinstance(request, Undecodable):
        raise _undecodable(request)
    if isinstance(request, Message):
        _message(request, "", 0)


def _path(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _message(message: Message, prefix: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidInput(f"messages nest deeper than {MAX_DEPTH} levels", field=prefix or None)
    descriptor = message.DESCRIPTOR
    if descriptor.full_name == "google.protobuf.Timestamp":
        _timestamp(message, prefix)
        return
    for field, value in message.ListFields():
        path = _path(prefix, field.name)
        rule = RULES.get(field.full_name, DEFAULT_RULE)
        if _is_map(field):
            _map(field, value, rule, path, depth)
        elif field.is_repeated:
            if len(value) > rule.max_items:
                raise InvalidInput(
                    f"has {len(value)} items; at most {rule.max_items} are allowed", field=path
                )
            for index, item in enumerate(value):
                _value(field, item, rule, f"{path}[{index}]", depth)
        else:
            _value(field, value, rule, path, depth)


def _is_map(field: FieldDescriptor) -> bool:
    return (
        field.type == FieldDescriptor.TYPE_MESSAGE
        and field.is_repeated
        and bool(field.message_type.GetOptions().map_entry)
    )


def _map(field: FieldDescriptor, value: Any, rule: Rule, path: str, depth: int) -> None:
    if len(value) > rule.max_items:
        raise InvalidInput(f"has {len(value)} keys; at most {rule.max_items} are allowed", field=path)
    key_field = field.message_type.fields_by_name["key"]
    value_field = field.message_type.fields_by_name["value"]
    for key, item in value.items():
        if key_field.type == FieldDescriptor.TYPE_STRING:
            _text(key, rule.max_key_chars, path, what="a key")
        shown = f"{path}[{key!r}]" if len(str(key)) <= 64 else f"{path}[{str(key)[:61]!r}...]"
        _value(value_field, item, rule, shown, depth)


def _value(field: FieldDescriptor, value: Any, rule: Rule, path: str, depth: int) -> None:
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        _message(value, path, depth + 1)
    elif kind == FieldDescriptor.TYPE_STRING:
        _text(value, rule.max_chars, path)
    elif kind == FieldDescriptor.TYPE_BYTES:
        if len(value) > rule.max_bytes:
            raise InvalidInput(f"is {len(value)} bytes; at most {rule.max_bytes} are allowed", field=path)
    elif kind == FieldDescriptor.TYPE_ENUM:
        if field.enum_type.values_by_number.get(value) is None:
            names = ", ".join(v.name for v in field.enum_type.values)
            raise InvalidInput(
                f"{value} is not a {field.enum_type.name} value; use one of {names}", field=path
            )
    elif kind == FieldDescriptor.TYPE_BOOL:
        return
    else:
        if kind in _FLOATS and not math.isfinite(value):
            raise InvalidInput(f"must be a finite number, got {value}", field=path)
        _range(value, rule, path)


def _range(value: float, rule: Rule, path: str) -> None:
    if rule.zero_is_default and value == 0:
        return
    low, high = rule.minimum, rule.maximum
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (
            f"between {low:g} and {high:g}"
            if low is not None and high is not None
            else f"at least {low:g}"
            if low is not None
            else f"at most {high:g}"
        )
        default = " (or 0 for the default)" if rule.zero_is_default else ""
        raise InvalidInput(f"must be {bounds}{default}, got {value:g}", field=path)


def _text(value: str, max_chars: int, path: str, *, what: str = "") -> None:
    subject = f"{what} " if what else ""
    if "\x00" in value:
        raise InvalidInput(f"{subject}contains a NUL character (U+0000); remove it", field=path)
    surrogate = _SURROGATE.search(value)
    if surrogate:
        raise InvalidInput(
            f"{subject}contains a lone surrogate (U+{ord(surrogate.group()):04X}); send valid Unicode text",
            field=path,
        )
    if len(value) > max_chars:
        raise InvalidInput(
            f"{subject}is {len(value)} characters; at most {max_chars} are allowed", field=path
        )


def _timestamp(message: Message, path: str) -> None:
    seconds, nanos = getattr(message, "seconds", 0), getattr(message, "nanos", 0)
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
        raise InvalidInput(
            f"{seconds} seconds is outside 0001-01-01..9999-12-31 (seconds {_MIN_SECONDS}..{_MAX_SECONDS})",
            field=path or None,
        )
    if not 0 <= nanos <= 999_999_999:
        raise InvalidInput(f"nanos must be between 0 and 999999999, got {nanos}", field=path or None)


def _undecodable(request: Undecodable) -> InvalidInput:
    name = request.descriptor.full_name if request.descriptor is not None else "request"
    if request.descriptor is not None:
        broken = _broken_utf8(request.data, request.descriptor, "", 0)
        if broken is not None:
            return InvalidInput(
                "is not valid UTF-8 (a lone surrogate or a broken byte sequence); send UTF-8 text",
                field=broken,
            )
    return InvalidInput(
        f"the request is not a valid {name} message (truncated or corrupt bytes); "
        "serialize it with the rag.v1 protos"
    )


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while pos < len(data) and shift < 70:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise ValueError("truncated varint")


def _broken_utf8(data: bytes, descriptor: Descriptor, prefix: str, depth: int) -> str | None:
    """The path of a string field whose bytes are not UTF-8, read from the wire format;
    ``None`` when there is none, or the bytes are too broken to tell."""
    if depth > MAX_DEPTH:
        return None
    pos = 0
    try:
        while pos < len(data):
            key, pos = _varint(data, pos)
            number, wire_type = key >> 3, key & 7
            if wire_type == 0:
                _, pos = _varint(data, pos)
            elif wire_type in (1, 5):
                pos += 8 if wire_type == 1 else 4
            elif wire_type == 2:
                length, pos = _varint(data, pos)
                payload, pos = data[pos : pos + length], pos + length
                field = descriptor.fields_by_number.get(number)
                if field is None:
                    continue
                path = _path(prefix, field.name)
                if field.type == FieldDescriptor.TYPE_STRING:
                    try:
                        payload.decode("utf-8")
                    except UnicodeDecodeError:
                        return path
                elif field.type == FieldDescriptor.TYPE_MESSAGE:
                    inner = "" if field.message_type.GetOptions().map_entry else path
                    found = _broken_utf8(payload, field.message_type, inner, depth + 1)
                    if found is not None:
                        return path if not inner else found
            else:
                return None
    except ValueError:
        return None
    return None
