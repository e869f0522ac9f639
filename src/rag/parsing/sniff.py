"""Decide a document's type from its first bytes, and decode text formats.

:func:`sniff_prefix` is what the API runs on untrusted bytes: magic numbers plus a look at the
first :data:`SNIFF_PREFIX_BYTES`, in time linear in that prefix (simple scans and regular
expressions without nested quantifiers, each over a bounded slice). Decoding a whole text and
checking a whole archive (:func:`sniff`) happen in the parser worker only.
"""

from __future__ import annotations

import codecs
import enum
import io
import itertools
import re
import zipfile

from rag.core.errors import UnprocessableDocument
from rag.parsing.limits import ParseLimits

SUPPORTED = "PDF, DOCX, HTML, Markdown or plain text"
# How many leading bytes decide the type; a shorter prefix is the whole document.
SNIFF_PREFIX_BYTES = 64 * 1024

_HTML_HEAD_CHARS = 4096  # where HTML tags are counted
_MARKDOWN_HEAD_CHARS = 20_000  # where Markdown lines are counted
# Bytes that never occur in text (NUL and C0 controls other than \t \n \f \r, and DEL).
_CONTROL_BYTES = bytes([*range(0, 9), 11, *range(14, 32), 127])
_CONTROL_CHARS = dict.fromkeys(_CONTROL_BYTES)  # str.translate table deleting them
# An HTML tag name and, optionally, attributes up to the next '<' or '>': each start scans at
# most to the next angle bracket, so a whole search is linear.
_HTML_TAG = re.compile(r"<(?:p|div|h[1-6]|ul|ol|li|table|br|a|span)(?:\s[^<>]*)?>", re.I)
_SPACE = re.compile(r"\s*")
_MD_HEADING = re.compile(r"#{1,6}[ \t]+\S")
_MD_ORDERED = re.compile(r"\d{1,9}\.[ \t]+\S")
_OOXML_NAMES = ("[Content_Types].xml", "_rels/.rels")  # the parts every OOXML package has


class Kind(enum.StrEnum):
    PDF = "application/pdf"
    DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    HTML = "text/html"
    MARKDOWN = "text/markdown"
    TEXT = "text/plain"


def _binary() -> UnprocessableDocument:
    return UnprocessableDocument(f"binary content that is not a supported format ({SUPPORTED})")


def sniff_prefix(prefix: bytes) -> Kind:
    """The document's kind from its first bytes (only the first ``SNIFF_PREFIX_BYTES`` are read).

    A prefix shorter than ``SNIFF_PREFIX_BYTES`` is taken to be the whole document. A ZIP is
    accepted as DOCX when its first entries are those of an Office Open XML package; the
    parser worker checks the whole archive. Raises :class:`UnprocessableDocument` (its message
    says what is supported) for empty, blank or binary content.
    """
    head = prefix[:SNIFF_PREFIX_BYTES]
    if not head:
        raise UnprocessableDocument(f"empty document (0 bytes): upload a {SUPPORTED} file")
    if head.startswith(b"%PDF-"):
        return Kind.PDF
    if head.startswith(b"PK\x03\x04"):
        if _zip_names_docx(head):
            return Kind.DOCX
        raise UnprocessableDocument(f"a ZIP archive that is not a DOCX document (supported: {SUPPORTED})")
    text = _decode_prefix(head, whole=len(prefix) < SNIFF_PREFIX_BYTES)
    if not text.strip():
        if len(prefix) < SNIFF_PREFIX_BYTES:
            raise UnprocessableDocument(f"document holds only whitespace: upload a {SUPPORTED} file")
        raise UnprocessableDocument(
            f"document starts with {SNIFF_PREFIX_BYTES // 1024} KiB of whitespace: upload a {SUPPORTED} file"
        )
    return _text_kind(text)


def _zip_names_docx(head: bytes) -> bool:
    """Whether the local file headers within ``head`` name Office Open XML or WordprocessingML parts."""
    offset = 0
    while offset + 30 <= len(head) and head.startswith(b"PK\x03\x04", offset):
        flags = int.from_bytes(head[offset + 6 : offset + 8], "little")
        packed = int.from_bytes(head[offset + 18 : offset + 22], "little")
        name_length = int.from_bytes(head[offset + 26 : offset + 28], "little")
        extra_length = int.from_bytes(head[offset + 28 : offset + 30], "little")
        name = head[offset + 30 : offset + 30 + name_length].decode("cp437")
        if name in _OOXML_NAMES or name.startswith("word/"):
            return True
        if flags & 0x08 or packed == 0xFFFFFFFF:  # size after the data, or in a ZIP64 field
            return False
        offset += 30 + name_length + extra_length + packed
    return False


def _decode_prefix(head: bytes, *, whole: bool) -> str:
    """The prefix as text, for looking at only; binary content raises."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            body = head[len(bom) :]
            text = codecs.getincrementaldecoder(codec)("replace").decode(body, final=whole)
            _check_controls(text)
            return text
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if b"\x00" in head or controls > max(8, len(head) // 100):
        raise _binary()
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(head, final=whole)
    except UnicodeDecodeError:
        # Some single-byte code page; which one is the parser's business (charset detection).
        return head.decode("latin-1")


def _check_controls(text: str) -> None:
    """Binary content raises: a NUL anywhere, or more than 1% of C0 controls."""
    controls = len(text) - len(text.translate(_CONTROL_CHARS))
    if "\x00" in text or controls > max(8, len(text) // 100):
        raise _binary()


def _text_kind(text: str) -> Kind:
    if _looks_like_html(text):
        return Kind.HTML
    lines = text[:_MARKDOWN_HEAD_CHARS].split("\n")
    first = next((line for line in lines if line.strip()), "")
    if _MD_HEADING.match(first.lstrip()):
        return Kind.MARKDOWN
    marks = (line for line in lines if _markdown_line(line))
    if len(list(itertools.islice(marks, 2))) >= 2:
        return Kind.MARKDOWN
    return Kind.TEXT


def _looks_like_html(text: str) -> bool:
    """A document that starts (after an XML declaration and comments) with an HTML root tag, or
    whose first few KiB hold at least three common HTML tags."""
    position = _skip_space(text, 0)
    if text.startswith("<?xml", position):
        end = text.find("?>", position)
        position = len(text) if end < 0 else end + 2
    while True:
        position = _skip_space(text, position)
        if not text.startswith("<!--", position):
            break
        end = text.find("-->", position + 4)
        if end < 0:
            return False
        position = end + 3
    start = text[position : position + 32].lower()
    if start.startswith("<!doctype") and start[9:].lstrip().startswith("html"):
        return True
    for tag in ("<html", "<head", "<body"):
        if start.startswith(tag) and start[len(tag) : len(tag) + 1] in {" ", "\t", "\n", "\r", "\f", ">"}:
            return True
    tags = _HTML_TAG.finditer(text, 0, _HTML_HEAD_CHARS)
    return len(list(itertools.islice(tags, 3))) >= 3


def _skip_space(text: str, position: int) -> int:
    match = _SPACE.match(text, position)
    return match.end() if match else position


def _markdown_line(line: str) -> bool:
    if line.startswith("```") or _MD_HEADING.match(line):
        return True
    if line.startswith(">") and line[1:2] in {"", " ", "\t", "\r"}:
        return True
    stripped = line.lstrip()
    if stripped[:1] in {"-", "*", "+"} and stripped[1:2] in {" ", "\t"} and stripped[2:].strip():
        return True
    if _MD_ORDERED.match(stripped):
        return True
    row = line.rstrip()
    return len(row) >= 2 and row.startswith("|") and row.endswith("|")


def decode(data: bytes) -> str:
    """A whole text document as ``str`` (BOM, UTF-8, else the most likely code page)."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            text = data.decode(codec, "replace")
            _check_controls(text)
            return text
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes  # the worker only: not on the API's path

        matches = list(from_bytes(data))
        if not matches:
            raise _binary() from None
        # Short Western text fits many single-byte code pages equally well; prefer the most
        # common one (Windows-1252, a superset of Latin-1's printable range) among the best.
        least_chaos = min(m.chaos for m in matches)
        best = [m for m in matches if m.chaos <= least_chaos + 1e-9]
        match = next((m for m in best if m.encoding in {"cp1252", "latin_1"}), best[0])
        text = str(match)
    _check_controls(text)
    return text


def check_zip(data: bytes, limits: ParseLimits) -> zipfile.ZipFile:
    """The archive, once its entry count, expanded size and compression ratio are within limits."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise UnprocessableDocument(f"damaged ZIP container: {exc}") from None
    if len(entries) > limits.max_archive_entries:
        raise UnprocessableDocument(
            f"archive has {len(entries)} entries (limit {limits.max_archive_entries})"
        )
    expanded = sum(e.file_size for e in entries)
    packed = max(1, sum(e.compress_size for e in entries))
    if expanded > limits.max_expanded_bytes or expanded / packed > limits.max_compression_ratio:
        raise UnprocessableDocument(
            f"archive expands to {expanded / 2**20:.0f} MiB from {packed / 2**20:.1f} MiB "
            f"(limits {limits.max_expanded_bytes / 2**20:.0f} MiB, "
            f"ratio {limits.max_compression_ratio:.0f}): refusing a possible zip bomb"
        )
    return archive


def sniff(data: bytes, limits: ParseLimits | None = None) -> tuple[Kind, str | None]:
    """The whole document's kind, and its decoded text for text formats (parser worker side)."""
    limits = limits or ParseLimits()
    if len(data) > limits.max_bytes:
        raise UnprocessableDocument(
            f"document is {len(data)} bytes; the limit is {limits.max_bytes} (UPLOAD_MAX_BYTES)"
        )
    kind = sniff_prefix(data[:SNIFF_PREFIX_BYTES])
    if kind is Kind.PDF:
        return kind, None
    if kind is Kind.DOCX:
        if "word/document.xml" not in check_zip(data, limits).namelist():
            raise UnprocessableDocument(f"a ZIP archive that is not a DOCX document (supported: {SUPPORTED})")
        return kind, None
    text = decode(data)
    if not text.strip():
        raise UnprocessableDocument(f"document holds only whitespace: upload a {SUPPORTED} file")
    return kind, text


__all__ = [
    "SNIFF_PREFIX_BYTES",
    "SUPPORTED",
    "Kind",
    "ParseLimits",
    "check_zip",
    "decode",
    "sniff",
    "sniff_prefix",
]
