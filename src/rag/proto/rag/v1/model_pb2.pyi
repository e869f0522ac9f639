import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_KIND_UNSPECIFIED: _ClassVar[ModelKind]
    MODEL_KIND_EMBEDDER: _ClassVar[ModelKind]
    MODEL_KIND_RERANKER: _ClassVar[ModelKind]
    MODEL_KIND_GENERATOR: _ClassVar[ModelKind]

class TritonModelState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRITON_MODEL_STATE_UNSPECIFIED: _ClassVar[TritonModelState]
    TRITON_MODEL_STATE_NOT_LOADED: _ClassVar[TritonModelState]
    TRITON_MODEL_STATE_LOADING: _ClassVar[TritonModelState]
    TRITON_MODEL_STATE_READY: _ClassVar[TritonModelState]
    TRITON_MODEL_STATE_UNLOADING: _ClassVar[TritonModelState]
    TRITON_MODEL_STATE_UNAVAILABLE: _ClassVar[TritonModelState]
MODEL_KIND_UNSPECIFIED: ModelKind
MODEL_KIND_EMBEDDER: ModelKind
MODEL_KIND_RERANKER: ModelKind
MODEL_KIND_GENERATOR: ModelKind
TRITON_MODEL_STATE_UNSPECIFIED: TritonModelState
TRITON_MODEL_STATE_NOT_LOADED: TritonModelState
TRITON_MODEL_STATE_LOADING: TritonModelState
TRITON_MODEL_STATE_READY: TritonModelState
TRITON_MODEL_STATE_UNLOADING: TritonModelState
TRITON_MODEL_STATE_UNAVAILABLE: TritonModelState

class ModelVersion(_message.Message):
    __slots__ = ("version", "aliases", "created_at", "run_id")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    version: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    created_at: _timestamp_pb2.Timestamp
    run_id: str
    def __init__(self, version: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., run_id: _Optional[str] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("name", "kind", "registered_model", "versions", "aliases", "triton_state", "triton_version", "triton_reason", "serving_version")
    class AliasesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    TRITON_STATE_FIELD_NUMBER: _ClassVar[int]
    TRITON_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRITON_REASON_FIELD_NUMBER: _ClassVar[int]
    SERVING_VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: ModelKind
    registered_model: str
    versions: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    aliases: _containers.ScalarMap[str, str]
    triton_state: TritonModelState
    triton_version: str
    triton_reason: str
    serving_version: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[ModelKind, str]] = ..., registered_model: _Optional[str] = ..., versions: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ..., aliases: _Optional[_Mapping[str, str]] = ..., triton_state: _Optional[_Union[TritonModelState, str]] = ..., triton_version: _Optional[str] = ..., triton_reason: _Optional[str] = ..., serving_version: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ...) -> None: ...

class WarmModelsRequest(_message.Message):
    __slots__ = ("model_names",)
    MODEL_NAMES_FIELD_NUMBER: _ClassVar[int]
    model_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model_names: _Optional[_Iterable[str]] = ...) -> None: ...

class ModelWarmResult(_message.Message):
    __slots__ = ("name", "ready", "message", "took_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TOOK_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    ready: bool
    message: str
    took_ms: float
    def __init__(self, name: _Optional[str] = ..., ready: _Optional[bool] = ..., message: _Optional[str] = ..., took_ms: _Optional[float] = ...) -> None: ...

class WarmModelsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ModelWarmResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ModelWarmResult, _Mapping]]] = ...) -> None: ...

class CleanupCacheRequest(_message.Message):
    __slots__ = ("days_old",)
    DAYS_OLD_FIELD_NUMBER: _ClassVar[int]
    days_old: int
    def __init__(self, days_old: _Optional[int] = ...) -> None: ...

class CleanupCacheResponse(_message.Message):
    __slots__ = ("entries_removed", "bytes_freed")
    ENTRIES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    BYTES_FREED_FIELD_NUMBER: _ClassVar[int]
    entries_removed: int
    bytes_freed: int
    def __init__(self, entries_removed: _Optional[int] = ..., bytes_freed: _Optional[int] = ...) -> None: ...

class UpdateAllModelsRequest(_message.Message):
    __slots__ = ("dry_run",)
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    def __init__(self, dry_run: _Optional[bool] = ...) -> None: ...

class ModelUpdate(_message.Message):
    __slots__ = ("name", "from_version", "to_version", "changed", "error")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    from_version: str
    to_version: str
    changed: bool
    error: str
    def __init__(self, name: _Optional[str] = ..., from_version: _Optional[str] = ..., to_version: _Optional[str] = ..., changed: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class UpdateAllModelsResponse(_message.Message):
    __slots__ = ("updates",)
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    updates: _containers.RepeatedCompositeFieldContainer[ModelUpdate]
    def __init__(self, updates: _Optional[_Iterable[_Union[ModelUpdate, _Mapping]]] = ...) -> None: ...
