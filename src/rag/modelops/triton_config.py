"""Render the Triton model repository's ``config.pbtxt`` files from their templates.

Each ``triton_models/<model>/config.pbtxt.tmpl`` holds ``${PLACEHOLDER}`` fields for what
differs between deployments (CPU or GPU instances, embedding dimension, weight locations,
queue delays). One command renders them all::

    python -m rag.modelops.triton_config --cpu                 # in place, next to the templates
    python -m rag.modelops.triton_config --gpu --output DIR    # a deployable copy in DIR

Without ``--gpu``/``--cpu`` or ``--generator-cache-dir`` the command falls back on RAG System's
settings (``ENABLE_GPU``, ``HF_CACHE_DIR``), read once at this entry point and passed in.
Rendered files are generated (git-ignored); a rendered file never holds a placeholder.
"""

from __future__ import annotations

import argparse
import re
import shutil
import string
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag.core.documents import EMBEDDING_DIMENSION
from rag.core.errors import ConfigurationError

if TYPE_CHECKING:
    from rag.settings import Settings

TEMPLATE_NAME = "config.pbtxt.tmpl"
CONFIG_NAME = "config.pbtxt"
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_]\w*")
_GENERATOR_DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class RenderOptions:
    """Deployment values for the templates. Empty model paths mean the packaged defaults
    (the reranker has none: it must be given one before it can load)."""

    gpu: bool = False
    instance_count: int = 1
    embedding_dim: int = EMBEDDING_DIMENSION
    embedder_model_path: str = ""
    embedder_model_version: str = ""
    # A lone interactive request waits up to this long for company. Chosen with
    # `python -m bench.models --queue-delays ...` (README, "Models"): 1 ms keeps a lone query's
    # p50 within ~1.0x of in-process while concurrent requests still batch.
    embedder_queue_delay_us: int = 1000
    # 0: no priority levels (Triton 2.51 stalls lone requests ~500 ms with any; see template).
    embedder_priority_levels: int = 0
    reranker_model_path: str = ""
    reranker_queue_delay_us: int = 2000
    generator_model_path: str = ""
    generator_dtype: str = "bfloat16"
    generator_cache_dir: str = ""

    def placeholders(self) -> dict[str, str]:
        """The value of every placeholder, already in config.pbtxt syntax."""
        if self.instance_count < 1:
            raise ConfigurationError(f"instance count must be at least 1, got {self.instance_count}")
        if self.embedding_dim < 1:
            raise ConfigurationError(f"embedding dim must be at least 1, got {self.embedding_dim}")
        for name in ("embedder_queue_delay_us", "reranker_queue_delay_us", "embedder_priority_levels"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"{name} must not be negative")
        if self.generator_dtype not in _GENERATOR_DTYPES:
            raise ConfigurationError(
                f"generator dtype must be one of {_GENERATOR_DTYPES}, got {self.generator_dtype!r}"
            )
        return {
            "INSTANCE_KIND": "KIND_GPU" if self.gpu else "KIND_CPU",
            "INSTANCE_COUNT": str(self.instance_count),
            "EMBEDDING_DIM": str(self.embedding_dim),
            "EMBEDDER_MODEL_PATH": pbtxt_string(_absolute(self.embedder_model_path)),
            "EMBEDDER_MODEL_VERSION": pbtxt_string(self.embedder_model_version),
            "EMBEDDER_QUEUE_DELAY_US": str(self.embedder_queue_delay_us),
            "EMBEDDER_PRIORITY_LEVELS": _priority_block(self.embedder_priority_levels),
            "RERANKER_MODEL_PATH": pbtxt_string(_absolute(self.reranker_model_path)),
            "RERANKER_QUEUE_DELAY_US": str(self.reranker_queue_delay_us),
            "GENERATOR_MODEL_PATH": pbtxt_string(_absolute(self.generator_model_path)),
            "GENERATOR_DTYPE": pbtxt_string(self.generator_dtype),
            "GENERATOR_CACHE_DIR": pbtxt_string(_absolute(self.generator_cache_dir)),
        }


def _priority_block(levels: int) -> str:
    """The dynamic_batching lines for ``levels`` priority levels (the middle one the default)."""
    if levels == 0:
        return "  # no priority levels"
    return f"  priority_levels: {levels}\n  default_priority_level: {min(2, levels)}"


def pbtxt_string(value: str) -> str:
    """``value`` as a quoted protobuf text-format string."""
    if any(ord(c) < 32 for c in value):
        raise ConfigurationError(f"{value!r} holds a control character; config values cannot")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def find_placeholders(text: str) -> list[str]:
    """Placeholders left in ``text`` (empty for a fully rendered config)."""
    return _PLACEHOLDER.findall(text)


def render_template(template: str, values: Mapping[str, str], *, source: str = "template") -> str:
    """Substitute ``values`` into ``template``; every placeholder must have a value."""
    try:
        rendered = string.Template(template).substitute(values)
    except KeyError as exc:
        raise ConfigurationError(f"{source}: no value for placeholder ${{{exc.args[0]}}}") from None
    except ValueError as exc:
        raise ConfigurationError(f"{source}: malformed placeholder ({exc})") from None
    left = find_placeholders(rendered)
    if left:
        raise ConfigurationError(f"{source}: placeholders left after rendering: {left}")
    return rendered


def render_repository(repository: Path, options: RenderOptions, output: Path | None = None) -> list[Path]:
    """Render every ``<model>/config.pbtxt.tmpl`` under ``repository``; return the configs.

    Without ``output`` each config is written next to its template. With ``output`` each
    model folder (its version folders included) is copied there and rendered in the copy.
    """
    templates = sorted(repository.glob(f"*/{TEMPLATE_NAME}"))
    if not templates:
        raise ConfigurationError(f"no */{TEMPLATE_NAME} under {str(repository)!r}")
    shared = options.placeholders()
    written: list[Path] = []
    for template in templates:
        model_dir = template.parent
        target_dir = model_dir
        if output is not None:
            target_dir = output / model_dir.name
            shutil.copytree(
                model_dir,
                target_dir,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns(TEMPLATE_NAME, CONFIG_NAME, "__pycache__"),
            )
        values = {**shared, "MODEL_NAME": pbtxt_string(model_dir.name)}
        config = target_dir / CONFIG_NAME
        config.write_text(render_template(template.read_text(), values, source=str(template)))
        written.append(config)
    return written


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve()) if path else ""


def _parser() -> argparse.ArgumentParser:
    defaults = RenderOptions()
    parser = argparse.ArgumentParser(
        prog="python -m rag.modelops.triton_config", description=__doc__.split("\n\n")[0]
    )
    device = parser.add_mutually_exclusive_group()
    device.add_argument("--gpu", dest="gpu", action="store_true", default=None)
    device.add_argument("--cpu", dest="gpu", action="store_false")
    parser.add_argument("--repository", type=Path, default=Path("triton_models"))
    parser.add_argument("--output", type=Path, default=None, help="render into a copy here")
    parser.add_argument("--instance-count", type=int, default=defaults.instance_count)
    parser.add_argument("--embedding-dim", type=int, default=defaults.embedding_dim)
    parser.add_argument("--embedder-model-path", default=defaults.embedder_model_path)
    parser.add_argument("--embedder-model-version", default=defaults.embedder_model_version)
    parser.add_argument("--embedder-queue-delay-us", type=int, default=defaults.embedder_queue_delay_us)
    parser.add_argument(
        "--embedder-priority-levels", type=int, default=defaults.embedder_priority_levels, help="0: none"
    )
    parser.add_argument("--reranker-model-path", default=defaults.reranker_model_path)
    parser.add_argument("--reranker-queue-delay-us", type=int, default=defaults.reranker_queue_delay_us)
    parser.add_argument("--generator-model-path", default=defaults.generator_model_path)
    parser.add_argument("--generator-dtype", default=defaults.generator_dtype)
    parser.add_argument("--generator-cache-dir", default=None, help="default: HF_CACHE_DIR/gguf")
    return parser


def _load_settings() -> Settings:
    from rag.settings import load_settings

    return load_settings()


def main(argv: Sequence[str] | None = None, settings: Callable[[], Settings] = _load_settings) -> int:
    """CLI entry point. ``--gpu``/``--cpu`` default to ``Settings.ENABLE_GPU`` and the generator's
    cache to ``Settings.HF_CACHE_DIR``/gguf; ``settings`` (loaded from the environment by
    default) is called only when a flag leaves one of them open. Settings that cannot be loaded
    are an error without ``--gpu``/``--cpu``; with one, the cache falls back to the settings'
    default folder (the command renders on a machine that has no deployment configured)."""
    from rag.settings import Settings

    args = _parser().parse_args(argv)
    gpu, cache_dir = args.gpu, args.generator_cache_dir
    if gpu is None or cache_dir is None:
        cache_root = Path(Settings.model_fields["HF_CACHE_DIR"].default)
        try:
            loaded = settings()
            gpu = loaded.ENABLE_GPU if gpu is None else gpu
            cache_root = loaded.HF_CACHE_DIR
        except ConfigurationError as exc:
            if gpu is None:
                print(f"error: {exc} (or pass --gpu or --cpu)", file=sys.stderr)
                return 2
            if cache_dir is None:
                print(
                    f"note: the settings did not load; the generator cache goes under {cache_root}"
                    " (or pass --generator-cache-dir)",
                    file=sys.stderr,
                )
        cache_dir = str(cache_root / "gguf") if cache_dir is None else cache_dir
    options = RenderOptions(
        gpu=gpu,
        instance_count=args.instance_count,
        embedding_dim=args.embedding_dim,
        embedder_model_path=args.embedder_model_path,
        embedder_model_version=args.embedder_model_version,
        embedder_queue_delay_us=args.embedder_queue_delay_us,
        embedder_priority_levels=args.embedder_priority_levels,
        reranker_model_path=args.reranker_model_path,
        reranker_queue_delay_us=args.reranker_queue_delay_us,
        generator_model_path=args.generator_model_path,
        generator_dtype=args.generator_dtype,
        generator_cache_dir=cache_dir,
    )
    try:
        written = render_repository(args.repository, options, args.output)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
