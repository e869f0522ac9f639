from rag.proto.rag.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FinishReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINISH_REASON_UNSPECIFIED: _ClassVar[FinishReason]
    FINISH_REASON_STOP: _ClassVar[FinishReason]
    FINISH_REASON_LENGTH: _ClassVar[FinishReason]
    FINISH_REASON_NO_CONTEXT: _ClassVar[FinishReason]
FINISH_REASON_UNSPECIFIED: FinishReason
FINISH_REASON_STOP: FinishReason
FINISH_REASON_LENGTH: FinishReason
FINISH_REASON_NO_CONTEXT: FinishReason

class Usage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "context_chunks")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    context_chunks: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., context_chunks: _Optional[int] = ...) -> None: ...

class GenerationSummary(_message.Message):
    __slots__ = ("usage", "finish_reason", "generator_model_version", "embedding_model_version", "took_ms")
    USAGE_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOOK_MS_FIELD_NUMBER: _ClassVar[int]
    usage: Usage
    finish_reason: FinishReason
    generator_model_version: str
    embedding_model_version: str
    took_ms: float
    def __init__(self, usage: _Optional[_Union[Usage, _Mapping]] = ..., finish_reason: _Optional[_Union[FinishReason, str]] = ..., generator_model_version: _Optional[str] = ..., embedding_model_version: _Optional[str] = ..., took_ms: _Optional[float] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("question", "top_k", "max_tokens", "temperature", "filters", "strict", "quotes_only")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    QUOTES_ONLY_FIELD_NUMBER: _ClassVar[int]
    question: str
    top_k: int
    max_tokens: int
    temperature: float
    filters: _common_pb2.SearchFilters
    strict: bool
    quotes_only: bool
    def __init__(self, question: _Optional[str] = ..., top_k: _Optional[int] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., filters: _Optional[_Union[_common_pb2.SearchFilters, _Mapping]] = ..., strict: _Optional[bool] = ..., quotes_only: _Optional[bool] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("answer", "citations", "summary", "grounding")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    GROUNDING_FIELD_NUMBER: _ClassVar[int]
    answer: str
    citations: _containers.RepeatedCompositeFieldContainer[_common_pb2.Citation]
    summary: GenerationSummary
    grounding: Grounding
    def __init__(self, answer: _Optional[str] = ..., citations: _Optional[_Iterable[_Union[_common_pb2.Citation, _Mapping]]] = ..., summary: _Optional[_Union[GenerationSummary, _Mapping]] = ..., grounding: _Optional[_Union[Grounding, _Mapping]] = ...) -> None: ...

class AnswerSentence(_message.Message):
    __slots__ = ("text", "char_start", "char_end", "support", "supported", "evidence")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CHAR_START_FIELD_NUMBER: _ClassVar[int]
    CHAR_END_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_FIELD_NUMBER: _ClassVar[int]
    SUPPORTED_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    text: str
    char_start: int
    char_end: int
    support: float
    supported: bool
    evidence: _common_pb2.Citation
    def __init__(self, text: _Optional[str] = ..., char_start: _Optional[int] = ..., char_end: _Optional[int] = ..., support: _Optional[float] = ..., supported: _Optional[bool] = ..., evidence: _Optional[_Union[_common_pb2.Citation, _Mapping]] = ...) -> None: ...

class Grounding(_message.Message):
    __slots__ = ("answer", "sentences", "grounded_fraction", "extractive", "dropped_sentences", "threshold", "verifier_model_version")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    SENTENCES_FIELD_NUMBER: _ClassVar[int]
    GROUNDED_FRACTION_FIELD_NUMBER: _ClassVar[int]
    EXTRACTIVE_FIELD_NUMBER: _ClassVar[int]
    DROPPED_SENTENCES_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    answer: str
    sentences: _containers.RepeatedCompositeFieldContainer[AnswerSentence]
    grounded_fraction: float
    extractive: bool
    dropped_sentences: int
    threshold: float
    verifier_model_version: str
    def __init__(self, answer: _Optional[str] = ..., sentences: _Optional[_Iterable[_Union[AnswerSentence, _Mapping]]] = ..., grounded_fraction: _Optional[float] = ..., extractive: _Optional[bool] = ..., dropped_sentences: _Optional[int] = ..., threshold: _Optional[float] = ..., verifier_model_version: _Optional[str] = ...) -> None: ...

class GenerateStreamRequest(_message.Message):
    __slots__ = ("question", "top_k", "max_tokens", "temperature", "filters", "strict", "quotes_only")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    QUOTES_ONLY_FIELD_NUMBER: _ClassVar[int]
    question: str
    top_k: int
    max_tokens: int
    temperature: float
    filters: _common_pb2.SearchFilters
    strict: bool
    quotes_only: bool
    def __init__(self, question: _Optional[str] = ..., top_k: _Optional[int] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., filters: _Optional[_Union[_common_pb2.SearchFilters, _Mapping]] = ..., strict: _Optional[bool] = ..., quotes_only: _Optional[bool] = ...) -> None: ...

class CitationList(_message.Message):
    __slots__ = ("citations",)
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    citations: _containers.RepeatedCompositeFieldContainer[_common_pb2.Citation]
    def __init__(self, citations: _Optional[_Iterable[_Union[_common_pb2.Citation, _Mapping]]] = ...) -> None: ...

class GenerateStreamResponse(_message.Message):
    __slots__ = ("token", "citations", "summary", "grounding")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    GROUNDING_FIELD_NUMBER: _ClassVar[int]
    token: str
    citations: CitationList
    summary: GenerationSummary
    grounding: Grounding
    def __init__(self, token: _Optional[str] = ..., citations: _Optional[_Union[CitationList, _Mapping]] = ..., summary: _Optional[_Union[GenerationSummary, _Mapping]] = ..., grounding: _Optional[_Union[Grounding, _Mapping]] = ...) -> None: ...
