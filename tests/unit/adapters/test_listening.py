"""The reconnect delays of the LISTEN connections: jittered, doubling, capped, reset on success."""

from __future__ import annotations

from rag.adapters.postgres.listening import Reconnects


def test_delays_double_up_to_the_cap_with_jitter_and_start_over_after_a_success() -> None:
    reconnects = Reconnects(first_s=1.0, max_s=8.0)
    bounds = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    for bound in bounds:
        assert bound / 2 <= reconnects.next_delay() <= bound
    reconnects.reset()
    assert 0.5 <= reconnects.next_delay() <= 1.0
