"""grpc_services.context: each scope sets its value for the block and restores the outer one."""

from __future__ import annotations

import pytest

from grpc_services.context import (
    client_address_scope,
    current_client_address,
    current_principal,
    current_request_id,
    principal_scope,
    request_id_scope,
)
from rag.core.auth import Principal, Role
from rag.core.errors import Unauthenticated


def test_scopes_nest_and_restore_the_outer_value() -> None:
    assert current_request_id() is None and current_client_address() is None
    with request_id_scope("outer"), client_address_scope("10.0.0.1"):
        with request_id_scope("inner"), client_address_scope("10.0.0.2"):
            assert (current_request_id(), current_client_address()) == ("inner", "10.0.0.2")
        assert (current_request_id(), current_client_address()) == ("outer", "10.0.0.1")
    assert current_request_id() is None and current_client_address() is None


def test_a_failing_block_still_restores_the_caller() -> None:
    principal = Principal.of("ada", "default", Role.USER)
    with pytest.raises(RuntimeError), principal_scope(principal):
        assert current_principal() is principal
        raise RuntimeError("the servicer failed")
    with pytest.raises(Unauthenticated):
        current_principal()
