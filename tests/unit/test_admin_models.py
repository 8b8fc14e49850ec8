"""The admin's HTTP models: floor values, names, and control replies turned into JSON."""

from __future__ import annotations

import re

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from seqgen_admin.models import (
    VALUE_PATTERN,
    FloorRequest,
    check_name,
    digits_at_most,
    page_out,
    ready_out,
    sequence_out,
    status_out,
)
from seqgen_common.control import Counters, Pong, SequenceInfo, SequencePage, Status
from seqgen_common.limits import MAX_VALUE


def status_reply() -> Status:
    return Status(
        version="1.2.3", instance=2, instances=3, drift=100, reserve=1000, uptime_s=12.5,
        data_dir="/var/lib/seqgen", sequences=7, clean_start=False, store_ok=True,
        counters=Counters(
            requests={"OK": 10, "BAD_NAME": 2}, numbers_issued=40, catchups=1, catchup_skipped=9,
            skipped_at_start=3000, reservations_written=5, store_writes=4, store_write_failures=1,
            store_write_seconds_sum=0.01, store_write_seconds_max=0.004, disk_waits=3,
            control_requests=8,
        ),
    )


@pytest.mark.parametrize("value", ["0", "1", "007", "100000", str(MAX_VALUE)])
def test_valid_floor_values(value: str) -> None:
    assert FloorRequest.model_validate({"value": value}).value == value


@pytest.mark.parametrize("value", [
    str(MAX_VALUE + 1), "9" * 19, "1" * 20, "", "-1", "+1", "1.0", "1e3", " 1", "1 ", "0x10",
    "١٢٣", "\uff11\uff12", 12, 1.5, None, True, [], {},
])
def test_invalid_floor_values(value: object) -> None:
    with pytest.raises(ValidationError):
        FloorRequest.model_validate({"value": value})


def test_floor_request_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        FloorRequest.model_validate({"value": "1", "force": True})


@pytest.mark.parametrize("name", ["a", "inv/2026", "grüße", "x" * 200, "€" * 66, "a b", "..."])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "x" * 201, "€" * 67, "a\nb", "\x00", "tab\t", "\x7f", "\x85"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(ValueError):
        check_name(name)


def test_sequence_values_are_exact_digit_strings() -> None:
    info = SequenceInfo(name="big", current=MAX_VALUE - 1, durable=MAX_VALUE)
    assert sequence_out(info).model_dump() == {
        "name": "big", "current": "9223372036854775806", "durable": "9223372036854775807"}
    page = page_out(SequencePage(items=[info], next_cursor="big"))
    assert page.model_dump(mode="json") == {
        "items": [{"name": "big", "current": "9223372036854775806",
                   "durable": "9223372036854775807"}],
        "next_cursor": "big",
    }
    assert page_out(SequencePage(items=[], next_cursor=None)).next_cursor is None


def test_status_keeps_every_field_of_the_control_reply() -> None:
    reply = status_reply()
    wire = msgspec.to_builtins(reply)
    del wire["type"]  # the control protocol's tag, not data
    assert status_out(reply).model_dump() == wire


def test_ready_from_pong() -> None:
    assert ready_out(Pong(version="1.0.0", instance=1, instances=2)).model_dump() == {
        "status": "ready", "version": "1.0.0", "instance": 1, "instances": 2}


@given(limit=st.integers(0, MAX_VALUE), n=st.integers(0, 2**64), zeros=st.integers(0, 3))
@example(limit=MAX_VALUE, n=MAX_VALUE, zeros=0)
@example(limit=MAX_VALUE, n=MAX_VALUE + 1, zeros=0)
@example(limit=1000, n=1000, zeros=1)
@example(limit=1000, n=1001, zeros=0)
@example(limit=0, n=0, zeros=0)
@example(limit=0, n=1, zeros=0)
def test_digits_at_most_matches_exactly_the_numbers_up_to_the_limit(
    limit: int, n: int, zeros: int
) -> None:
    pattern = re.compile(digits_at_most(limit))
    near = [n, limit, limit + 1, max(limit - 1, 0), n % (limit + 1)]
    for value in near:
        assert bool(pattern.fullmatch("0" * zeros + str(value))) == (value <= limit), value
    for text in ("", "-1", "+1", "1a", " 1", "1.0"):
        assert not pattern.fullmatch(text)


def test_the_floor_pattern_is_the_one_in_the_schema() -> None:
    schema = FloorRequest.model_json_schema()
    assert schema["properties"]["value"]["pattern"] == VALUE_PATTERN
    assert re.fullmatch(VALUE_PATTERN, str(MAX_VALUE))
    assert not re.fullmatch(VALUE_PATTERN, str(MAX_VALUE + 1))
