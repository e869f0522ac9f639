"""Which models the local stack loads at ``up``; which settings ``up`` takes from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.stack.config import Ports, StackConfig


def test_the_reranker_loads_when_configured_or_promoted(tmp_path: Path) -> None:
    config = StackConfig(state_dir=tmp_path)
    assert config.models_to_load() == ("embedder", "generator")

    rendered = config.model_repository / "reranker" / "1"
    rendered.mkdir(parents=True)  # the template's version 1 holds no weights
    assert config.models_to_load() == ("embedder", "generator")

    (config.model_repository / "reranker" / "2" / "weights").mkdir(parents=True)  # a promotion
    assert config.models_to_load() == ("embedder", "generator", "reranker")

    configured = StackConfig(state_dir=tmp_path / "other", reranker_model_path=tmp_path / "ce")
    assert configured.models_to_load() == ("embedder", "generator", "reranker")


def test_default_ports_are_outside_the_ephemeral_range() -> None:
    """An outgoing connection takes its local port from this range: a default port inside it
    can be held by any process's client socket when ``up`` binds it."""
    from rag.stack.config import Ports

    low, high = 32768, 60999  # Linux's default net.ipv4.ip_local_port_range
    ports = Ports()
    every = [*ports.model_dump().values(), *ports.seaweed().values()]
    assert all(not low <= port <= high for port in every), every
    assert len(set(every)) == len(every)


def test_up_takes_only_stack_settings_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A RAG_* variable that is no stack setting (the test suite's RAG_TEST_STACK_DIR) does not
    make `up` forget the ports it saved."""
    from rag.stack.__main__ import _config_for

    saved = StackConfig(state_dir=tmp_path, ports=Ports(redis=31999))
    saved.save()
    monkeypatch.setenv("RAG_TEST_STACK_DIR", "/elsewhere")
    assert _config_for("up", tmp_path).ports.redis == 31999
    monkeypatch.setenv("RAG_PORTS__REDIS", "31998")
    assert _config_for("up", tmp_path).ports.redis == 31998
