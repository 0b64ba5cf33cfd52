"""Subscription parsing (``since=``, resume cursors, filters), ids and topic names."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from werkzeug.datastructures import Headers, MultiDict

from tandem.core.errors import InvalidInput
from tandem.core.ids import ID_LENGTH, MAX_SEQ, decode_id, encode_id
from tandem.core.schemas import SINCE_ALL, SINCE_LATEST, SINCE_NONE, Message, MessageFilter, Since
from tandem.protocol.requests import parse_cursor, parse_limit
from tandem.protocol.subscribe import parse_since, parse_subscribe
from tandem.protocol.topics import MAX_TOPICS, RESERVED, parse_topics, validate_topic

NOW = 1_700_000_000
ID_SHAPE = re.compile(r"[A-Za-z0-9]{12}")
TOPIC_CHARS = "-_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _message(
    *,
    priority: int | None = None,
    tags: tuple[str, ...] = (),
    title: str | None = None,
    text: str = "hello",
) -> Message:
    return Message(
        id=encode_id(1),
        seq=1,
        time=NOW,
        expires=NOW + 60,
        topic="t",
        message=text,
        title=title,
        priority=priority,
        tags=tags,
        click=None,
    )


# --- since= --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("all", SINCE_ALL),
        ("ALL", SINCE_ALL),
        (" all ", SINCE_ALL),
        ("latest", SINCE_LATEST),
        ("Latest", SINCE_LATEST),
        ("none", SINCE_NONE),
        ("NONE", SINCE_NONE),
    ],
)
def test_since_words(text: str, expected: Since) -> None:
    assert parse_since(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10m", 600), ("2h", 7200), ("1d", 86400), ("30s", 30), ("0s", 0), ("90m", 5400)],
)
def test_since_duration_is_a_time_cutoff_before_now(text: str, seconds: int) -> None:
    assert parse_since(text, now=NOW) == Since("time", NOW - seconds)


def test_since_duration_longer_than_the_epoch_clamps_to_zero() -> None:
    assert parse_since("999999d", now=1000) == Since("time", 0)


@pytest.mark.parametrize("text", ["0", "1", "1700000000", "99999999999"])
def test_since_unix_time(text: str) -> None:
    assert parse_since(text, now=NOW) == Since("time", int(text))


@pytest.mark.parametrize("seq", [0, 1, 61, 62, 12345, 2**40, MAX_SEQ])
def test_since_message_id_means_after_its_seq(seq: int) -> None:
    assert parse_since(encode_id(seq), now=NOW) == Since("seq", seq)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "yesterday",
        "10x",
        "10 m",
        "-5",
        "1.5",
        "-10m",
        "m10",
        "123456789012",  # 12 digits: too long for a unix time, and not an id
        "abc",
        "A" * 11,
        "A" * 13,
        "Abcdefghijk!",
        "\u00b2",  # isdigit() is true, int() fails: must be a 400, not a crash
        "\u0661\u0662\u0663",  # Arabic-Indic digits are not a unix time
    ],
)
def test_since_garbage_is_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput, match="since"):
        parse_since(text, now=NOW)


# --- parse_subscribe -----------------------------------------------------------------------


def test_stream_defaults_to_since_none() -> None:
    request = parse_subscribe({}, {}, now=NOW)
    assert request.since == SINCE_NONE
    assert request.poll is False
    assert request.filter == MessageFilter()


@pytest.mark.parametrize("value", ["1", "yes", "true"])
def test_poll_defaults_to_since_all(value: str) -> None:
    request = parse_subscribe({}, MultiDict({"poll": value}), now=NOW)
    assert request.poll is True
    assert request.since == SINCE_ALL


def test_poll_as_a_header() -> None:
    request = parse_subscribe(Headers([("X-Poll", "1")]), {}, now=NOW)
    assert (request.poll, request.since) == (True, SINCE_ALL)


def test_poll_with_explicit_since() -> None:
    request = parse_subscribe({}, {"poll": "1", "since": "10m"}, now=NOW)
    assert request.since == Since("time", NOW - 600)


def test_bad_poll_value_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="poll"):
        parse_subscribe({}, {"poll": "sometimes"}, now=NOW)


def test_since_header_alias() -> None:
    assert parse_subscribe({"X-Since": "latest"}, {}, now=NOW).since == SINCE_LATEST


def test_last_event_id_header_overrides_since() -> None:
    cursor = encode_id(41)
    request = parse_subscribe(Headers([("Last-Event-ID", cursor)]), {"since": "all"}, now=NOW)
    assert request.since == Since("seq", 41)


def test_last_event_id_param_overrides_since() -> None:
    cursor = encode_id(7)
    query = MultiDict({"since": "1h", "last_event_id": cursor})
    assert parse_subscribe({}, query, now=NOW).since == Since("seq", 7)


def test_last_event_id_header_in_any_case() -> None:
    request = parse_subscribe({"last-event-id": encode_id(3)}, {}, now=NOW)
    assert request.since == Since("seq", 3)


def test_bad_last_event_id_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        parse_subscribe({"Last-Event-ID": "not-an-id"}, {}, now=NOW)


def test_filters_from_query() -> None:
    query = MultiDict(
        {"priority": "1,high,5", "tags": "a, b", "title": "Backup", "message": "done"}
    )
    request = parse_subscribe({}, query, now=NOW)
    assert request.filter == MessageFilter(
        priorities=frozenset({1, 4, 5}),
        tags=frozenset({"a", "b"}),
        title="Backup",
        message="done",
    )


def test_filters_from_header_aliases() -> None:
    headers = Headers([("X-Priority", "urgent,min"), ("ta", "x"), ("t", "T"), ("m", "M")])
    request = parse_subscribe(headers, {}, now=NOW)
    assert request.filter == MessageFilter(
        priorities=frozenset({5, 1}), tags=frozenset({"x"}), title="T", message="M"
    )


def test_priority_filter_skips_blanks() -> None:
    assert parse_subscribe({}, {"p": "2,,3,"}, now=NOW).filter.priorities == {2, 3}


def test_bad_priority_filter_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="priority"):
        parse_subscribe({}, {"priority": "3,loud"}, now=NOW)


# --- MessageFilter.matches -----------------------------------------------------------------


def test_empty_filter_matches_everything() -> None:
    assert MessageFilter().matches(_message())
    assert MessageFilter().matches(_message(priority=1, tags=("x",), title="t"))


def test_no_priority_counts_as_three() -> None:
    assert MessageFilter(priorities=frozenset({3})).matches(_message(priority=None))
    assert MessageFilter(priorities=frozenset({3, 4})).matches(_message(priority=None))
    assert not MessageFilter(priorities=frozenset({1, 5})).matches(_message(priority=None))


def test_priority_filter_is_any_of() -> None:
    f = MessageFilter(priorities=frozenset({4, 5}))
    assert f.matches(_message(priority=4))
    assert f.matches(_message(priority=5))
    assert not f.matches(_message(priority=3))


def test_tags_filter_needs_all_tags() -> None:
    f = MessageFilter(tags=frozenset({"a", "b"}))
    assert f.matches(_message(tags=("a", "b")))
    assert f.matches(_message(tags=("c", "b", "a")))
    assert not f.matches(_message(tags=("a",)))
    assert not f.matches(_message())


def test_title_and_message_filters_match_exactly() -> None:
    f = MessageFilter(title="Backup", message="done")
    assert f.matches(_message(title="Backup", text="done"))
    assert not f.matches(_message(title="backup", text="done"))
    assert not f.matches(_message(title="Backup", text="done!"))
    assert not f.matches(_message(title=None, text="done"))


# --- cursors and limits of the REST API ----------------------------------------------------


def test_parse_cursor() -> None:
    assert parse_cursor(None) == 0
    assert parse_cursor("") == 0
    assert parse_cursor(encode_id(99)) == 99
    with pytest.raises(InvalidInput, match="cursor"):
        parse_cursor("12345")


@pytest.mark.parametrize(("value", "expected"), [(None, 100), ("", 100), ("1", 1), ("1000", 1000)])
def test_parse_limit(value: str | None, expected: int) -> None:
    assert parse_limit(value) == expected


@pytest.mark.parametrize("value", ["0", "1001", "-1", "ten", "1.0", "\u00b2", " 5"])
def test_bad_limit_is_invalid_input(value: str) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        parse_limit(value)


# --- properties: ids -----------------------------------------------------------------------

seqs = st.integers(min_value=0, max_value=MAX_SEQ)


@given(seqs)
@example(0)
@example(MAX_SEQ)
def test_id_round_trips_and_has_its_shape(seq: int) -> None:
    message_id = encode_id(seq)
    assert decode_id(message_id) == seq
    assert len(message_id) == ID_LENGTH == 12
    assert ID_SHAPE.fullmatch(message_id)
    assert message_id[0] in string.ascii_letters


@given(seqs)
@example(0)
@example(MAX_SEQ)
def test_an_id_is_never_mistaken_for_a_duration_or_unix_time(seq: int) -> None:
    assert parse_since(encode_id(seq), now=NOW) == Since("seq", seq)


@pytest.mark.parametrize("seq", [-1, MAX_SEQ + 1])
def test_encode_id_rejects_out_of_range(seq: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        encode_id(seq)


@pytest.mark.parametrize(
    "text", ["", "1bcdefghijkl", "abcdefghijk", "abcdefghijklm", "abcdefghij-k"]
)
def test_decode_id_rejects_non_ids(text: str) -> None:
    assert decode_id(text) is None


# --- properties: durations -----------------------------------------------------------------


@given(st.integers(min_value=0, max_value=999_999), st.sampled_from(sorted(UNIT_SECONDS)))
def test_any_duration_is_a_cutoff_relative_to_now(amount: int, unit: str) -> None:
    now = 10**11  # later than 999999d after the epoch, so nothing is clamped to 0
    assert parse_since(f"{amount}{unit}", now=now) == Since(
        "time", now - amount * UNIT_SECONDS[unit]
    )


@given(st.from_regex(r"[0-9]{1,6}", fullmatch=True), st.sampled_from(sorted(UNIT_SECONDS)))
def test_durations_with_leading_zeros(digits: str, unit: str) -> None:
    now = 10**11
    assert parse_since(digits + unit, now=now) == Since(
        "time", now - int(digits) * UNIT_SECONDS[unit]
    )


# --- properties: topic names ---------------------------------------------------------------

valid_topics = st.text(alphabet=TOPIC_CHARS, min_size=1, max_size=64).filter(
    lambda name: name not in RESERVED
)


@st.composite
def invalid_topics(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["bad-char", "empty", "too-long"]))
    if kind == "empty":
        return ""
    if kind == "too-long":
        return draw(st.text(alphabet=TOPIC_CHARS, min_size=65, max_size=200))
    bad = draw(st.characters().filter(lambda char: char not in TOPIC_CHARS))
    before = draw(st.text(alphabet=TOPIC_CHARS, max_size=31))
    after = draw(st.text(alphabet=TOPIC_CHARS, max_size=31))
    return before + bad + after


@given(valid_topics)
@example("-")
@example("_")
@example("a" * 64)
def test_valid_topic_names_are_accepted(name: str) -> None:
    assert validate_topic(name) == name


@given(invalid_topics())
@example("alerts\n")  # "$" alone would let a trailing newline through
@example("alerts/x")
@example("a" * 65)
@example("\u00e9t\u00e9")
@example("\u0661")
def test_invalid_topic_names_are_rejected(name: str) -> None:
    with pytest.raises(InvalidInput, match="topic"):
        validate_topic(name)


@pytest.mark.parametrize("name", sorted(RESERVED))
def test_reserved_topic_names_are_rejected(name: str) -> None:
    with pytest.raises(InvalidInput, match="reserved"):
        validate_topic(name)


@given(st.lists(valid_topics, min_size=1, max_size=20))
def test_parse_topics_dedupes_preserving_order(names: list[str]) -> None:
    expected = tuple(dict.fromkeys(names))
    assert parse_topics(",".join(names)) == expected


def test_parse_topics_example() -> None:
    assert parse_topics("b,a,b,c,a") == ("b", "a", "c")


@pytest.mark.parametrize("value", ["", "a,", ",a", "a,,b", "a,b c", "a,api"])
def test_parse_topics_rejects_bad_entries(value: str) -> None:
    with pytest.raises(InvalidInput, match="topic"):
        parse_topics(value)


def test_parse_topics_limits_the_count() -> None:
    names = [f"t{i}" for i in range(MAX_TOPICS + 1)]
    assert len(parse_topics(",".join(names[:MAX_TOPICS]))) == MAX_TOPICS
    with pytest.raises(InvalidInput, match="too many"):
        parse_topics(",".join(names))
    # Duplicates do not count towards the limit.
    assert parse_topics(",".join(names[:MAX_TOPICS] * 2)) == tuple(names[:MAX_TOPICS])


def test_since_words_and_units_in_any_case_but_ids_keep_theirs() -> None:
    from tandem.core.ids import encode_id

    assert parse_since("ALL", now=1000) == SINCE_ALL
    assert parse_since("10M", now=1000) == Since("time", 400)
    message_id = encode_id(12345)
    assert parse_since(message_id, now=1000) == Since("seq", 12345)
    assert parse_since(message_id.swapcase(), now=1000) != Since("seq", 12345)
