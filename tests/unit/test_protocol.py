"""The public wire codecs: every error code, edges of every limit, and totality."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from seqgen_common.errors import (
    ErrorCode,
    ExhaustedError,
    InternalError,
    RequestError,
    SeqgenError,
    Unavailable,
)
from seqgen_common.limits import MAX_COUNT, MAX_NAME_BYTES, MAX_VALUE
from seqgen_common.protocol import (
    CONTROL_SOCKET_MISTAKE,
    OK_HEAD,
    OK_START,
    OK_TAIL,
    Request,
    decode_reply,
    decode_request,
    encode_error,
    encode_request,
    encode_values,
    highest_issued,
    is_control_reply,
    split_values,
)

CODES = {c.value for c in ErrorCode}


def code_of(frame: bytes) -> str:
    with pytest.raises(RequestError) as info:
        decode_request(frame)
    return info.value.code


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b'["a","0"]', Request("a", "0", 1)),
        (b'["a","0",1000]', Request("a", "0", 1000)),
        (b' [ "inv", "17" , 3 ] ', Request("inv", "17", 3)),
        (b'["a","9223372036854775807"]', Request("a", "9223372036854775807", 1)),
        (b'["a","000123"]', Request("a", "000123", 1)),
        ('["\u00e9t\u00e9","0"]'.encode(), Request("\u00e9t\u00e9", "0", 1)),
    ],
)
def test_valid_requests(frame: bytes, expected: Request) -> None:
    assert decode_request(frame) == expected


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"", "BAD_REQUEST"),
        (b"junk", "BAD_REQUEST"),
        (b"\xef\xbb\xbf[\"a\",\"0\"]", "BAD_REQUEST"),  # a BOM is not allowed
        (b'["\xff","0"]', "BAD_REQUEST"),  # not UTF-8
        (b'{"name":"a"}', "BAD_REQUEST"),
        (b'"a"', "BAD_REQUEST"),
        (b"[]", "BAD_REQUEST"),
        (b'["a"]', "BAD_REQUEST"),
        (b'["a","0",1,2]', "BAD_REQUEST"),
        (b'["a","0"] trailing', "BAD_REQUEST"),
        (b"[" * 10000, "BAD_REQUEST"),
        (b"[" * 5000 + b"]" * 5000, "BAD_REQUEST"),
        (b'[null,"0"]', "BAD_NAME"),
        (b'[1,"0"]', "BAD_NAME"),
        (b'["","0"]', "BAD_NAME"),
        (b'["a\\u0000","0"]', "BAD_NAME"),
        (b'["a\\n","0"]', "BAD_NAME"),
        (b'["a\\u007f","0"]', "BAD_NAME"),
        (b'["a\\u0085","0"]', "BAD_NAME"),
        (b'["' + b"x" * (MAX_NAME_BYTES + 1) + b'","0"]', "BAD_NAME"),
        (b'["' + "\u00e9".encode() * 101 + b'","0"]', "BAD_NAME"),  # 101 chars, 202 bytes
        (b'[["a"],"0"]', "BAD_NAME"),
        (b'["a",0]', "BAD_LAST"),
        (b'["a",null]', "BAD_LAST"),
        (b'["a",""]', "BAD_LAST"),
        (b'["a","-1"]', "BAD_LAST"),
        (b'["a","1.5"]', "BAD_LAST"),
        (b'["a"," 1"]', "BAD_LAST"),
        (b'["a","1_000"]', "BAD_LAST"),
        (b'["a","\\u0661"]', "BAD_LAST"),  # Arabic-Indic digit one
        (b'["a","5\\n"]', "BAD_LAST"),  # a final newline ("$" in a regex lets it through)
        (b'["a","5\\r\\n"]', "BAD_LAST"),
        (b'["a","9223372036854775808"]', "BAD_LAST"),
        (b'["a","' + b"9" * 5000 + b'"]', "BAD_LAST"),
        (b'["a","0",0]', "BAD_COUNT"),
        (b'["a","0",1001]', "BAD_COUNT"),
        (b'["a","0",-1]', "BAD_COUNT"),
        (b'["a","0",1.0]', "BAD_COUNT"),
        (b'["a","0","5"]', "BAD_COUNT"),
        (b'["a","0",true]', "BAD_COUNT"),
        (b'["a","0",null]', "BAD_COUNT"),
        (b'["a","0",99999999999999999999999]', "BAD_COUNT"),
    ],
)
def test_invalid_requests_get_the_precise_code(frame: bytes, code: str) -> None:
    assert code_of(frame) == code


def test_name_of_exactly_max_bytes_is_valid() -> None:
    name = "\u00e9" * (MAX_NAME_BYTES // 2)  # 200 bytes
    assert decode_request(encode_request(name, 0)).name == name


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_give_one_code(frame: bytes) -> None:
    try:
        request = decode_request(frame)
    except RequestError as exc:
        assert exc.code in {"BAD_REQUEST", "BAD_NAME", "BAD_LAST", "BAD_COUNT"}
    else:
        assert isinstance(request, Request)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@given(st.lists(json_values, max_size=5))
def test_any_json_array_decodes_or_gives_one_code(items: list[object]) -> None:
    frame = msgspec.json.encode(items)
    try:
        request = decode_request(frame)
    except RequestError as exc:
        assert exc.code in {"BAD_REQUEST", "BAD_NAME", "BAD_LAST", "BAD_COUNT"}
    else:
        assert 2 <= len(items) <= 3
        assert request.name == items[0]
        assert 0 <= request.last_value <= MAX_VALUE


@given(
    st.text(min_size=1, max_size=50).filter(
        lambda s: not any(ord(c) < 32 or 127 <= ord(c) < 160 or 0xD800 <= ord(c) < 0xE000 for c in s)
    ),
    st.integers(0, MAX_VALUE),
    st.integers(1, MAX_COUNT),
)
def test_request_round_trip(name: str, last: int, count: int) -> None:
    decoded = decode_request(encode_request(name, last, count))
    assert (decoded.name, decoded.last_value, decoded.count) == (name, last, count)


def test_values_reply_round_trip() -> None:
    assert encode_values(7, 1, 1) == b'[null,"7"]'
    assert encode_values(3, 2, 3) == b'[null,"3","5","7"]'
    assert decode_reply(encode_values(MAX_VALUE, 1, 1)) == [MAX_VALUE]


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("BAD_NAME", RequestError),
        ("EXHAUSTED", ExhaustedError),
        ("UNAVAILABLE", Unavailable),
        ("INTERNAL", InternalError),
        ("SOMETHING_NEW", SeqgenError),
    ],
)
def test_error_replies_raise_the_matching_class(code: str, cls: type[SeqgenError]) -> None:
    with pytest.raises(cls) as info:
        decode_reply(encode_error(code, "why"))
    assert info.value.code == code
    assert info.value.message == "why"


@pytest.mark.parametrize("frame", [b"", b"[]", b"{}", b'[null]', b'[null,"x"]', b'[null,5]', b"\xff"])
def test_malformed_replies_are_internal(frame: bytes) -> None:
    with pytest.raises(SeqgenError) as info:
        decode_reply(frame)
    assert info.value.code == "INTERNAL"


def test_a_control_protocol_reply_names_the_control_port_mistake() -> None:
    frame = b'{"type":"error","code":"BAD_REQUEST","message":"not a control request"}'
    assert is_control_reply(frame)
    with pytest.raises(SeqgenError) as raised:
        decode_reply(frame, 1)
    assert raised.value.code == ErrorCode.INTERNAL and raised.value.message == CONTROL_SOCKET_MISTAKE
    for other in (b"{}", b'{"type": 1}', b"{nope", b'["x"]', b"[]"):
        assert not is_control_reply(other), other
    with pytest.raises(SeqgenError, match="malformed reply"):
        decode_reply(b"{}", 1)


@pytest.mark.parametrize(
    ("reply", "highest"),
    [
        (encode_values(7, 2, 1), 7),
        (encode_values(7, 2, 1000), 7 + 2 * 999),
        (encode_values(MAX_VALUE, 1, 1), MAX_VALUE),
        (b'[ null , "3" , "5" ]', 5),  # not compact: decoded properly
        (encode_error(ErrorCode.EXHAUSTED, "no"), None),
        (b'[null,"]', None),
        (b'[null,"1","x"]', None),
        (b"garbage", None),
        (b"[null]", None),
    ],
)
def test_highest_issued(reply: bytes, highest: int | None) -> None:
    assert highest_issued(reply) == highest


@given(st.integers(1, 10**12), st.integers(1, 9),
       st.lists(st.integers(1, 20), min_size=1, max_size=8))
def test_a_reply_splits_into_consecutive_parts_in_order(first: int, step: int,
                                                        counts: list[int]) -> None:
    reply = encode_values(first, step, sum(counts))
    split = split_values(reply, counts)
    assert split is not None
    parts, highest = split
    values = decode_reply(reply)
    assert highest == values[-1] == highest_issued(reply)
    start = 0
    for count, part in zip(counts, parts, strict=True):
        assert part.startswith(OK_HEAD) and part.endswith(OK_TAIL)
        assert decode_reply(part, count) == values[start:start + count]
        start += count


def test_a_reply_not_in_the_compact_form_is_split_after_a_proper_decode() -> None:
    assert split_values(b'[ null , "3" , "5", "7" ]', [2, 1]) == (
        [b'[null,"3","5"]', b'[null,"7"]'], 7)


@pytest.mark.parametrize("reply", [
    b'[null,"1","3"]',  # one number short of the counts
    b'[null,"1","3","5","7"]',  # one too many
    b'[null,"1","x","5"]',
    b'["UNAVAILABLE","fenced"]',
    b"garbage",
])
def test_a_reply_that_does_not_fit_the_counts_is_not_split(reply: bytes) -> None:
    assert split_values(reply, [1, 2]) is None


def test_every_success_reply_starts_with_ok_start_and_no_error_does() -> None:
    assert encode_values(1, 1, 1).startswith(OK_START)
    assert encode_values(1, 1, 3).startswith(OK_HEAD)
    assert all(not encode_error(code, "x").startswith(OK_START) for code in ErrorCode)
