from rag.proto.rag.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEARCH_MODE_UNSPECIFIED: _ClassVar[SearchMode]
    SEARCH_MODE_DENSE: _ClassVar[SearchMode]
    SEARCH_MODE_FULLTEXT: _ClassVar[SearchMode]
    SEARCH_MODE_HYBRID: _ClassVar[SearchMode]
SEARCH_MODE_UNSPECIFIED: SearchMode
SEARCH_MODE_DENSE: SearchMode
SEARCH_MODE_FULLTEXT: SearchMode
SEARCH_MODE_HYBRID: SearchMode

class SearchRequest(_message.Message):
    __slots__ = ("query", "top_k", "filters", "rerank", "mode")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    RERANK_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    query: str
    top_k: int
    filters: _common_pb2.SearchFilters
    rerank: bool
    mode: SearchMode
    def __init__(self, query: _Optional[str] = ..., top_k: _Optional[int] = ..., filters: _Optional[_Union[_common_pb2.SearchFilters, _Mapping]] = ..., rerank: _Optional[bool] = ..., mode: _Optional[_Union[SearchMode, str]] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("results", "embedding_model_version", "cache_hit", "took_ms")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    TOOK_MS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[_common_pb2.SearchResult]
    embedding_model_version: str
    cache_hit: bool
    took_ms: float
    def __init__(self, results: _Optional[_Iterable[_Union[_common_pb2.SearchResult, _Mapping]]] = ..., embedding_model_version: _Optional[str] = ..., cache_hit: _Optional[bool] = ..., took_ms: _Optional[float] = ...) -> None: ...
