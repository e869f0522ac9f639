from rag.proto.rag.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SystemCleanupRequest(_message.Message):
    __slots__ = ("days_old",)
    DAYS_OLD_FIELD_NUMBER: _ClassVar[int]
    days_old: int
    def __init__(self, days_old: _Optional[int] = ...) -> None: ...

class SystemCleanupResponse(_message.Message):
    __slots__ = ("deleted",)
    class DeletedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: _containers.ScalarMap[str, int]
    def __init__(self, deleted: _Optional[_Mapping[str, int]] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DocumentStatusCount(_message.Message):
    __slots__ = ("status", "count")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.DocumentStatus
    count: int
    def __init__(self, status: _Optional[_Union[_common_pb2.DocumentStatus, str]] = ..., count: _Optional[int] = ...) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("documents_by_status", "documents_total", "chunks_total", "queries_total", "queries_last_24h", "cache_hit_rate", "embedding_model_version")
    DOCUMENTS_BY_STATUS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    QUERIES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    QUERIES_LAST_24H_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_RATE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    documents_by_status: _containers.RepeatedCompositeFieldContainer[DocumentStatusCount]
    documents_total: int
    chunks_total: int
    queries_total: int
    queries_last_24h: int
    cache_hit_rate: float
    embedding_model_version: str
    def __init__(self, documents_by_status: _Optional[_Iterable[_Union[DocumentStatusCount, _Mapping]]] = ..., documents_total: _Optional[int] = ..., chunks_total: _Optional[int] = ..., queries_total: _Optional[int] = ..., queries_last_24h: _Optional[int] = ..., cache_hit_rate: _Optional[float] = ..., embedding_model_version: _Optional[str] = ...) -> None: ...
