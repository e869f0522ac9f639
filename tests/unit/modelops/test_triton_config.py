from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from rag.core.errors import ConfigurationError
from rag.modelops.triton_config import (
    RenderOptions,
    find_placeholders,
    main,
    render_repository,
    render_template,
)
from rag.settings import Settings, load_settings
from tests.unit.test_settings import GOOD

REPOSITORY = Path(__file__).resolve().parents[3] / "triton_models"
MODELS = ("embedder", "generator", "reranker")


def parse(path: Path) -> model_config_pb2.ModelConfig:
    """Parse with Triton's own ModelConfig schema: unknown fields or bad syntax fail."""
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def test_every_model_has_a_template_with_placeholders() -> None:
    for model in MODELS:
        template = (REPOSITORY / model / "config.pbtxt.tmpl").read_text()
        assert find_placeholders(template), model
        assert (REPOSITORY / model / "1" / "model.py").is_file()


@pytest.mark.parametrize("gpu", [False, True])
def test_rendered_configs_hold_no_placeholder(tmp_path: Path, gpu: bool) -> None:
    written = render_repository(REPOSITORY, RenderOptions(gpu=gpu), tmp_path)

    assert sorted(p.parent.name for p in written) == list(MODELS)
    kind = (
        model_config_pb2.ModelInstanceGroup.KIND_GPU if gpu else model_config_pb2.ModelInstanceGroup.KIND_CPU
    )
    for path in written:
        text = path.read_text()
        assert find_placeholders(text) == [], path
        config = parse(path)
        assert config.backend == "python"
        assert config.name == path.parent.name
        assert [group.kind for group in config.instance_group] == [kind]
        assert (path.parent / "1" / "model.py").is_file()
        assert not (path.parent / "config.pbtxt.tmpl").exists()


def test_embedder_config_batches_with_three_priorities(tmp_path: Path) -> None:
    render_repository(REPOSITORY, RenderOptions(embedding_dim=768), tmp_path)
    config = parse(tmp_path / "embedder" / "config.pbtxt")

    assert config.max_batch_size == 32
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [
        ("TEXT", model_config_pb2.TYPE_STRING, [1])
    ]
    assert [(o.name, o.data_type, list(o.dims)) for o in config.output] == [
        ("EMBEDDING", model_config_pb2.TYPE_FP32, [768])
    ]
    assert config.dynamic_batching.priority_levels == 0  # see the template: Triton 2.51 stalls
    assert config.dynamic_batching.max_queue_delay_microseconds == 1000
    render_repository(REPOSITORY, RenderOptions(embedder_priority_levels=3), tmp_path / "p")
    prioritized = parse(tmp_path / "p" / "embedder" / "config.pbtxt").dynamic_batching
    assert (prioritized.priority_levels, prioritized.default_priority_level) == (3, 2)


def test_generator_config_is_decoupled_with_optional_stop(tmp_path: Path) -> None:
    render_repository(REPOSITORY, RenderOptions(generator_dtype="float32"), tmp_path)
    config = parse(tmp_path / "generator" / "config.pbtxt")

    assert config.model_transaction_policy.decoupled
    assert config.max_batch_size == 0
    inputs = {i.name: i for i in config.input}
    assert set(inputs) == {"PROMPT", "MAX_TOKENS", "TEMPERATURE", "STOP"}
    assert inputs["STOP"].optional and list(inputs["STOP"].dims) == [-1]
    assert inputs["MAX_TOKENS"].data_type == model_config_pb2.TYPE_INT32
    assert [o.name for o in config.output] == ["TOKEN"]
    assert config.parameters["DTYPE"].string_value == "float32"


def test_paths_are_absolute_and_escaped(tmp_path: Path) -> None:
    odd = tmp_path / 'a "quoted" \\ folder'
    render_repository(REPOSITORY, RenderOptions(reranker_model_path=str(odd)), tmp_path / "out")
    config = parse(tmp_path / "out" / "reranker" / "config.pbtxt")

    assert config.parameters["MODEL_PATH"].string_value == str(odd)


def test_in_place_rendering_writes_next_to_the_templates(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(REPOSITORY, copy, ignore=shutil.ignore_patterns("config.pbtxt", "__pycache__"))

    written = render_repository(copy, RenderOptions())

    assert written == [copy / m / "config.pbtxt" for m in MODELS]


def test_missing_placeholder_value_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match=r"no value for placeholder \$\{NEW_THING\}"):
        render_template("count: ${NEW_THING}", {}, source="x.tmpl")


def test_bad_option_values_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="dtype"):
        render_repository(REPOSITORY, RenderOptions(generator_dtype="int4"), tmp_path)
    with pytest.raises(ConfigurationError, match="control character"):
        render_repository(REPOSITORY, RenderOptions(embedder_model_version="a\nb"), tmp_path)
    with pytest.raises(ConfigurationError, match=r"no \*/config\.pbtxt\.tmpl"):
        render_repository(tmp_path, RenderOptions())


def test_cli_follows_enable_gpu_unless_told(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--repository", str(REPOSITORY), "--output", str(tmp_path)]

    def settings(**values: str) -> Callable[[], Settings]:
        return lambda: load_settings({**GOOD, **values})

    assert main(base, settings(ENABLE_GPU="true")) == 0
    assert "KIND_GPU" in (tmp_path / "embedder" / "config.pbtxt").read_text()
    assert main([*base, "--cpu"], settings(ENABLE_GPU="true")) == 0
    assert "KIND_CPU" in (tmp_path / "embedder" / "config.pbtxt").read_text()
    assert main(base, settings(HF_CACHE_DIR=str(tmp_path / "cache"))) == 0
    config = parse(tmp_path / "generator" / "config.pbtxt")
    assert config.parameters["CACHE_DIR"].string_value == str(tmp_path / "cache" / "gguf")
    assert main([*base, "--generator-dtype", "int4"], settings()) == 2
    assert "generator dtype" in capsys.readouterr().err


def test_cli_needs_no_settings_when_the_flags_say_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--repository", str(REPOSITORY), "--output", str(tmp_path)]

    def unconfigured() -> Settings:
        return load_settings({})  # DATABASE_URL and the secrets are missing

    assert main([*base, "--gpu", "--generator-cache-dir", str(tmp_path / "c")], unconfigured) == 0
    assert "KIND_GPU" in (tmp_path / "embedder" / "config.pbtxt").read_text()
    config = parse(tmp_path / "generator" / "config.pbtxt")
    assert config.parameters["CACHE_DIR"].string_value == str(tmp_path / "c")
    # With --cpu alone the cache is the settings' default folder; without either flag, an error.
    assert main([*base, "--cpu"], unconfigured) == 0
    assert "KIND_CPU" in (tmp_path / "embedder" / "config.pbtxt").read_text()
    config = parse(tmp_path / "generator" / "config.pbtxt")
    assert config.parameters["CACHE_DIR"].string_value == str(Path(".rag/model_cache/gguf").resolve())
    capsys.readouterr()
    assert main(base, unconfigured) == 2
    assert "DATABASE_URL" in capsys.readouterr().err
