"""Client options, the per-name memory, request building and reply checking (no sockets)."""

from __future__ import annotations

import msgspec
import pytest

import seqgen_client
from seqgen_client import AsyncClient, Client
from seqgen_client.lastseen import LastSeen
from seqgen_client.options import DEFAULT_ENDPOINT, ClientOptions
from seqgen_common import errors
from seqgen_common.errors import (
    ErrorCode,
    ExhaustedError,
    RequestError,
    SeqgenError,
    Unavailable,
)
from seqgen_common.limits import MAX_VALUE
from seqgen_common.protocol import decode_reply


def test_defaults() -> None:
    opts = ClientOptions.build(DEFAULT_ENDPOINT)
    assert opts.endpoints == ("tcp://127.0.0.1:6410",)
    assert opts.timeout_s == 1.0
    assert 3.0 <= opts.deadline_s <= 10.0
    assert opts.backoff_s <= opts.max_backoff_s


def test_a_list_of_endpoints_is_kept_in_order() -> None:
    opts = ClientOptions.build(iter(["tcp://b:1", "ipc:///tmp/x", "tcp://a:1"]))
    assert opts.endpoints == ("tcp://b:1", "ipc:///tmp/x", "tcp://a:1")


@pytest.mark.parametrize(
    ("endpoints", "kwargs", "error"),
    [
        ([], {}, ValueError),
        (["http://a:1"], {}, ValueError),
        (["tcp://a"], {}, ValueError),
        (["tcp://a:1", "tcp://a:1"], {}, ValueError),
        ([b"tcp://a:1"], {}, TypeError),
        (["tcp://a:1"], {"timeout_s": 0}, ValueError),
        (["tcp://a:1"], {"timeout_s": -1.0}, ValueError),
        (["tcp://a:1"], {"deadline_s": float("inf")}, ValueError),
        (["tcp://a:1"], {"deadline_s": float("nan")}, ValueError),
        (["tcp://a:1"], {"timeout_s": "1"}, TypeError),
        (["tcp://a:1"], {"backoff_s": True}, TypeError),
        (["tcp://a:1"], {"backoff_s": 5.0, "max_backoff_s": 1.0}, ValueError),
    ],
)
def test_bad_options_are_refused_at_construction(
    endpoints: list[object], kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        ClientOptions.build(endpoints, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(error):
        Client(endpoints, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(error):
        AsyncClient(endpoints, **kwargs)  # type: ignore[arg-type]


def test_options_after_the_endpoints_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Client("tcp://a:1", 1.0)  # type: ignore[misc]


def test_request_carries_the_highest_number_seen() -> None:
    seen = LastSeen()
    assert msgspec.json.decode(seen.request("inv", 1)) == ["inv", "0"]
    seen.record("inv", 41)
    seen.record("inv", 17)  # lower numbers (another server lagging) never lower it
    assert seen.get("inv") == 41
    assert msgspec.json.decode(seen.request("inv", 1)) == ["inv", "41"]
    assert msgspec.json.decode(seen.request("inv", 5)) == ["inv", "41", 5]
    assert msgspec.json.decode(seen.request("other", 1)) == ["other", "0"]
    seen.record("big", MAX_VALUE)
    assert msgspec.json.decode(seen.request("big", 1)) == ["big", str(MAX_VALUE)]


@pytest.mark.parametrize(
    "name", ["", "x" * 201, "é" * 101, "tab\there", "nl\n", "\x7f", "\x9f", None, 7, b"inv", ["l"]]
)
def test_invalid_names_are_refused_before_sending(name: object) -> None:
    with pytest.raises(RequestError) as info:
        LastSeen().request(name, 1)  # type: ignore[arg-type]
    assert info.value.code == ErrorCode.BAD_NAME


def test_names_at_the_limits_are_accepted() -> None:
    seen = LastSeen()
    for name in ("x", "x" * 200, "é" * 100, "ünïcödé ✓", "with space"):
        assert msgspec.json.decode(seen.request(name, 1))[0] == name


@pytest.mark.parametrize("count", [0, -1, 1001, 2.0, "3", True, None])
def test_invalid_counts_are_refused_before_sending(count: object) -> None:
    with pytest.raises(RequestError) as info:
        LastSeen().request("inv", count)  # type: ignore[arg-type]
    assert info.value.code == ErrorCode.BAD_COUNT


def test_values_of_a_success_reply() -> None:
    assert decode_reply(b'[null,"7"]', 1) == [7]
    assert decode_reply(b'[null,"1","3","5"]', 3) == [1, 3, 5]
    assert decode_reply(b'[null,"%d"]' % MAX_VALUE, 1) == [MAX_VALUE]


@pytest.mark.parametrize(
    ("reply", "error", "code"),
    [
        (b'["BAD_NAME","name must be a non-empty string"]', RequestError, "BAD_NAME"),
        (b'["EXHAUSTED","no more"]', ExhaustedError, "EXHAUSTED"),
        (b'["UNAVAILABLE","no backend"]', Unavailable, "UNAVAILABLE"),
        (b'["SOMETHING_NEW","?"]', SeqgenError, "SOMETHING_NEW"),
        (b'[null,"1","3"]', SeqgenError, "INTERNAL"),  # asked for 1, got 2
        (b'[null]', SeqgenError, "INTERNAL"),
        (b'[null,"-1"]', SeqgenError, "INTERNAL"),
        (b'[null,"+1"]', SeqgenError, "INTERNAL"),
        (b'[null,"\xc2\xb2"]', SeqgenError, "INTERNAL"),  # a superscript digit
        (b'[null,null]', SeqgenError, "INTERNAL"),
        (b"not json", SeqgenError, "INTERNAL"),
        (b"\xff", SeqgenError, "INTERNAL"),
        (b"", SeqgenError, "INTERNAL"),
    ],
)
def test_values_of_anything_else_raises_the_matching_error(
    reply: bytes, error: type[SeqgenError], code: str
) -> None:
    with pytest.raises(error) as info:
        decode_reply(reply, 1)
    assert info.value.code == code


def test_the_server_message_is_kept() -> None:
    with pytest.raises(ExhaustedError) as info:
        decode_reply(b'["EXHAUSTED","5 more number(s) would pass the maximum"]', 5)
    assert info.value.message == "5 more number(s) would pass the maximum"
    assert str(info.value) == "EXHAUSTED: 5 more number(s) would pass the maximum"


def test_the_package_re_exports_the_one_exception_tree() -> None:
    assert seqgen_client.SeqgenError is errors.SeqgenError
    assert seqgen_client.Unavailable is errors.Unavailable
    assert seqgen_client.RequestError is errors.RequestError
    assert seqgen_client.ExhaustedError is errors.ExhaustedError
    assert issubclass(seqgen_client.Unavailable, seqgen_client.SeqgenError)


def test_a_number_seen_elsewhere_is_carried_as_last_and_checked() -> None:
    with Client("tcp://127.0.0.1:9") as client:  # nothing is sent: no socket is opened
        client.seen("script", 5001)
        client.seen("script", 40)  # a lower number never lowers it
        assert client.last("script") == 5001
        for name, value, code in [("", 1, "BAD_NAME"), ("ok", -1, "BAD_LAST"),
                                  ("ok", MAX_VALUE + 1, "BAD_LAST"), ("ok", True, "BAD_LAST")]:
            with pytest.raises(RequestError) as refused:
                client.seen(name, value)
            assert refused.value.code == code
