"""The poison corpus: each kind holds what it claims (sizes, structure, encodings), cheaply.

Most kinds are written at the CI scale; the claims that only hold at full size (10,000 PDF
pages, a 100 MiB upload) are checked at that size where it is cheap.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zipfile
import zlib
from pathlib import Path

import pypdf
import pytest

from bench.adversarial.files import MIB
from bench.adversarial.poison import CI_KINDS, CI_SCALE, KINDS, Sample, Scale, by_name, write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Sample]:
    samples = write_corpus(tmp_path_factory.mktemp("poison"), KINDS, CI_SCALE)
    return {s.kind.name: s for s in samples}


def data(corpus: dict[str, Sample], name: str) -> bytes:
    return corpus[name].path.read_bytes()


def document_xml(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read("word/document.xml")


def inflated_size(path: Path, member: str) -> int:
    """Inflate ``member``'s raw deflate stream, ignoring what its headers declare."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    raw = path.read_bytes()
    name_len, extra_len = struct.unpack_from("<HH", raw, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    inflater, size = zlib.decompressobj(-15), 0
    for at in range(start, start + info.compress_size, MIB):
        size += len(inflater.decompress(raw[at : min(at + MIB, start + info.compress_size)]))
    return size


def test_the_corpus_has_the_kinds_the_issue_asks_for() -> None:
    names = [k.name for k in KINDS]
    assert len(names) == len(set(names)) >= 25
    for needed in (
        "html-regex-bomb",
        "markdown-regex-bomb",
        "html-memory-bomb",
        "docx-memory-bomb",
        "docx-zip-bomb",
        "html-deep-nesting",
        "docx-deep-xml",
        "pdf-10000-pages",
        "pdf-xref-cycle",
        "upload-over-limit",
        "text-with-nuls",
        "invalid-utf8",
        "pdf-named-md",
        "title-too-long",
        "metadata-too-many-keys",
    ):
        assert needed in names
    assert 12 <= len(CI_KINDS) <= 16
    assert all(k.expect.outcome in {"rejected", "quarantined", "refused"} for k in KINDS)
    assert all(k.expect.status for k in KINDS if k.expect.outcome == "rejected")


def test_no_two_kinds_share_content_and_output_is_deterministic(
    corpus: dict[str, Sample], tmp_path: Path
) -> None:
    uploads = {
        (hashlib.sha256(s.path.read_bytes()).hexdigest(), s.kind.title, tuple(s.kind.metadata.items()))
        for s in corpus.values()
    }
    assert len(uploads) == len(corpus)  # no two kinds deduplicate into one document
    again = write_corpus(tmp_path, by_name(["invalid-utf8", "docx-memory-bomb", "pdf-xref-cycle"]), CI_SCALE)
    for sample in again:
        assert sample.path.read_bytes() == data(corpus, sample.kind.name)


def test_by_name_names_the_unknown() -> None:
    with pytest.raises(ValueError, match="no-such-kind"):
        by_name(["empty", "no-such-kind"])


def test_regex_bombs_hold_the_pathological_patterns_and_no_text(corpus: dict[str, Sample]) -> None:
    html = data(corpus, "html-regex-bomb")
    assert html.startswith(b"<!---->" * 30) and not re.sub(rb"<[^>]*>", b"", html).strip()
    markdown = data(corpus, "markdown-regex-bomb")
    head = markdown[:20_000].decode()
    assert head.startswith("```\n```\n") and head.count("\n") > 19_990  # 2 Markdown marks, then blank lines
    assert corpus["markdown-regex-bomb"].path.suffix == ".md"


def test_html_bombs(corpus: dict[str, Sample]) -> None:
    memory = data(corpus, "html-memory-bomb")
    assert CI_SCALE.html_bomb_bytes - 7 < len(memory) <= CI_SCALE.html_bomb_bytes
    assert memory.count(b"<b></b>") > len(memory) // 8 and memory.endswith(b"</body></html>\n")
    assert not re.sub(rb"<[^>]*>", b"", memory).strip()
    deep = data(corpus, "html-deep-nesting")
    assert deep.count(b"<div>") == deep.count(b"</div>") == CI_SCALE.nesting


def test_docx_memory_bomb_inflates_within_the_zip_checks(corpus: dict[str, Sample]) -> None:
    path = corpus["docx-memory-bomb"].path
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("word/document.xml")
    assert info.file_size >= CI_SCALE.docx_inflated_bytes
    assert 2 < info.file_size / info.compress_size < 50  # far from a ratio check of ~200
    xml = document_xml(path)
    assert xml.count(b"<w:p>") > CI_SCALE.docx_inflated_bytes // 64


def test_docx_zip_bomb_really_inflates_past_its_size_and_ratio(corpus: dict[str, Sample]) -> None:
    path = corpus["docx-zip-bomb"].path
    size = inflated_size(path, "word/document.xml")
    assert size >= CI_SCALE.zip_bomb_bytes
    assert size / path.stat().st_size > 200


def test_docx_lying_sizes_declares_1_kib_and_inflates_far_more(corpus: dict[str, Sample]) -> None:
    path = corpus["docx-lying-sizes"].path
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("word/document.xml").file_size == 1024
    raw = path.read_bytes()
    offset = zipfile.ZipFile(path).getinfo("word/document.xml").header_offset
    assert struct.unpack_from("<I", raw, offset + 22)[0] == 1024  # the local header lies too
    assert inflated_size(path, "word/document.xml") >= CI_SCALE.docx_inflated_bytes


def test_zip_structures(corpus: dict[str, Sample]) -> None:
    with zipfile.ZipFile(corpus["zip-overlapping-entries"].path) as archive:
        offsets = [i.header_offset for i in archive.infolist() if i.filename.startswith("word/copy")]
        document = archive.getinfo("word/document.xml")
        assert len(offsets) == 64 and set(offsets) == {document.header_offset}
        assert sum(i.file_size for i in archive.infolist()) > 64 * 16 * MIB
    with zipfile.ZipFile(corpus["zip-many-entries"].path) as archive:
        assert len(archive.infolist()) > CI_SCALE.zip_entries
    with zipfile.ZipFile(corpus["zip-nested"].path) as archive:
        assert all(name.endswith(".zip") for name in archive.namelist())
        with zipfile.ZipFile(archive.open(archive.namelist()[0])) as inner:
            assert inner.getinfo("zeros.bin").file_size == 16 * MIB
    with zipfile.ZipFile(corpus["docx-missing-document"].path) as archive:
        assert "[Content_Types].xml" in archive.namelist()
        assert "word/document.xml" not in archive.namelist()


def test_xml_attacks(corpus: dict[str, Sample]) -> None:
    laughs = document_xml(corpus["docx-billion-laughs"].path)
    assert laughs.count(b"<!ENTITY lol") == 10 and b"&lol8;" * 10 in laughs and b"<w:t>&lol9;" in laughs
    xxe = document_xml(corpus["docx-xxe"].path)
    assert b'SYSTEM "file:///etc/passwd"' in xxe and b"<w:t>&xxe;</w:t>" in xxe
    with zipfile.ZipFile(corpus["docx-deep-xml"].path) as archive:
        info = archive.getinfo("word/document.xml")
        assert info.compress_type == zipfile.ZIP_STORED  # no ratio for a zip check to catch
        assert archive.read(info).count(b"<w:customXml>") == CI_SCALE.nesting


def test_pdf_with_10000_pages_has_10000_pages(tmp_path: Path) -> None:
    (sample,) = write_corpus(tmp_path, by_name(["pdf-10000-pages"]), Scale())
    reader = pypdf.PdfReader(sample.path)
    assert len(reader.pages) == 10_000
    assert "very many pages" in reader.pages[9_999].extract_text()


def test_pdf_cycles(corpus: dict[str, Sample]) -> None:
    reader = pypdf.PdfReader(corpus["pdf-page-tree-cycle"].path)
    node = reader.get_object(2)
    assert isinstance(node, pypdf.generic.DictionaryObject)
    kids = node["/Kids"]
    assert isinstance(kids, pypdf.generic.ArrayObject)
    assert 2 in [kid.idnum for kid in kids]  # the tree is its own kid
    raw = data(corpus, "pdf-xref-cycle")
    sections = [m.start() for m in re.finditer(rb"^xref\n", raw, re.M)]
    previous = [int(p) for p in re.findall(rb"/Prev (\d+)", raw)]
    assert len(sections) == 2 and previous == sections[::-1]  # each trailer points at the other


def test_damaged_and_disguised_pdfs(corpus: dict[str, Sample]) -> None:
    truncated = data(corpus, "pdf-truncated")
    assert truncated.startswith(b"%PDF-") and b"xref" not in truncated and b"%%EOF" not in truncated
    blank = corpus["pdf-named-md"]
    assert blank.path.suffix == ".md"
    reader = pypdf.PdfReader(blank.path)
    assert len(reader.pages) == 1 and not reader.pages[0].extract_text().strip()
    polyglot = data(corpus, "polyglot-pdf-html")
    assert polyglot.startswith(b"%PDF-") and b"<html><body>" in polyglot


def test_pdf_flate_bomb_inflates_past_its_size(corpus: dict[str, Sample]) -> None:
    raw = data(corpus, "pdf-flate-bomb")
    stream = raw[raw.index(b"stream\n") + 7 : raw.index(b"\nendstream")]
    assert b"/Filter [/FlateDecode /FlateDecode]" in raw and len(raw) < 64 * 1024
    assert len(zlib.decompress(zlib.decompress(stream))) == CI_SCALE.pdf_flate_bytes


def test_text_kinds(corpus: dict[str, Sample]) -> None:
    assert data(corpus, "empty") == b""
    assert data(corpus, "whitespace-only") and not data(corpus, "whitespace-only").strip()
    assert data(corpus, "text-with-nuls").count(b"\x00") > 100
    tail = data(corpus, "text-binary-tail")
    assert b"\x00" not in tail[: 96 * 1024] and tail[: 96 * 1024].decode("ascii") and b"\x00" in tail
    with pytest.raises(UnicodeDecodeError):
        data(corpus, "invalid-utf8").decode("utf-8")
    utf16 = data(corpus, "utf16-no-bom")
    assert utf16[:2] not in {b"\xff\xfe", b"\xfe\xff"} and b"\x00" in utf16
    assert utf16.decode("utf-16-le").isascii()
    exe = data(corpus, "exe-named-txt")
    assert corpus["exe-named-txt"].path.suffix == ".txt" and exe.startswith(b"MZ")
    assert exe[struct.unpack_from("<I", exe, 0x3C)[0] :].startswith(b"PE\x00\x00")


def test_size_kinds(corpus: dict[str, Sample]) -> None:
    assert len(data(corpus, "upload-over-limit")) == CI_SCALE.upload_max_bytes + 1
    assert len(data(corpus, "upload-at-limit")) == CI_SCALE.upload_max_bytes
    line = data(corpus, "huge-single-line")
    assert len(line) == CI_SCALE.single_line_bytes and b"\n" not in line
    words = data(corpus, "many-tiny-chunks")
    assert len(words.split(b"\n\n")) - 1 == CI_SCALE.tiny_chunk_words


def test_full_scale_upload_is_over_100_mib(tmp_path: Path) -> None:
    (sample,) = write_corpus(tmp_path, by_name(["upload-over-limit"]), Scale())
    assert sample.path.stat().st_size == 100 * MIB + 1


def test_titles_and_metadata_exceed_the_limits(corpus: dict[str, Sample]) -> None:
    assert len(corpus["title-too-long"].kind.title) > 512
    assert "\x00" in corpus["title-with-nul"].kind.title
    assert len(corpus["metadata-too-many-keys"].kind.metadata) > 32
    assert max(map(len, corpus["metadata-key-too-long"].kind.metadata)) > 64
    assert max(map(len, corpus["metadata-value-too-long"].kind.metadata.values())) > 1024
