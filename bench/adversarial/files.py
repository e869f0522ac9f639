"""Minimal PDF, DOCX and ZIP files, written byte by byte, so that each can be broken on purpose.

``pdf`` lays out numbered objects with a correct cross-reference table; ``docx`` writes the three
parts a WordprocessingML package needs, streaming ``word/document.xml``; ``central_directory``
reads a ZIP's directory entries so that a test file can lie in them.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

MIB = 2**20


# -- PDF -------------------------------------------------------------------------------------------------
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def pdf_body(objects: Sequence[bytes]) -> tuple[bytearray, list[int]]:
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    return out, offsets


def xref(offsets: Sequence[int]) -> bytes:
    rows = b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1) + rows


def pdf(objects: Sequence[bytes]) -> bytes:
    """A well-formed PDF of ``objects`` (numbered from 1; object 1 is the catalog)."""
    out, offsets = pdf_body(objects)
    start = len(out)
    out += xref(offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, start)
    return bytes(out)


def page(parent: int, contents: int | None, font: int | None = None) -> bytes:
    resources = b"/Resources << /Font << /F1 %d 0 R >> >> " % font if font else b""
    content = b"/Contents %d 0 R " % contents if contents else b""
    return b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] %s%s>>" % (parent, resources, content)


def text_content(text: str) -> bytes:
    return stream(b"BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text.encode("latin-1"))


# -- ZIP and DOCX ---------------------------------------------------------------------------------------
CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
W = b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
PARAGRAPH = b"<w:p><w:r><w:t>%s</w:t></w:r></w:p>"


def docx(
    path: Path,
    body: Iterable[bytes],
    *,
    doctype: bytes = b"",
    document: bool = True,
    extra: Mapping[str, bytes] | None = None,
    stored: bool = False,
) -> None:
    """A minimal DOCX whose ``word/document.xml`` body is streamed from ``body`` (deflated, or
    ``stored`` as is: no compression ratio for a zip check to catch)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zip_member("[Content_Types].xml"), CONTENT_TYPES)
        archive.writestr(zip_member("_rels/.rels"), RELS)
        if document:
            member = zip_member("word/document.xml", zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
            with archive.open(member, "w") as out:
                out.write(XML_DECLARATION + doctype + b"<w:document %s><w:body>" % W)
                for part in body:
                    out.write(part)
                out.write(b"</w:body></w:document>")
        for name, data in (extra or {}).items():
            archive.writestr(zip_member(name), data)


def zip_member(name: str, compression: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    """A ZIP member with a fixed timestamp, so the same corpus is the same bytes."""
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = compression
    return info


def repeated(unit: bytes, size: int) -> Iterator[bytes]:
    """``unit`` repeated, in blocks of about 1 MiB, to at least ``size`` bytes."""
    block = unit * max(1, MIB // len(unit))
    for _ in range(-(-size // len(block))):
        yield block


@dataclass(frozen=True)
class Record:
    """One central-directory entry of a ZIP file."""

    offset: int
    raw: bytes

    @property
    def name(self) -> bytes:
        return self.raw[46 : 46 + struct.unpack_from("<H", self.raw, 28)[0]]

    @property
    def local_header(self) -> int:
        return int(struct.unpack_from("<I", self.raw, 42)[0])


def central_directory(data: bytes) -> list[Record]:
    end = data.rindex(b"PK\x05\x06")
    at = struct.unpack_from("<I", data, end + 16)[0]
    records = []
    while at < end:
        size = 46 + sum(struct.unpack_from("<HHH", data, at + 28))
        records.append(Record(at, data[at : at + size]))
        at += size
    return records
