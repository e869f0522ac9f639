"""The bound on concurrent uploads: one more than the limit is refused at once, with a hint."""

from __future__ import annotations

import pytest

from rag.core.errors import Overloaded
from rag.ingestion.intake import UploadSlots


def test_one_upload_past_the_limit_is_refused_with_when_to_retry() -> None:
    slots = UploadSlots(2, retry_after_s=1.5)
    with slots.take(), slots.take():
        with (
            pytest.raises(Overloaded, match=r"2 uploads .* \(UPLOAD_MAX_CONCURRENT\); retry in 1.5 s"),
            slots.take(),
        ):
            pass
        assert slots.in_use == 2
    with slots.take():  # a finished upload frees its slot, also when it failed
        assert slots.in_use == 1
    with pytest.raises(ValueError), slots.take():
        raise ValueError
    assert slots.in_use == 0
