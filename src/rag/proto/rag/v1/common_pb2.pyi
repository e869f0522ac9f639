import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DocumentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOCUMENT_STATUS_UNSPECIFIED: _ClassVar[DocumentStatus]
    DOCUMENT_STATUS_RECEIVED: _ClassVar[DocumentStatus]
    DOCUMENT_STATUS_PARSED: _ClassVar[DocumentStatus]
    DOCUMENT_STATUS_CHUNKED: _ClassVar[DocumentStatus]
    DOCUMENT_STATUS_EMBEDDED: _ClassVar[DocumentStatus]
    DOCUMENT_STATUS_INDEXED: _ClassVar[DocumentStatus]
    DOCUMENT_STATUS_QUARANTINED: _ClassVar[DocumentStatus]
DOCUMENT_STATUS_UNSPECIFIED: DocumentStatus
DOCUMENT_STATUS_RECEIVED: DocumentStatus
DOCUMENT_STATUS_PARSED: DocumentStatus
DOCUMENT_STATUS_CHUNKED: DocumentStatus
DOCUMENT_STATUS_EMBEDDED: DocumentStatus
DOCUMENT_STATUS_INDEXED: DocumentStatus
DOCUMENT_STATUS_QUARANTINED: DocumentStatus

class SearchFilters(_message.Message):
    __slots__ = ("document_ids", "metadata", "created_after", "created_before")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DOCUMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    document_ids: _containers.RepeatedScalarFieldContainer[str]
    metadata: _containers.ScalarMap[str, str]
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    def __init__(self, document_ids: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SearchResult(_message.Message):
    __slots__ = ("chunk_id", "document_id", "document_title", "text", "page", "score", "char_start", "char_end", "heading")
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TITLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CHAR_START_FIELD_NUMBER: _ClassVar[int]
    CHAR_END_FIELD_NUMBER: _ClassVar[int]
    HEADING_FIELD_NUMBER: _ClassVar[int]
    chunk_id: int
    document_id: str
    document_title: str
    text: str
    page: int
    score: float
    char_start: int
    char_end: int
    heading: str
    def __init__(self, chunk_id: _Optional[int] = ..., document_id: _Optional[str] = ..., document_title: _Optional[str] = ..., text: _Optional[str] = ..., page: _Optional[int] = ..., score: _Optional[float] = ..., char_start: _Optional[int] = ..., char_end: _Optional[int] = ..., heading: _Optional[str] = ...) -> None: ...

class Citation(_message.Message):
    __slots__ = ("chunk_id", "document_id", "document_title", "page", "quote", "char_start", "char_end", "support")
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TITLE_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    CHAR_START_FIELD_NUMBER: _ClassVar[int]
    CHAR_END_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_FIELD_NUMBER: _ClassVar[int]
    chunk_id: int
    document_id: str
    document_title: str
    page: int
    quote: str
    char_start: int
    char_end: int
    support: float
    def __init__(self, chunk_id: _Optional[int] = ..., document_id: _Optional[str] = ..., document_title: _Optional[str] = ..., page: _Optional[int] = ..., quote: _Optional[str] = ..., char_start: _Optional[int] = ..., char_end: _Optional[int] = ..., support: _Optional[float] = ...) -> None: ...
