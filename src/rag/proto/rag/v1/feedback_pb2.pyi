import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GradeResultRequest(_message.Message):
    __slots__ = ("query", "document_id", "chunk_id", "grade")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    GRADE_FIELD_NUMBER: _ClassVar[int]
    query: str
    document_id: str
    chunk_id: int
    grade: int
    def __init__(self, query: _Optional[str] = ..., document_id: _Optional[str] = ..., chunk_id: _Optional[int] = ..., grade: _Optional[int] = ...) -> None: ...

class GradeResultResponse(_message.Message):
    __slots__ = ("query_key", "document_id", "grade", "labelled_at")
    QUERY_KEY_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    GRADE_FIELD_NUMBER: _ClassVar[int]
    LABELLED_AT_FIELD_NUMBER: _ClassVar[int]
    query_key: str
    document_id: str
    grade: int
    labelled_at: _timestamp_pb2.Timestamp
    def __init__(self, query_key: _Optional[str] = ..., document_id: _Optional[str] = ..., grade: _Optional[int] = ..., labelled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
