"""Admission control: bounded slots per RPC class, refused at once with a retry hint."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from grpc_services.interceptors.admission import (
    RPC_CLASSES,
    AdmissionInterceptor,
    RpcClass,
    admission_slots,
    check_classified,
)
from grpc_services.interceptors.base import Call
from grpc_services.interceptors.errors import retry_hint
from grpc_services.metrics import GrpcMetrics
from grpc_services.permissions import RPC_PERMISSIONS
from rag.core.errors import ConfigurationError, Overloaded, Unavailable
from rag.core.throttle import Slots
from rag.settings import load_settings
from tests.unit.test_settings import GOOD

SEARCH = "/rag.v1.SearchService/Search"
HEALTH = "/grpc.health.v1.Health/Check"


def test_slots_refuse_one_past_the_limit_with_a_retry_hint_and_admit_again_once_released() -> None:
    slots = Slots(2, what="search calls", setting="SEARCH_MAX_CONCURRENT", retry_after_s=1.5)
    with slots.take(), slots.take():
        assert slots.in_use == 2
        with pytest.raises(Overloaded) as refused, slots.take():
            pass
        assert refused.value.retry_after_s == 1.5
        assert str(refused.value) == (
            "2 search calls are already in progress on this server (SEARCH_MAX_CONCURRENT); retry in 1.5 s"
        )
        assert slots.in_use == 2  # a refusal takes nothing
    assert slots.in_use == 0
    with slots.take():
        assert slots.in_use == 1


def test_a_slot_is_given_back_when_its_holder_fails() -> None:
    slots = Slots(1, what="x", setting="X")
    with pytest.raises(Unavailable), slots.take():
        raise Unavailable("down")
    assert slots.in_use == 0


def test_the_retry_hint_trailer_is_in_milliseconds_and_only_for_overloaded() -> None:
    assert retry_hint(Overloaded("busy", retry_after_s=0.25)) == (("grpc-retry-pushback-ms", "250"),)
    assert retry_hint(Overloaded("busy")) == ()
    assert retry_hint(Unavailable("down")) == ()


def test_every_rpc_has_an_admission_class_and_health_is_never_bounded() -> None:
    assert RPC_CLASSES.keys() == RPC_PERMISSIONS.keys()
    assert RPC_CLASSES[HEALTH] is None and RPC_CLASSES["/grpc.health.v1.Health/Watch"] is None
    assert RPC_CLASSES["/rag.v1.GenerationService/GenerateStream"] is RpcClass.GENERATE
    with pytest.raises(ConfigurationError, match=r"/rag\.v1\.New/Method"):
        check_classified([SEARCH, "/rag.v1.New/Method"])


def test_each_class_is_sized_by_its_setting() -> None:
    settings = load_settings(GOOD | {"SEARCH_MAX_CONCURRENT": "3", "OVERLOAD_RETRY_AFTER_S": "2"})
    slots = admission_slots(settings)
    assert set(slots) == set(RpcClass)
    assert (slots[RpcClass.SEARCH].limit, slots[RpcClass.SEARCH].retry_after_s) == (3, 2.0)
    assert slots[RpcClass.GENERATE].setting == "GENERATE_MAX_CONCURRENT"


def call(method: str) -> Call:
    return Call(method, {}, cast(Any, None))


def test_the_interceptor_bounds_a_class_counts_refusals_and_lets_health_through() -> None:
    metrics = GrpcMetrics(CollectorRegistry())
    admission = AdmissionInterceptor(
        {RpcClass.SEARCH: Slots(1, what="search calls", setting="SEARCH_MAX_CONCURRENT")}, metrics
    )

    def sample(name: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"rpc_class": "search"})

    async def scenario() -> None:
        async with admission.scope(call(SEARCH)):
            assert sample("rag_grpc_admission_in_flight") == 1
            with pytest.raises(Overloaded, match="SEARCH_MAX_CONCURRENT"):
                async with admission.scope(call(SEARCH)):
                    pass
            for _ in range(3):  # never refused, however many
                async with admission.scope(call(HEALTH)):
                    pass
        assert sample("rag_grpc_admission_in_flight") == 0
        assert sample("rag_grpc_admission_rejected_total") == 1
        async with admission.scope(call(SEARCH)):  # the slot is free again
            pass

    asyncio.run(scenario())


def test_an_error_from_the_call_itself_is_not_counted_as_a_refusal() -> None:
    metrics = GrpcMetrics(CollectorRegistry())
    admission = AdmissionInterceptor({RpcClass.SEARCH: Slots(1, what="s", setting="S")}, metrics)

    async def scenario() -> None:
        with pytest.raises(Overloaded):
            async with admission.scope(call(SEARCH)):
                raise Overloaded("Triton is busy")

    asyncio.run(scenario())
    assert (
        metrics.registry.get_sample_value("rag_grpc_admission_rejected_total", {"rpc_class": "search"}) == 0
    )


def test_health_and_reflection_are_public_and_never_queued() -> None:
    from grpc_services.permissions import is_public

    for method in (
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    ):
        assert is_public(method), method
        assert method in RPC_CLASSES and RPC_CLASSES[method] is None, method
