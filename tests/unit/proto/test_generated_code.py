"""The committed generated code is what `python -m rag.proto.generate` writes today."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rag.proto import generate

REPO = Path(__file__).resolve().parents[3]


def test_committed_code_is_fresh(tmp_path: Path) -> None:
    generate.generate(tmp_path)
    stale = generate.differences(tmp_path / "rag", generate.PACKAGE_DIR / "rag")
    assert stale == [], f"stale generated code {stale}: run `make proto` and commit the result"


def test_check_mode_reports_stale_code(tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(generate.PACKAGE_DIR / "rag", out / "rag", ignore=shutil.ignore_patterns("__pycache__"))
    check = [sys.executable, "-m", "rag.proto.generate", "--check", "--out", str(out)]
    assert subprocess.run(check, capture_output=True, text=True, check=False).returncode == 0
    (out / "rag" / "v1" / "search_pb2.py").write_text("# edited by hand\n")
    (out / "rag" / "v1" / "extra_pb2.py").write_text("")
    (out / "rag" / "v1" / "model_pb2_grpc.pyi").unlink()
    result = subprocess.run(check, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "stale: rag/v1/search_pb2.py" in result.stderr
    assert "stale: rag/v1/extra_pb2.py" in result.stderr
    assert "stale: rag/v1/model_pb2_grpc.pyi" in result.stderr


def test_every_service_has_typed_stubs() -> None:
    """Each service has a client stub in a ``*_pb2_grpc.pyi`` file that types its calls."""
    import importlib

    generated = generate.PACKAGE_DIR / "rag" / "v1"
    services = 0
    for module in sorted(generated.glob("*_pb2.py")):
        descriptor = importlib.import_module(f"rag.proto.rag.v1.{module.stem}").DESCRIPTOR
        stub = (generated / f"{module.stem}_grpc.pyi").read_text(encoding="utf-8")
        for service in descriptor.services_by_name.values():
            services += 1
            assert f"class {service.name}Stub:" in stub, (module.name, service.name)
            for method in service.methods:
                assert f"    {method.name}: _grpc." in stub, (service.name, method.name)
    assert services == 7
    search = (generated / "search_pb2_grpc.pyi").read_text(encoding="utf-8")
    assert (
        "Search: _grpc.UnaryUnaryMultiCallable[_search_pb2.SearchRequest, _search_pb2.SearchResponse]"
        in search
    )


def test_generated_modules_import_as_rag_proto() -> None:
    from rag.proto.rag.v1 import document_pb2, generation_pb2, search_pb2

    request = search_pb2.SearchRequest(query="q", mode=search_pb2.SEARCH_MODE_HYBRID)
    assert type(request).__module__ == "rag.proto.rag.v1.search_pb2"
    assert search_pb2.SearchRequest.FromString(request.SerializeToString()) == request
    upload = document_pb2.UploadRequest(chunk=b"abc")
    assert upload.WhichOneof("payload") == "chunk"
    event = generation_pb2.GenerateStreamResponse(token="hi")
    assert event.WhichOneof("event") == "token"
    assert not generation_pb2.GenerateRequest().HasField("temperature")


def test_document_status_mirrors_the_database_enum() -> None:
    from rag.core.documents import DocumentStatus
    from rag.proto.rag.v1 import common_pb2

    names = [n.removeprefix("DOCUMENT_STATUS_").lower() for n in common_pb2.DocumentStatus.keys()]  # noqa: SIM118 - an EnumTypeWrapper, not a dict
    assert names == ["unspecified", *(s.value for s in DocumentStatus)]


def test_protos_pass_buf_lint_standard() -> None:
    buf = shutil.which("buf", path=str(Path(sys.executable).parent)) or shutil.which("buf")
    if buf is None:
        pytest.skip("buf is not installed (pip install buf-bin; it is in the dev extra)")
    result = subprocess.run([buf, "lint"], cwd=REPO / "protos", capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
