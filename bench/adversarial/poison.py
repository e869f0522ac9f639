"""The poison corpus: files built to stall, exhaust or confuse each stage of ingestion.

Every kind names its attack and what a sound system does with it (its :class:`Expect`): refuse
the upload with a status, or accept it and quarantine it with a reason. Files are written at run
time into a directory the caller owns (nothing big is committed); content is deterministic
(seeded) and different per kind, so no two kinds deduplicate into one document.

Sizes follow :class:`Scale`: the benchmark uses the full sizes (a 100 MiB upload, a DOCX that
inflates to 1 GiB); the CI test picks the kinds marked ``ci``, which are small at any scale.

Kinds whose structure is the attack (cycles, nesting, entities) carry no extractable text, so a
parser that copes with the structure still ends in a quarantine ("no text"), never an index.

The module is longer than most because it is a catalogue: one small writer per kind and the
table of kinds with their expectations, kept together so each attack sits beside what it must
end in.
"""

from __future__ import annotations

import random
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bench.adversarial.files import (
    FONT,
    MIB,
    PARAGRAPH,
    XML_DECLARATION,
    W,
    central_directory,
    docx,
    page,
    pdf,
    pdf_body,
    repeated,
    stream,
    text_content,
    xref,
    zip_member,
)

SEED = 12

Outcome = Literal["rejected", "quarantined", "refused", "indexed"]


@dataclass(frozen=True)
class Expect:
    """``rejected``: the upload fails with ``status``; ``quarantined``: accepted, then quarantined;
    ``refused``: either (which stage refuses it is the system's choice); ``indexed``: a control,
    a sound document that must still get through."""

    outcome: Outcome
    status: str | None = None  # a grpc.StatusCode name, for "rejected"

    def __str__(self) -> str:
        if self.outcome == "rejected":
            return f"rejected ({self.status})"
        return "rejected or quarantined" if self.outcome == "refused" else self.outcome


REJECTED = Expect("rejected", "INVALID_ARGUMENT")
QUARANTINED = Expect("quarantined")
REFUSED = Expect("refused")
INDEXED = Expect("indexed")


@dataclass(frozen=True)
class Scale:
    """Sizes of the big kinds. The defaults are the benchmark's."""

    upload_max_bytes: int = 100 * MIB  # the API's UPLOAD_MAX_BYTES
    html_bomb_bytes: int = 20 * MIB  # ~150x in BeautifulSoup
    docx_inflated_bytes: int = 190 * MIB  # under the 200 MiB expansion check, ratio ~10
    zip_bomb_bytes: int = 1024 * MIB  # what the ratio bomb inflates to
    pdf_flate_bytes: int = 1024 * MIB  # one content stream, inflated
    single_line_bytes: int = 50 * MIB
    tiny_chunk_words: int = 5_000_000
    pdf_pages: int = 10_000
    nesting: int = 100_000
    zip_entries: int = 20_000


CI_SCALE = Scale(
    upload_max_bytes=1 * MIB,
    html_bomb_bytes=1 * MIB,
    docx_inflated_bytes=8 * MIB,
    zip_bomb_bytes=32 * MIB,
    pdf_flate_bytes=32 * MIB,
    single_line_bytes=1 * MIB,
    tiny_chunk_words=100_000,
)

Writer = Callable[[Path, Scale], None]


@dataclass(frozen=True)
class Kind:
    name: str
    filename: str  # the upload's file name (the extension may lie: that can be the attack)
    attack: str
    expect: Expect
    write: Writer
    title: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    ci: bool = False  # part of the CI-sized run (small at any scale)


@dataclass(frozen=True)
class Sample:
    """One kind written to disk, ready to upload."""

    kind: Kind
    path: Path


def write_corpus(directory: Path, kinds: Sequence[Kind], scale: Scale) -> list[Sample]:
    """Write each kind's file to ``directory/<kind>/<filename>``."""
    samples = []
    for kind in kinds:
        folder = directory / kind.name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / kind.filename
        kind.write(path, scale)
        samples.append(Sample(kind, path))
    return samples


# -- text ------------------------------------------------------------------------------------------
_WORDS = (
    "protein cell membrane signal receptor binding pathway tissue cancer therapy dose trial patient "
    "cohort risk factor gene expression mutation variant sequence genome vaccine immune response "
    "infection virus bacteria antibiotic resistance enzyme kinase metabolism insulin glucose blood"
)
_VOCABULARY = tuple(_WORDS.split())


def _rng(name: str) -> random.Random:
    return random.Random(f"{SEED}:{name}")


def _prose(name: str, words: int) -> str:
    rng = _rng(name)
    return " ".join(rng.choice(_VOCABULARY) for _ in range(words))


def _write_repeated(path: Path, size: int, block: bytes, prefix: bytes = b"") -> None:
    """``prefix``, then ``block`` repeated, cut to exactly ``size`` bytes in all."""
    with path.open("wb") as out:
        out.write(prefix)
        left = size - len(prefix)
        while left > 0:
            piece = block[:left]
            out.write(piece)
            left -= len(piece)


def _lines_block(name: str, bytes_: int = MIB) -> bytes:
    """About ``bytes_`` of prose in lines of ~12 words."""
    rng = _rng(name)
    lines, size = [], 0
    while size < bytes_:
        line = " ".join(rng.choice(_VOCABULARY) for _ in range(12)) + ".\n"
        lines.append(line)
        size += len(line)
    return "".join(lines).encode()


def _benign(name: str) -> Writer:
    """A short readable text: the file is harmless, the title or metadata is the attack."""

    def write(path: Path, scale: Scale) -> None:
        path.write_text(f"A harmless body for the {name} sample.\n\n{_prose(name, 60)}.\n")

    return write


def _empty(path: Path, scale: Scale) -> None:
    path.write_bytes(b"")


def _whitespace(path: Path, scale: Scale) -> None:
    path.write_bytes(b" \t\r\n" * 30_000)


def _text_with_nuls(path: Path, scale: Scale) -> None:
    words = _prose("text-with-nuls", 400).split()
    path.write_bytes(b"\x00".join(w.encode() for w in words))


def _text_binary_tail(path: Path, scale: Scale) -> None:
    """Clean text for the first 96 KiB (past a prefix check), then 1 MiB of random bytes (NULs too)."""
    path.write_bytes(_lines_block("text-binary-tail", 96 * 1024) + _rng("text-binary-tail").randbytes(MIB))


def _invalid_utf8(path: Path, scale: Scale) -> None:
    """Bytes valid in no text encoding: lone continuation bytes, overlong forms, 0xF5-0xFF, C0s."""
    rng = _rng("invalid-utf8")
    atoms = [b"\x80", b"\xbf", b"\xc0\x80", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]
    atoms += [bytes([b]) for b in range(0xF5, 0x100)] + [bytes([b]) for b in range(1, 9)]
    path.write_bytes(b"".join(rng.choice(atoms) for _ in range(200_000)))


def _utf16_no_bom(path: Path, scale: Scale) -> None:
    path.write_bytes(_prose("utf16-no-bom", 2_000).encode("utf-16-le"))


def _exe(path: Path, scale: Scale) -> None:
    """A PE executable's shape: MZ header, DOS stub, PE and COFF headers, then code-like bytes."""
    dos = bytearray(0x80)
    dos[0:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 0x80)  # e_lfanew: where the PE header starts
    stub = b"\x0e\x1f\xba\x0e\x00\xb4\x09\xcd\x21\xb8\x01\x4c\xcd\x21"
    stub += b"This program cannot be run in DOS mode.\r\r\n$"
    dos[0x40 : 0x40 + len(stub)] = stub
    coff = struct.pack("<HHIIIHH", 0x8664, 3, 0, 0, 0, 0xF0, 0x22)  # x86-64, 3 sections, executable
    path.write_bytes(bytes(dos) + b"PE\x00\x00" + coff + bytes(0xF0) + _rng("exe").randbytes(256 * 1024))


def _huge_single_line(path: Path, scale: Scale) -> None:
    block = _lines_block("huge-single-line").replace(b"\n", b" ")
    _write_repeated(path, scale.single_line_bytes, block)


def _tiny_chunks(path: Path, scale: Scale) -> None:
    """Millions of one-word paragraphs: an output-size bomb (blocks, chunks, rows)."""
    rng = _rng("many-tiny-chunks")
    vocabulary = [w.encode() + b"\n\n" for w in _VOCABULARY]
    with path.open("wb") as out:
        for start in range(0, scale.tiny_chunk_words, 100_000):
            out.write(b"".join(rng.choices(vocabulary, k=min(100_000, scale.tiny_chunk_words - start))))


def _at_upload_limit(path: Path, scale: Scale) -> None:
    _write_repeated(path, scale.upload_max_bytes, _lines_block("upload-at-limit"))


def _over_upload_limit(path: Path, scale: Scale) -> None:
    _write_repeated(path, scale.upload_max_bytes + 1, _lines_block("upload-over-limit"))


# -- HTML and Markdown ---------------------------------------------------------------------------------
def _html_regex_bomb(path: Path, scale: Scale) -> None:
    """``<!---->`` 30 times: a backtracking ``(<!--.*?-->\\s*)*`` tries 2^30 splits; then no text."""
    path.write_bytes(b"<!---->" * 30 + b"<div><p></p><br></div>")


def _markdown_regex_bomb(path: Path, scale: Scale) -> None:
    """An empty code block, then 20,000 line starts, each a ``^\\s*`` that runs to the end of a
    20,000-character window: quadratic. No text: a link definition renders nothing."""
    path.write_bytes(b"```\n```\n" + b"\n" * 19_990 + b"[ref]: https://example.invalid/\n")


def _html_memory_bomb(path: Path, scale: Scale) -> None:
    """Millions of empty elements: a DOM costs ~150x the bytes. No text: a parser that copes with
    the size still has nothing to index."""
    head, element, tail = b"<html><body>", b"<b></b>", b"</body></html>\n"
    count = (scale.html_bomb_bytes - len(head) - len(tail)) // len(element)
    block = element * 131_072
    with path.open("wb") as out:
        out.write(head)
        for start in range(0, count, 131_072):
            out.write(block[: len(element) * min(131_072, count - start)])
        out.write(tail)


def _html_deep(path: Path, scale: Scale) -> None:
    n = scale.nesting
    path.write_bytes(b"<!DOCTYPE html><html><body>" + b"<div>" * n + b"</div>" * n + b"</body></html>")


# -- PDF -------------------------------------------------------------------------------------------------
def _pdf_pages(path: Path, scale: Scale) -> None:
    """``pdf_pages`` pages sharing one content stream with a line of text."""
    first = 5
    kids = b" ".join(b"%d 0 R" % (first + i) for i in range(scale.pdf_pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, scale.pdf_pages),
        FONT,
        text_content("One page of a document with very many pages."),
        *(page(2, 4, 3) for _ in range(scale.pdf_pages)),
    ]
    path.write_bytes(pdf(objects))


def _pdf_page_tree_cycle(path: Path, scale: Scale) -> None:
    """The page tree lists itself among its kids (and a blank page)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R 2 0 R] /Count 2 >>",
        page(2, None),
    ]
    path.write_bytes(pdf(objects))


def _pdf_xref_cycle(path: Path, scale: Scale) -> None:
    """Two cross-reference sections whose trailers name each other as ``/Prev``."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        page(2, None),
    ]
    out, offsets = pdf_body(objects)

    def trailer(previous: int) -> bytes:  # fixed width: the offsets are known before they are written
        return b"trailer\n<< /Size 4 /Root 1 0 R /Prev %010d >>\n" % previous

    first = len(out)
    second = first + len(xref(offsets) + trailer(0))
    out += xref(offsets) + trailer(second)
    out += b"xref\n0 1\n0000000000 65535 f \n" + trailer(first)
    out += b"startxref\n%d\n%%%%EOF\n" % second
    path.write_bytes(bytes(out))


def _pdf_truncated(path: Path, scale: Scale) -> None:
    """A PDF cut inside its catalog: no page tree, no cross-reference table, no trailer."""
    whole = pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"])
    path.write_bytes(whole[: whole.index(b"/Pages 2") + 4])


def _pdf_flate_bomb(path: Path, scale: Scale) -> None:
    """A content stream deflated twice: a few KiB that inflate to ``pdf_flate_bytes`` of spaces."""
    inner = zlib.compressobj(9)
    block = b" " * MIB
    parts = [inner.compress(block) for _ in range(scale.pdf_flate_bytes // MIB)]
    once = b"".join(parts) + inner.flush()
    twice = zlib.compress(once, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        page(2, 4),
        stream(twice, b"/Filter [/FlateDecode /FlateDecode] "),
    ]
    path.write_bytes(pdf(objects))


def _pdf_blank(path: Path, scale: Scale) -> None:
    """A valid one-page PDF with no text (named ``.md``: only a sniffer that trusts names reads it)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        page(2, 4),
        stream(b"0 0 1 rg 72 72 468 648 re f"),
    ]
    path.write_bytes(pdf(objects))


def _polyglot(path: Path, scale: Scale) -> None:
    """A PDF signature on an HTML page: a PDF to a sniffer, text to a browser."""
    html = f"<html><body><h1>Polyglot</h1><p>{_prose('polyglot', 200)}</p></body></html>\n"
    path.write_bytes(b"%PDF-1.7\n" + html.encode())


# -- ZIP and DOCX ---------------------------------------------------------------------------------------
def _docx_memory_bomb(path: Path, scale: Scale) -> None:
    """Millions of short random-word paragraphs: inflates ~10x, within the zip checks; lxml ~21x."""
    rng = _rng("docx-memory-bomb")
    letters = bytes(97 + b % 26 for b in range(256))

    def body() -> Iterator[bytes]:
        written = 0
        while written < scale.docx_inflated_bytes:
            word = rng.randbytes(8 * 32_768).translate(letters)
            part = b"".join(PARAGRAPH % word[i : i + 8] for i in range(0, len(word), 8))
            written += len(part)
            yield part

    docx(path, body())


def _docx_zip_bomb(path: Path, scale: Scale) -> None:
    """One paragraph repeated: inflates ~300x, past the ratio and size checks."""
    docx(path, repeated(PARAGRAPH % b"a", scale.zip_bomb_bytes))


def _docx_lying_sizes(path: Path, scale: Scale) -> None:
    """``word/document.xml`` declares 1 KiB in both headers but inflates to ``docx_inflated_bytes``."""
    docx(path, repeated(PARAGRAPH % b"lie", scale.docx_inflated_bytes))
    data = bytearray(path.read_bytes())
    for record in central_directory(bytes(data)):
        if record.name == b"word/document.xml":
            struct.pack_into("<I", data, record.offset + 24, 1024)  # central directory entry
            struct.pack_into("<I", data, record.local_header + 22, 1024)  # local file header
    path.write_bytes(bytes(data))


def _zip_overlapping(path: Path, scale: Scale) -> None:
    """Many central-directory entries share one compressed ``word/document.xml`` (non-recursive bomb)."""
    docx(path, repeated(PARAGRAPH % b"o", 16 * MIB))
    data = path.read_bytes()
    records = central_directory(data)
    document = next(r for r in records if r.name == b"word/document.xml")
    copies = []
    for n in range(64):
        name = b"word/copy%03d.xml" % n
        copy = bytearray(document.raw[:46]) + name + document.raw[46 + len(document.name) :]
        struct.pack_into("<H", copy, 28, len(name))
        copies.append(bytes(copy))
    start = records[0].offset
    directory = b"".join([r.raw for r in records] + copies)
    count = len(records) + len(copies)
    eocd = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, count, count, len(directory), start, 0)
    path.write_bytes(data[:start] + directory + eocd)


def _zip_many_entries(path: Path, scale: Scale) -> None:
    extra = {f"word/media/e{n:06d}.xml": b"" for n in range(scale.zip_entries)}
    docx(path, [PARAGRAPH % b"entries"], extra=extra)


def _zip_nested(path: Path, scale: Scale) -> None:
    """A ZIP of ZIPs of 16 MiB of zeros each (what a recursive extractor would inflate)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as outer:
        for n in range(8):
            inner_path = path.with_name(f"inner{n}.zip")
            with zipfile.ZipFile(inner_path, "w", zipfile.ZIP_DEFLATED) as inner:
                inner.writestr(zip_member("zeros.bin"), bytes(16 * MIB))
            outer.writestr(zip_member(f"inner{n}.zip"), inner_path.read_bytes())
            inner_path.unlink()


def _docx_missing_document(path: Path, scale: Scale) -> None:
    docx(path, [], document=False, extra={"word/styles.xml": XML_DECLARATION + b"<w:styles %s/>" % W})


def _billion_laughs(path: Path, scale: Scale) -> None:
    """Nested internal entities: ``&lol9;`` expands to 10^9 ``lol``s (3 GB)."""
    entities = [b'<!ENTITY lol0 "lol">']
    entities += [b'<!ENTITY lol%d "%s">' % (n, b"&lol%d;" % (n - 1) * 10) for n in range(1, 10)]
    doctype = b"<!DOCTYPE w:document [%s]>\n" % b"".join(entities)
    docx(path, [PARAGRAPH % b"&lol9;"], doctype=doctype)


def _xxe(path: Path, scale: Scale) -> None:
    """An external entity naming a local file: resolved, it would index the server's /etc/passwd."""
    doctype = b'<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    docx(path, [PARAGRAPH % b"&xxe;"], doctype=doctype)


def _docx_deep(path: Path, scale: Scale) -> None:
    n = scale.nesting
    docx(path, [b"<w:customXml>" * n, b"</w:customXml>" * n], stored=True)


# -- the corpus --------------------------------------------------------------------------------------
def _kinds() -> tuple[Kind, ...]:
    return (
        Kind("empty", "empty.txt", "a zero-byte upload", REJECTED, _empty, ci=True),
        Kind("whitespace-only", "blank.txt", "120 KB of spaces, tabs and line breaks", REFUSED, _whitespace),
        Kind("text-with-nuls", "nuls.txt", "words separated by NUL bytes", REFUSED, _text_with_nuls, ci=True),
        Kind(
            "text-binary-tail",
            "log.txt",
            "96 KiB of clean text, then 1 MiB of binary with NULs (past a prefix check)",
            REFUSED,
            _text_binary_tail,
        ),
        Kind("invalid-utf8", "notes.txt", "invalid UTF-8 in every form, C0 controls", REFUSED, _invalid_utf8),
        Kind(
            "utf16-no-bom", "letter.txt", "UTF-16-LE text without a byte-order mark", REFUSED, _utf16_no_bom
        ),
        Kind("exe-named-txt", "readme.txt", "a PE executable named .txt", REFUSED, _exe, ci=True),
        Kind("pdf-named-md", "notes.md", "a text-less PDF named .md", QUARANTINED, _pdf_blank, ci=True),
        Kind(
            "polyglot-pdf-html",
            "page.html",
            "a PDF signature on an HTML page",
            QUARANTINED,
            _polyglot,
            ci=True,
        ),
        Kind(
            "html-regex-bomb",
            "comments.html",
            "<!----> x30: exponential backtracking in a nested-quantifier regex",
            QUARANTINED,
            _html_regex_bomb,
            ci=True,
        ),
        Kind(
            "markdown-regex-bomb",
            "blank-lines.md",
            "20,000 empty lines: quadratic in a multiline ^\\s* regex",
            QUARANTINED,
            _markdown_regex_bomb,
            ci=True,
        ),
        Kind(
            "html-memory-bomb",
            "tags.html",
            "20 MiB of empty <b></b>: ~3 GB as a DOM",
            QUARANTINED,
            _html_memory_bomb,
        ),
        Kind("html-deep-nesting", "deep.html", "100,000 nested <div>s", QUARANTINED, _html_deep),
        Kind(
            "docx-memory-bomb",
            "paragraphs.docx",
            "document.xml inflating to 190 MiB within the zip checks: ~4 GB in lxml",
            QUARANTINED,
            _docx_memory_bomb,
        ),
        Kind(
            "docx-zip-bomb",
            "bomb.docx",
            "document.xml inflating ~300x to 1 GiB (past the zip checks)",
            REFUSED,
            _docx_zip_bomb,
            ci=True,
        ),
        Kind(
            "docx-lying-sizes",
            "small.docx",
            "document.xml declares 1 KiB, inflates to 190 MiB",
            REFUSED,
            _docx_lying_sizes,
        ),
        Kind(
            "zip-overlapping-entries",
            "overlap.docx",
            "64 directory entries sharing one 16 MiB member",
            REFUSED,
            _zip_overlapping,
        ),
        Kind("zip-many-entries", "entries.docx", "a DOCX with 20,000 members", REFUSED, _zip_many_entries),
        Kind("zip-nested", "bundle.zip", "a ZIP of ZIPs of zeros", REFUSED, _zip_nested),
        Kind(
            "docx-missing-document",
            "hollow.docx",
            "a DOCX package without word/document.xml",
            REFUSED,
            _docx_missing_document,
            ci=True,
        ),
        Kind(
            "docx-billion-laughs",
            "laughs.docx",
            "nested XML entities expanding to 3 GB",
            QUARANTINED,
            _billion_laughs,
            ci=True,
        ),
        Kind("docx-xxe", "entity.docx", "an external entity naming /etc/passwd", QUARANTINED, _xxe),
        Kind("docx-deep-xml", "deep.docx", "100,000 nested XML elements", QUARANTINED, _docx_deep),
        Kind("pdf-10000-pages", "pages.pdf", "a PDF of 10,000 pages", QUARANTINED, _pdf_pages),
        Kind(
            "pdf-page-tree-cycle",
            "cycle.pdf",
            "a page tree that is its own kid",
            QUARANTINED,
            _pdf_page_tree_cycle,
            ci=True,
        ),
        Kind(
            "pdf-xref-cycle",
            "xref.pdf",
            "cross-reference sections that are each other's /Prev",
            QUARANTINED,
            _pdf_xref_cycle,
        ),
        Kind(
            "pdf-truncated", "cut.pdf", "a PDF cut inside its catalog", QUARANTINED, _pdf_truncated, ci=True
        ),
        Kind(
            "pdf-flate-bomb", "flate.pdf", "a content stream inflating to 1 GiB", QUARANTINED, _pdf_flate_bomb
        ),
        Kind(
            "upload-over-limit",
            "big.txt",
            "one byte over the upload limit (100 MiB)",
            REJECTED,
            _over_upload_limit,
            ci=True,
        ),
        Kind("upload-at-limit", "max.txt", "exactly the upload limit of text", QUARANTINED, _at_upload_limit),
        Kind(
            "huge-single-line",
            "line.txt",
            "50 MiB of words without a line break",
            QUARANTINED,
            _huge_single_line,
        ),
        Kind("many-tiny-chunks", "words.txt", "5,000,000 one-word paragraphs", QUARANTINED, _tiny_chunks),
        Kind(
            "title-too-long",
            "title.txt",
            "a 100,000-character title (limit 512)",
            REJECTED,
            _benign("title-too-long"),
            title="T" * 100_000,
            ci=True,
        ),
        Kind(
            "title-with-nul",
            "nul-title.txt",
            "a NUL character in the title",
            REJECTED,
            _benign("title-with-nul"),
            title="quarterly\x00report",
        ),
        Kind(
            "metadata-too-many-keys",
            "keys.txt",
            "1,000 metadata keys (limit 32)",
            REJECTED,
            _benign("metadata-too-many-keys"),
            metadata={f"k{n}": "v" for n in range(1_000)},
            ci=True,
        ),
        Kind(
            "metadata-key-too-long",
            "key.txt",
            "a 10,000-character metadata key (limit 64)",
            REJECTED,
            _benign("metadata-key-too-long"),
            metadata={"k" * 10_000: "v"},
        ),
        Kind(
            "metadata-value-too-long",
            "value.txt",
            "a 1 MiB metadata value (limit 1,024)",
            REJECTED,
            _benign("metadata-value-too-long"),
            metadata={"note": "v" * MIB},
        ),
    )


KINDS: tuple[Kind, ...] = _kinds()
CI_KINDS: tuple[Kind, ...] = tuple(kind for kind in KINDS if kind.ci)


# -- controls: sound documents, one per format, that must be indexed --------------------------------
_ARTICLES = {
    "vitamin": "Sunlight lets the skin produce vitamin D, which the body needs to absorb calcium.",
    "inhaler": "An asthma inhaler delivers medicine straight to the airways and eases wheezing.",
    "magnesium": "Magnesium supports muscle and nerve function; nuts and whole grains hold plenty of it.",
    "sleep": "Adults who sleep seven to nine hours a night consolidate memories better than short sleepers.",
    "exercise": "Regular aerobic exercise lowers resting blood pressure and improves insulin sensitivity.",
}
CONTROL_QUERIES = (
    "Which vitamin does sunlight produce?",
    "How does an inhaler help asthma?",
    "Which foods contain magnesium?",
    "How much sleep do adults need for memory?",
    "Does exercise lower blood pressure?",
)


def _control_text(path: Path, scale: Scale) -> None:
    path.write_text(f"Vitamin D and bone health\n\n{_ARTICLES['vitamin']}\n")


def _control_html(path: Path, scale: Scale) -> None:
    body = f"<h1>Inhalers</h1><p>{_ARTICLES['inhaler']}</p>"
    path.write_text(f"<!DOCTYPE html><html><head><title>Inhalers</title></head><body>{body}</body></html>\n")


def _control_pdf(path: Path, scale: Scale) -> None:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        page(2, 4, 5),
        text_content(_ARTICLES["magnesium"]),
        FONT,
    ]
    path.write_bytes(pdf(objects))


def _control_docx(path: Path, scale: Scale) -> None:
    docx(path, [PARAGRAPH % b"Sleep and memory", PARAGRAPH % _ARTICLES["sleep"].encode()])


def _control_markdown(path: Path, scale: Scale) -> None:
    path.write_text(f"# Exercise\n\n{_ARTICLES['exercise']}\n\n- aerobic\n- strength\n")


CONTROLS: tuple[Kind, ...] = (
    Kind("control-text", "vitamin-d.txt", "a plain-text note", INDEXED, _control_text, ci=True),
    Kind("control-html", "inhalers.html", "an HTML page", INDEXED, _control_html),
    Kind("control-pdf", "magnesium.pdf", "a one-page PDF", INDEXED, _control_pdf),
    Kind("control-docx", "sleep.docx", "a DOCX document", INDEXED, _control_docx),
)
# Uploaded after the poison: the workers that the poison killed were replaced.
CONTROL_AFTER = Kind(
    "control-after",
    "exercise.md",
    "a Markdown note sent after the poison",
    INDEXED,
    _control_markdown,
    ci=True,
)


def by_name(names: Iterable[str]) -> list[Kind]:
    """The kinds named (in corpus order); a ValueError lists the unknown names."""
    wanted = set(names)
    unknown = sorted(wanted - {k.name for k in KINDS})
    if unknown:
        raise ValueError(f"unknown kind(s): {', '.join(unknown)}; see --list")
    return [k for k in KINDS if k.name in wanted]
