"""Floors go to the server in RaiseFloors frames the control socket accepts (< 64 KiB)."""

from __future__ import annotations

from seqgen_admin.recover import floor_batches
from seqgen_common.control import MAX_FLOORS, Floor, RaiseFloors, decode_control_request, encode_control
from seqgen_common.limits import MAX_FRAME_BYTES, MAX_VALUE


def test_batches_fit_in_a_frame_and_keep_every_floor() -> None:
    floors = [(f'{i:05d}"\\' + "é" * 96, MAX_VALUE - i) for i in range(3000)]  # worst-case names
    batches = list(floor_batches(floors))
    assert [f for batch in batches for f in batch] == floors
    for batch in batches:
        frame = encode_control(RaiseFloors(floors=[Floor(n, v) for n, v in batch]))
        assert len(frame) < MAX_FRAME_BYTES
        assert len(decode_control_request(frame).floors) == len(batch)  # type: ignore[union-attr]


def test_small_floors_are_capped_by_count() -> None:
    batches = list(floor_batches((str(i), i) for i in range(2500)))
    assert [len(b) for b in batches] == [MAX_FLOORS, MAX_FLOORS, 500]
    assert list(floor_batches([])) == []
