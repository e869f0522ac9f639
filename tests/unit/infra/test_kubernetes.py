"""infra/k8s: the kustomize base and overlays, rendered and validated against the Kubernetes
schemas (PyPI kubernetes-validate, offline schemas, strict: unknown fields fail)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.unit.infra import kustomize
from tests.unit.infra.tools import INFRA

K8S = INFRA / "k8s"
KUBERNETES_VERSION = "1.33.0"
TARGETS = ["base", "overlays/dev", "overlays/prod"]


def rendered(target: str) -> list[dict[str, Any]]:
    return kustomize.render(K8S / target)


def by_kind(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.mark.parametrize("target", TARGETS)
def test_every_manifest_matches_the_kubernetes_schema(target: str) -> None:
    docs = rendered(target)
    assert len(docs) >= 12
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(
                f"{target}: {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}"
            )


def test_secret_template_matches_the_schema() -> None:
    doc = yaml.safe_load((K8S / "base" / "secret.example.yaml").read_text())
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    api = by_kind(rendered("base"), "Deployment", "rag-api")
    refs = api["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert {"secretRef": {"name": doc["metadata"]["name"]}} in refs


def test_the_validator_rejects_a_broken_manifest() -> None:
    doc = by_kind(rendered("base"), "Deployment", "rag-api")
    doc["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_restricted_pod_security() -> None:
    docs = rendered("overlays/prod")
    namespace = by_kind(docs, "Namespace", "rag-system")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        assert doc["metadata"]["namespace"] == "rag-system"
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert "limits" in container["resources"]


def test_api_probes_hpa_pdb_ingress() -> None:
    docs = rendered("overlays/prod")
    api = by_kind(docs, "Deployment", "rag-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["grpc"]["port"] == 50051
    assert container["startupProbe"]["grpc"]["port"] == 50051
    assert container["image"] == "registry.example.com/rag-system/api:0.1.0"
    hpa = by_kind(docs, "HorizontalPodAutoscaler", "rag-api")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
    targets = {
        m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]
    }
    assert targets == {"cpu": 70, "memory": 80}
    assert by_kind(docs, "PodDisruptionBudget", "rag-api")["spec"]["minAvailable"] == 2
    ingress = by_kind(docs, "Ingress", "rag-api")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"
    assert annotations["nginx.ingress.kubernetes.io/limit-rps"] == "100"
    assert ingress["spec"]["tls"][0]["hosts"] == ["rag.example.org"]
    policies = {d["metadata"]["name"] for d in docs if d["kind"] == "NetworkPolicy"}
    assert {"default-deny", "allow-dns", "rag-api", "triton"} <= policies


def test_triton_requests_a_gpu() -> None:
    triton = by_kind(rendered("overlays/prod"), "Deployment", "triton")
    resources = triton["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1
    assert triton["spec"]["replicas"] == 3


def test_dev_overlay_scales_down() -> None:
    docs = rendered("overlays/dev")
    assert by_kind(docs, "Deployment", "rag-api")["spec"]["replicas"] == 1
    assert by_kind(docs, "HorizontalPodAutoscaler", "rag-api")["spec"]["minReplicas"] == 1
    assert by_kind(docs, "ConfigMap", "rag-config")["data"]["LOG_LEVEL"] == "DEBUG"
    # The patch merged the container by name: the probes of the base are still there.
    api = by_kind(docs, "Deployment", "rag-api")["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["grpc"]["port"] == 50051 and api["resources"]["limits"]["memory"] == "2Gi"


def test_airflow_helm_values() -> None:
    values = yaml.safe_load((K8S / "airflow" / "values.yaml").read_text())
    assert values["executor"] in {"CeleryExecutor", "KubernetesExecutor"}
    assert values["postgresql"]["enabled"] is False
    assert values["securityContexts"]["pod"]["runAsNonRoot"] is True
    # The ingest DAG reads only the folder rag-config allows, mounted read-only in every pod.
    config = by_kind(rendered("base"), "ConfigMap", "rag-config")["data"]
    assert {m["mountPath"]: m["readOnly"] for m in values["volumeMounts"]} == {
        config["INGEST_ALLOWED_ROOTS"]: True
    }
    assert config["TRUSTED_PROXIES"] and config["INGEST_ALLOWED_BUCKETS"]


def test_configmap_keys_are_settings() -> None:
    from rag.settings import Settings

    config = by_kind(rendered("base"), "ConfigMap", "rag-config")
    assert set(config["data"]) <= set(Settings.model_fields), set(config["data"]) - set(Settings.model_fields)
    secret = yaml.safe_load((K8S / "base" / "secret.example.yaml").read_text())
    assert set(secret["stringData"]) <= set(Settings.model_fields)
