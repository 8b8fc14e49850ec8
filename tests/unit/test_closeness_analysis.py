"""benchmarks.closeness's analysis (pure): steps back per caller, and the time to close."""

from __future__ import annotations

from benchmarks.closeness import Observed, analyse


def obs(caller: int, started: float, value: int) -> Observed:
    return Observed(caller, started, started + 0.01, value)


def test_steps_back_are_per_caller_and_the_time_to_close_is_the_first_close_number() -> None:
    seen = [
        obs(0, 0.0, 1001), obs(0, 1.0, 1003),  # the others (odd: instance 1 of 2)
        obs(1, 1.1, 40),                        # held (even) before resuming at 1.5: ignored
        obs(1, 2.0, 42),                        # after: far below 1003 - drift
        obs(0, 2.1, 1005),
        obs(1, 2.5, 990),                       # within drift of 1005: close, 1.0 s after
        obs(1, 3.0, 1006),
        obs(0, 3.1, 1007),
        obs(1, 4.0, 800),                       # after the first close one: counted beyond
    ]
    back, ttc, returned, beyond = analyse(seen, 2, 2, 1.5, 100)
    assert back == 1006 - 800  # caller 1: 1006 then 800; caller 0 only goes up
    assert ttc is not None and abs(ttc - 1.0) < 1e-9
    assert returned == 4
    assert beyond == 1 / 2  # 1006 close, 800 not


def test_a_server_that_never_comes_close_has_no_time() -> None:
    seen = [obs(0, 0.0, 5001), obs(1, 2.0, 2), obs(1, 3.0, 4)]
    back, ttc, returned, beyond = analyse(seen, 2, 2, 1.0, 100)
    assert (back, ttc, returned, beyond) == (0, None, 2, 0.0)


def test_numbers_received_after_a_call_began_do_not_count_against_it() -> None:
    # The other server's 5001 came after the held server's call began: not "issued before".
    seen = [Observed(0, 0.9, 1.3, 5001), Observed(1, 1.2, 1.25, 2)]
    _, ttc, _, _ = analyse(seen, 2, 2, 1.0, 100)
    assert ttc is not None and abs(ttc - 0.2) < 1e-9
