"""ntfy publish parsing: ``PUT/POST /<topic>``, ``GET /<topic>/publish`` and JSON bodies."""

from __future__ import annotations

import base64
from collections.abc import Mapping

import orjson
import pytest
from werkzeug.datastructures import Headers, MultiDict

from tandem.core.errors import InvalidInput, PayloadTooLarge
from tandem.core.schemas import NewMessage
from tandem.protocol.publish import (
    EMPTY_MESSAGE,
    parse_json_publish,
    parse_priority,
    parse_publish,
    parse_tags,
    parse_ws_publish,
)

MAX_BODY = 4096


def publish(
    body: bytes = b"",
    headers: Mapping[str, str] | Headers | None = None,
    query: Mapping[str, str] | MultiDict[str, str] | None = None,
    *,
    topic: str = "alerts",
    max_body: int = MAX_BODY,
) -> NewMessage:
    return parse_publish(topic, headers or {}, query or {}, body, max_body=max_body)


def json_publish(data: object, *, topic: str | None = None, max_body: int = MAX_BODY) -> NewMessage:
    return parse_json_publish(orjson.dumps(data), max_body=max_body, topic=topic)


# --- the message text -----------------------------------------------------------------------


def test_body_is_the_message() -> None:
    msg = publish(b"disk full on /var")
    assert msg == NewMessage(topic="alerts", message="disk full on /var")


def test_body_keeps_inner_line_breaks_and_utf8() -> None:
    msg = publish("line one\nline two \N{SNOWMAN}".encode())
    assert msg.message == "line one\nline two \N{SNOWMAN}"


def test_body_wins_over_message_option() -> None:
    msg = publish(b"from body", {"X-Message": "from header"}, {"message": "from query"})
    assert msg.message == "from body"


@pytest.mark.parametrize("name", ["X-Message", "Message", "m", "x-message", "MESSAGE", "M"])
def test_empty_body_falls_back_to_message_header(name: str) -> None:
    assert publish(b"", {name: "from header"}).message == "from header"


@pytest.mark.parametrize("name", ["message", "m", "x-message"])
def test_empty_body_falls_back_to_message_query(name: str) -> None:
    assert publish(b"", query={name: "from query"}).message == "from query"


def test_message_option_turns_backslash_n_into_line_breaks() -> None:
    msg = publish(b"", query=MultiDict({"message": r"first\nsecond\nthird"}))
    assert msg.message == "first\nsecond\nthird"


def test_whitespace_body_counts_as_empty() -> None:
    assert publish(b"  \n\t ", query={"message": "fallback"}).message == "fallback"


@pytest.mark.parametrize(
    ("body", "headers", "query"),
    [
        (b"", {}, {}),
        (b"   ", {}, {}),
        (b"", {"X-Message": ""}, {"message": "   "}),
    ],
)
def test_nothing_at_all_is_triggered(
    body: bytes, headers: dict[str, str], query: dict[str, str]
) -> None:
    assert publish(body, headers, query).message == EMPTY_MESSAGE == "triggered"


def test_header_message_wins_over_query_message() -> None:
    assert publish(b"", {"m": "header"}, {"message": "query"}).message == "header"


# --- options by header and by query --------------------------------------------------------

TITLE_ALIASES = ["X-Title", "Title", "ti", "t"]
PRIORITY_ALIASES = ["X-Priority", "Priority", "prio", "p"]
TAG_ALIASES = ["X-Tags", "Tags", "tag", "ta"]
CLICK_ALIASES = ["X-Click", "Click"]


def _cases(name: str) -> list[str]:
    return [name, name.lower(), name.upper(), name.swapcase()]


@pytest.mark.parametrize("name", [case for alias in TITLE_ALIASES for case in _cases(alias)])
def test_title_header_aliases_in_any_case(name: str) -> None:
    assert publish(b"x", Headers([(name, "Backup done")])).title == "Backup done"


@pytest.mark.parametrize("name", [alias.lower() for alias in TITLE_ALIASES])
def test_title_query_aliases(name: str) -> None:
    assert publish(b"x", query=MultiDict([(name, "Backup done")])).title == "Backup done"


@pytest.mark.parametrize("name", [case for alias in PRIORITY_ALIASES for case in _cases(alias)])
def test_priority_header_aliases_in_any_case(name: str) -> None:
    assert publish(b"x", Headers([(name, "4")])).priority == 4


@pytest.mark.parametrize("name", [alias.lower() for alias in PRIORITY_ALIASES])
def test_priority_query_aliases(name: str) -> None:
    assert publish(b"x", query={name: "high"}).priority == 4


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 1),
        ("2", 2),
        ("3", 3),
        ("4", 4),
        ("5", 5),
        ("min", 1),
        ("low", 2),
        ("default", 3),
        ("high", 4),
        ("max", 5),
        ("urgent", 5),
        ("MIN", 1),
        ("Low", 2),
        ("DeFault", 3),
        ("HIGH", 4),
        ("Max", 5),
        ("URGENT", 5),
        (" 4 ", 4),
    ],
)
def test_priority_values(value: str, expected: int) -> None:
    assert parse_priority(value) == expected
    assert publish(b"x", {"X-Priority": value}).priority == expected


@pytest.mark.parametrize("value", ["0", "6", "-1", "1.5", "10", "hi", "highest", "4,5", "one"])
def test_bad_priority_is_invalid_input(value: str) -> None:
    with pytest.raises(InvalidInput, match="priority"):
        publish(b"x", {"Priority": value})
    with pytest.raises(InvalidInput, match="priority"):
        publish(b"x", query={"p": value})


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_priority_is_none(value: str | None) -> None:
    assert parse_priority(value) is None


def test_no_options_leaves_everything_unset() -> None:
    msg = publish(b"x")
    assert (msg.title, msg.priority, msg.tags, msg.click, msg.cache) == (None, None, (), None, True)


@pytest.mark.parametrize("name", [case for alias in TAG_ALIASES for case in _cases(alias)])
def test_tags_header_aliases_in_any_case(name: str) -> None:
    assert publish(b"x", Headers([(name, "warning,skull")])).tags == ("warning", "skull")


@pytest.mark.parametrize("name", [alias.lower() for alias in TAG_ALIASES])
def test_tags_query_aliases(name: str) -> None:
    assert publish(b"x", query={name: "a,b"}).tags == ("a", "b")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a,b,c", ("a", "b", "c")),
        (" a , b ,c ", ("a", "b", "c")),
        ("a,,b,", ("a", "b")),
        (",,, ,", ()),
        ("", ()),
        ("one", ("one",)),
    ],
)
def test_tags_comma_list_drops_blanks(value: str, expected: tuple[str, ...]) -> None:
    assert parse_tags(value) == expected
    assert publish(b"x", {"Tags": value}).tags == expected


@pytest.mark.parametrize("name", [case for alias in CLICK_ALIASES for case in _cases(alias)])
def test_click_header_aliases_in_any_case(name: str) -> None:
    url = "https://example.com/runs/42"
    assert publish(b"x", Headers([(name, url)])).click == url


def test_click_query() -> None:
    assert publish(b"x", query={"click": "https://e.com"}).click == "https://e.com"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[("no", False), ("NO", False), ("0", False), ("false", False), ("off", False)],
        *[("yes", True), ("1", True), ("true", True), ("on", True), ("", True)],
    ],
)
def test_cache_option(value: str, expected: bool) -> None:
    assert publish(b"x", {"X-Cache": value}).cache is expected
    assert publish(b"x", {"cache": value}).cache is expected
    assert publish(b"x", query={"cache": value}).cache is expected


@pytest.mark.parametrize("value", ["maybe", "nope", "2", "n0"])
def test_bad_cache_value_is_invalid_input(value: str) -> None:
    with pytest.raises(InvalidInput, match="cache"):
        publish(b"x", {"X-Cache": value})


def test_every_option_as_lowercase_query_params() -> None:
    query = MultiDict(
        {"title": "T", "priority": "urgent", "tags": "a,b", "click": "https://c", "cache": "no"}
    )
    msg = publish(b"body", query=query)
    assert msg == NewMessage(
        topic="alerts",
        message="body",
        title="T",
        priority=5,
        tags=("a", "b"),
        click="https://c",
        cache=False,
    )


def test_headers_win_over_query_for_the_same_alias() -> None:
    headers = Headers(
        [("Title", "H"), ("Priority", "2"), ("Tags", "h"), ("Click", "https://h"), ("Cache", "no")]
    )
    query = MultiDict(
        {"title": "Q", "priority": "5", "tags": "q", "click": "https://q", "cache": "yes"}
    )
    msg = publish(b"x", headers, query)
    assert (msg.title, msg.priority, msg.tags, msg.click, msg.cache) == (
        "H",
        2,
        ("h",),
        "https://h",
        False,
    )


def test_any_header_alias_wins_over_any_query_alias() -> None:
    # ntfy reads every header alias before any query parameter.
    msg = publish(b"x", {"t": "header"}, {"title": "query", "x-title": "query"})
    assert msg.title == "header"
    assert publish(b"x", {"p": "1"}, {"priority": "5"}).priority == 1


def test_werkzeug_headers_and_multidict_inputs() -> None:
    headers = Headers()
    headers.add("x-title", "From werkzeug")
    headers.add("X-PRIORITY", "min")
    query: MultiDict[str, str] = MultiDict()
    query.add("tags", "one,two")
    query.add("tags", "three")  # MultiDict.get gives the first value
    msg = publish(b"hello", headers, query)
    assert (msg.title, msg.priority, msg.tags) == ("From werkzeug", 1, ("one", "two"))


def test_blank_title_and_click_count_as_unset() -> None:
    msg = publish(b"x", {"Title": "   ", "Click": " "})
    assert msg.title is None
    assert msg.click is None


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Firebase": "no"},  # there is no Firebase here to skip
        {"X-UnifiedPush": "1"},  # a UTF-8 body is the message either way
        {"X-Sequence-ID": "abc"},
        {"Template": "no"},
    ],
)
def test_ntfy_options_with_nothing_to_do_here_are_accepted(headers: dict[str, str]) -> None:
    msg = publish(b"hello", headers, {key.lower(): value for key, value in headers.items()})
    assert msg == NewMessage(topic="alerts", message="hello")


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("X-Email", "someone@example.com", "e-mail"),
        ("X-E-Mail", "someone@example.com", "e-mail"),
        ("Mail", "someone@example.com", "e-mail"),
        ("e", "someone@example.com", "e-mail"),
        ("X-Call", "yes", "phone calls"),
        ("Attach", "https://example.com/file.jpg", "attachments"),
        ("Filename", "file.jpg", "attachments"),
        ("f", "file.jpg", "attachments"),
        ("Delay", "10m", "scheduled delivery"),
        ("X-At", "tomorrow, 10am", "scheduled delivery"),
        ("In", "30min", "scheduled delivery"),
        ("X-Template", "yes", "templates"),
        ("tpl", "github", "templates"),
    ],
)
def test_ntfy_options_this_server_does_not_offer_are_refused(
    name: str, value: str, why: str
) -> None:
    # Never a 200 that drops what was asked: the header and the query parameter alike.
    with pytest.raises(InvalidInput, match=why):
        publish(b"hello", {name: value})
    with pytest.raises(InvalidInput, match=why):
        publish(b"hello", query={name.lower(): value})


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("email", "someone@example.com", "e-mail"),
        ("call", "+12223334444", "phone calls"),
        ("attach", "https://example.com/f.jpg", "attachments"),
        ("filename", "f.jpg", "attachments"),
        ("delay", "30m", "scheduled delivery"),
    ],
)
def test_json_fields_this_server_does_not_offer_are_refused(
    field: str, value: str, why: str
) -> None:
    with pytest.raises(InvalidInput, match=why):
        json_publish({"topic": "t", field: value})
    assert json_publish({"topic": "t", field: ""}) == NewMessage(topic="t", message="triggered")


# --- limits and bad input ------------------------------------------------------------------


def test_body_at_the_limit_is_accepted() -> None:
    assert publish(b"a" * 64, max_body=64).message == "a" * 64


def test_body_over_max_body_is_payload_too_large() -> None:
    with pytest.raises(PayloadTooLarge):
        publish(b"a" * 65, max_body=64)


def test_message_option_over_max_body_is_payload_too_large() -> None:
    with pytest.raises(PayloadTooLarge):
        publish(b"", query={"message": "a" * 65}, max_body=64)


def test_limit_counts_utf8_bytes_not_characters() -> None:
    snowmen = "\N{SNOWMAN}" * 22  # 66 bytes, 22 characters
    with pytest.raises(PayloadTooLarge):
        publish(b"", {"X-Message": snowmen}, max_body=64)


@pytest.mark.parametrize("body", [b"\xff\xfe", b"caf\xe9", b"ok then \x80"])
def test_non_utf8_body_is_invalid_input(body: bytes) -> None:
    with pytest.raises(InvalidInput, match="UTF-8"):
        publish(body)


@pytest.mark.parametrize("topic", ["", "a b", "a/b", "x" * 65, "topic\n", "t\u00e9", "api"])
def test_bad_topic_is_invalid_input(topic: str) -> None:
    with pytest.raises(InvalidInput, match="topic"):
        publish(b"x", topic=topic)


# --- JSON publish --------------------------------------------------------------------------


def test_json_publish_with_every_field() -> None:
    msg = json_publish(
        {
            "topic": "backups",
            "message": "Backup done",
            "title": "nightly",
            "priority": 4,
            "tags": ["floppy_disk", "white_check_mark"],
            "click": "https://example.com/backups",
        }
    )
    assert msg == NewMessage(
        topic="backups",
        message="Backup done",
        title="nightly",
        priority=4,
        tags=("floppy_disk", "white_check_mark"),
        click="https://example.com/backups",
        cache=True,
    )


def test_json_publish_minimal_is_triggered() -> None:
    assert json_publish({"topic": "t1"}) == NewMessage(topic="t1", message="triggered")


# 4.0 is the number 4 to JSON, and to the OpenAPI document's "integer".
@pytest.mark.parametrize(
    ("priority", "expected"), [("high", 4), ("MIN", 1), (5, 5), ("2", 2), (4.0, 4)]
)
def test_json_priority_as_number_or_name(priority: object, expected: int) -> None:
    assert json_publish({"topic": "t", "priority": priority}).priority == expected


def test_json_tags_drop_blanks() -> None:
    assert json_publish({"topic": "t", "tags": [" a ", "", "  ", "b"]}).tags == ("a", "b")


@pytest.mark.parametrize(("cache", "expected"), [(False, False), (True, True), ("no", False)])
def test_json_cache(cache: object, expected: bool) -> None:
    assert json_publish({"topic": "t", "cache": cache}).cache is expected


def test_json_bad_cache_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="cache"):
        json_publish({"topic": "t", "cache": "perhaps"})


@pytest.mark.parametrize("body", [b"", b"{", b'{"topic": "t",}', b"not json", b"{'topic': 't'}"])
def test_malformed_json_is_invalid_input(body: bytes) -> None:
    with pytest.raises(InvalidInput, match="malformed JSON"):
        parse_json_publish(body, max_body=MAX_BODY)


def test_non_utf8_json_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        parse_json_publish(b'{"topic": "t", "message": "caf\xe9"}', max_body=MAX_BODY)


@pytest.mark.parametrize("data", [[], ["topic", "t"], "t", 42, None, True])
def test_json_non_object_is_invalid_input(data: object) -> None:
    with pytest.raises(InvalidInput, match="object"):
        json_publish(data)


def test_json_missing_topic_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="topic"):
        json_publish({"message": "hi"})


@pytest.mark.parametrize("topic", [42, ["t"], {"name": "t"}, True])
def test_json_non_string_topic_is_invalid_input(topic: object) -> None:
    with pytest.raises(InvalidInput, match="topic"):
        json_publish({"topic": topic, "message": "hi"})


@pytest.mark.parametrize("topic", ["", "bad topic", "x" * 65, "api"])
def test_json_bad_topic_name_is_invalid_input(topic: str) -> None:
    with pytest.raises(InvalidInput, match="topic"):
        json_publish({"topic": topic})


@pytest.mark.parametrize("tags", ["a,b", ["a", 1], [None], [["a"]], {"a": "b"}, 7])
def test_json_tags_must_be_a_list_of_strings(tags: object) -> None:
    with pytest.raises(InvalidInput, match="tags"):
        json_publish({"topic": "t", "tags": tags})


@pytest.mark.parametrize("priority", [True, False, [4], {"level": 4}, 4.5, 0, 6, "loud"])
def test_json_bad_priority_is_invalid_input(priority: object) -> None:
    with pytest.raises(InvalidInput, match="priority"):
        json_publish({"topic": "t", "priority": priority})


@pytest.mark.parametrize("field", ["title", "message", "click"])
@pytest.mark.parametrize("value", [5, ["x"], {"x": 1}, True])
def test_json_string_fields_reject_other_types(field: str, value: object) -> None:
    with pytest.raises(InvalidInput, match=field):
        json_publish({"topic": "t", field: value})


def test_json_topic_from_url_for_the_rest_form() -> None:
    msg = json_publish({"message": "hi", "priority": "low"}, topic="from-url")
    assert msg == NewMessage(topic="from-url", message="hi", priority=2)


def test_json_topic_from_url_wins_over_body() -> None:
    assert json_publish({"topic": "in-body", "message": "m"}, topic="from-url").topic == "from-url"


def test_json_bad_url_topic_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="topic"):
        json_publish({"message": "m"}, topic="no/slashes")


def test_json_body_over_max_body_is_payload_too_large() -> None:
    body = orjson.dumps({"topic": "t", "message": "a" * 100})
    with pytest.raises(PayloadTooLarge):
        parse_json_publish(body, max_body=len(body) - 1)
    assert parse_json_publish(body, max_body=len(body)).message == "a" * 100


def test_json_unknown_fields_are_ignored() -> None:
    msg = json_publish(
        {"topic": "t", "message": "m", "colour": "red", "actions": [], "sequence_id": 1}
    )
    assert msg == NewMessage(topic="t", message="m")


# --- WebSocket publish ---------------------------------------------------------------------


def test_ws_publish_defaults_to_the_only_subscribed_topic() -> None:
    msg = parse_ws_publish('{"message": "hi", "tags": ["a"]}', topics=("solo",), max_body=MAX_BODY)
    assert msg == NewMessage(topic="solo", message="hi", tags=("a",))


def test_ws_publish_may_name_another_topic() -> None:
    msg = parse_ws_publish(b'{"topic": "other", "message": "hi"}', topics=("solo",), max_body=64)
    assert msg.topic == "other"


def test_ws_publish_needs_a_topic_on_a_multi_topic_socket() -> None:
    with pytest.raises(InvalidInput, match="topic"):
        parse_ws_publish('{"message": "hi"}', topics=("a", "b"), max_body=MAX_BODY)
    msg = parse_ws_publish('{"topic": "b", "message": "hi"}', topics=("a", "b"), max_body=MAX_BODY)
    assert msg.topic == "b"


@pytest.mark.parametrize("data", ["not json", "[1, 2]", '{"message": '])
def test_ws_publish_bad_json_is_invalid_input(data: str) -> None:
    with pytest.raises(InvalidInput):
        parse_ws_publish(data, topics=("solo",), max_body=MAX_BODY)


# --- header values as ntfy reads them ------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "title"),
    [
        ("=?UTF-8?B?w6lsw6h2ZQ==?=", "élève"),
        ("=?utf-8?q?Hello_World?=", "Hello World"),
        ("=?UTF-8?Q?caf=C3=A9?= au lait", "café au lait"),
        ("=?bogus-charset?q?x?=", "=?bogus-charset?q?x?="),  # not decodable: kept as sent
        ("plain =? text", "plain =? text"),
    ],
)
def test_rfc_2047_encoded_words_in_headers_are_decoded(header: str, title: str) -> None:
    assert publish(b"x", {"Title": header}).title == title


def test_encoded_words_in_query_parameters_stay_as_sent() -> None:
    # Only headers need the encoding; a query parameter is percent-encoded UTF-8 already.
    assert publish(b"x", query={"title": "=?utf-8?q?a?="}).title == "=?utf-8?q?a?="


@pytest.mark.parametrize("value", ["u=1", "u=3, i", "u=0,1", " u=7 "])
def test_rfc_9218_priority_header_is_not_a_priority(value: str) -> None:
    # Proxies (Cloudflare) add it: it is skipped, and the next alias or parameter decides.
    assert publish(b"x", {"Priority": value}).priority is None
    assert publish(b"x", {"Priority": value, "X-Priority": "5"}).priority == 5
    assert publish(b"x", {"Priority": value}, {"priority": "high"}).priority == 4


def test_an_rfc_9218_lookalike_on_another_alias_is_still_refused() -> None:
    with pytest.raises(InvalidInput, match="priority"):
        publish(b"x", {"X-Priority": "u=1"})


def test_a_blank_header_falls_through_to_the_next_alias_and_the_query() -> None:
    assert publish(b"x", {"X-Title": "  ", "t": "from t"}).title == "from t"
    assert publish(b"x", {"X-Title": ""}, {"title": "from query"}).title == "from query"
    assert publish(b"x", {"X-Priority": " "}, {"p": "2"}).priority == 2


# --- markdown and icons ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"X-Markdown": "yes"}, {}),
        ({"Markdown": "1"}, {}),
        ({"md": "true"}, {}),
        ({}, {"markdown": "on"}),
        ({}, {"md": "yes"}),
        ({"Content-Type": "text/markdown"}, {}),
        ({"Content-Type": "Text/Markdown; charset=utf-8"}, {}),
    ],
)
def test_markdown_is_asked_for(headers: dict[str, str], query: dict[str, str]) -> None:
    assert publish(b"**bold**", headers, query).content_type == "text/markdown"


@pytest.mark.parametrize(
    "headers", [{}, {"Markdown": "no"}, {"Content-Type": "text/plain"}, {"md": ""}]
)
def test_plain_text_by_default(headers: dict[str, str]) -> None:
    assert publish(b"**not bold**", headers).content_type is None


def test_a_bad_markdown_value_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="markdown"):
        publish(b"x", {"Markdown": "perhaps"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://example.com/i.png", "https://example.com/i.png"),
        (" HTTP://example.com/a ", "HTTP://example.com/a"),
        ("  ", None),
    ],
)
def test_icon(value: str, expected: str | None) -> None:
    assert publish(b"x", {"X-Icon": value}).icon == expected
    assert publish(b"x", query={"icon": value}).icon == expected


@pytest.mark.parametrize("value", ["ftp://example.com/i.png", "example.com/i.png", "javascript:x"])
def test_an_icon_that_is_no_http_url_is_invalid_input(value: str) -> None:
    with pytest.raises(InvalidInput, match="icon"):
        publish(b"x", {"Icon": value})


def test_json_markdown_and_icon() -> None:
    msg = json_publish({"topic": "t", "markdown": True, "icon": "https://example.com/i.png"})
    assert (msg.content_type, msg.icon) == ("text/markdown", "https://example.com/i.png")
    assert json_publish({"topic": "t", "markdown": False}).content_type is None
    with pytest.raises(InvalidInput, match="icon"):
        json_publish({"topic": "t", "icon": "file:///etc/passwd"})
    with pytest.raises(InvalidInput, match="markdown"):
        json_publish({"topic": "t", "markdown": "yes"})


# --- UnifiedPush ------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["headers", "query"])
def test_unifiedpush_binary_body_is_base64(where: str) -> None:
    body = bytes(range(256))
    options = {"up": "1"} if where == "query" else {"X-UnifiedPush": "yes"}
    msg = publish(body, **{where: options})  # type: ignore[arg-type]
    assert msg.encoding == "base64"
    assert base64.b64decode(msg.message) == body


def test_unifiedpush_text_body_is_kept_as_sent() -> None:
    # UnifiedPush payloads are opaque to the server: not even trimmed.
    msg = publish(b'  {"k": 1}\n', query={"up": "1"})
    assert (msg.message, msg.encoding) == ('  {"k": 1}\n', None)


def test_a_body_at_the_limit_stays_within_it_once_encoded() -> None:
    msg = publish(b"\xff" * MAX_BODY, query={"up": "1"})
    assert len(base64.b64decode(msg.message)) == MAX_BODY


def test_a_binary_body_without_unifiedpush_is_refused() -> None:
    with pytest.raises(InvalidInput, match="UTF-8"):
        publish(b"\xff\xfe")
