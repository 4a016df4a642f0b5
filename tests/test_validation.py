"""Input validation: every rejection has a code and a message; nothing odd gets through or raises."""

from __future__ import annotations

import hashlib
import json

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from statemodel.keys import Key
from statemodel.validation import (
    BODY_HASH,
    BODY_ITEM_KEY_BYTES,
    DYNAMODB_MAX_ITEM_BYTES,
    MAX_ATTRIBUTES,
    MAX_BODY_BYTES,
    MAX_DEPTH,
    MAX_MESSAGE_BYTES,
    PAYLOAD_TOO_LARGE,
    RESERVED_ATTRIBUTE,
    SQS_MAX_MESSAGE_BYTES,
    VALIDATION_ERROR,
    Rejection,
    Request,
    body_hash,
    idempotency_key,
    message_id_for_key,
    message_limit,
    message_problems,
    new_message,
    parse_message,
    parse_submission,
    valid_key,
    valid_token,
)


def rejected(body: str | bytes | None) -> Rejection:
    result = parse_submission(body)
    assert isinstance(result, Rejection), result
    assert isinstance(result.message, str) and result.message  # a client is told why
    return result


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (None, "no body"),
        ("", "no body"),
        ("[1]", "JSON object"),
        ("{", "not valid JSON"),
        ('{"payload": 1, "payload": 2}', "duplicate key"),
        ('{"payload": NaN}', "NaN is not valid JSON"),
        ('{"payload": 1e999}', "out of range"),
        ('{"payload": "\\ud800"}', "lone surrogate"),
        ('{"attributes": {}}', "'payload' is required"),
        ('{"payload": 1, "extra": 2}', "unknown field 'extra'"),
        ('{"payload": 1, "attributes": []}', "must be an object"),
        ('{"payload": 1, "attributes": {"a": 1}}', "non-empty string"),
        ('{"payload": 1, "attributes": {"a": ""}}', "non-empty string"),
        ('{"payload": 1, "attributes": {"bad name": "x"}}', "A-Z a-z 0-9"),
        ('{"payload": 1, "attributes": {"AWS.trace": "x"}}', "AWS."),
        ('{"payload": 1, "attributes": {"a..b": "x"}}', "'..'"),
        ('{"payload": 1, "attributes": {"message_id": "x"}}', "reserved"),
        ('{"payload": 1, "attributes": {"a": "\\u0001"}}', "SQS does not accept"),
        (b'{"payload": "\xff"}', "UTF-8"),
        ('{"payload": ' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}", "nested deeper"),
        ('{"payload": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested deeper"),
        ('{"payload": ' + "9" * 5_000 + "}", "too large"),
    ],
)
def test_rejections_say_what_is_wrong(body: str | bytes | None, fragment: str) -> None:
    rejection = rejected(body)
    assert rejection.code == VALIDATION_ERROR and rejection.http_status == 400
    assert fragment in rejection.message


def test_an_unknown_field_is_echoed_bounded() -> None:
    """A 300 KB field name comes back as its first characters and its length, not whole."""
    name = "x" * 300_000
    rejection = rejected('{"payload": 1, "' + name + '": 2}')
    assert f"unknown field {'x' * 64!r}… (300000 characters)" in rejection.message
    assert len(rejection.message) < 200


def test_too_many_attributes() -> None:
    attributes = {f"a{i}": "x" for i in range(MAX_ATTRIBUTES + 1)}
    assert "at most 9 attributes" in rejected(json.dumps({"payload": 1, "attributes": attributes})).message
    attributes.popitem()
    assert isinstance(parse_submission(json.dumps({"payload": 1, "attributes": attributes})), Request)


def test_size_limit_is_exact() -> None:
    overhead = len('""')
    fits = json.dumps({"payload": "x" * (MAX_MESSAGE_BYTES - overhead)})
    assert isinstance(parse_submission(fits), Request)
    too_big = rejected(json.dumps({"payload": "x" * (MAX_MESSAGE_BYTES - overhead + 1)}))
    assert (too_big.code, too_big.http_status) == (PAYLOAD_TOO_LARGE, 413)


def test_attributes_count_toward_the_size() -> None:
    body = {"payload": "x" * (MAX_MESSAGE_BYTES - 2 - 2), "attributes": {"a": "bc"}}
    assert rejected(json.dumps(body)).code == PAYLOAD_TOO_LARGE


def test_a_body_bucket_raises_the_payload_limit_to_what_sqs_takes() -> None:
    """Without a body bucket a payload must fit a body item; with one it may take what an SQS message
    holds beside sendguard's `message_id` attribute. Each limit is exact."""

    def body(size: int) -> str:  # a body whose payload takes `size` bytes
        return json.dumps({"payload": "x" * (size - len('""'))})

    without, with_bucket = message_limit(False), message_limit(True)
    assert without + BODY_ITEM_KEY_BYTES <= DYNAMODB_MAX_ITEM_BYTES < with_bucket
    assert with_bucket + len(RESERVED_ATTRIBUTE) + len("String") + 128 <= SQS_MAX_MESSAGE_BYTES
    for limit in (without, with_bucket):
        assert isinstance(parse_submission(body(limit), limit), Request)
        too_big = parse_submission(body(limit + 1), limit)
        assert isinstance(too_big, Rejection) and too_big.code == PAYLOAD_TOO_LARGE
    assert isinstance(parse_submission(body(without + 1), with_bucket), Request)


def test_a_huge_raw_body_is_refused_before_parsing() -> None:
    assert rejected(" " * (2 * 1024 * 1024)).code == PAYLOAD_TOO_LARGE


def test_the_raw_body_limit_is_exact() -> None:
    """A body of exactly MAX_BODY_BYTES bytes (JSON padded with spaces) is parsed; one more byte is
    refused before parsing."""
    small = '{"payload":1}'
    fits = small + " " * (MAX_BODY_BYTES - len(small))
    assert isinstance(parse_submission(fits), Request)
    assert isinstance(parse_submission(fits.encode()), Request)
    assert rejected(fits + " ").code == PAYLOAD_TOO_LARGE


def test_payload_text_is_what_sqs_accepts() -> None:
    request = parse_submission(json.dumps({"payload": {"z": "\u0000\ufffe\uffff é", "a": [1.5, None]}}))
    assert isinstance(request, Request)
    assert request.payload == '{"z":"\\u0000\\ufffe\\uffff é","a":[1.5,null]}'
    assert json.loads(request.payload) == {"z": "\u0000\ufffe\uffff é", "a": [1.5, None]}


def test_the_request_hash_ignores_key_order_and_spacing_only() -> None:
    one = parse_submission('{"payload": {"a": 1, "b": 2}, "attributes": {"x": "1", "y": "2"}}')
    two = parse_submission('{"attributes":{"y":"2","x":"1"},"payload":{"b":2,"a":1}}')
    three = parse_submission('{"payload": {"a": 1, "b": 3}, "attributes": {"x": "1", "y": "2"}}')
    assert isinstance(one, Request) and isinstance(two, Request) and isinstance(three, Request)
    assert one.request_hash == two.request_hash != three.request_hash


def test_a_rewritten_payload_no_longer_matches_its_hash() -> None:
    request = parse_submission('{"payload": {"a": 1}}')
    assert isinstance(request, Request)
    message = new_message(request, "m-1", "c-1", 0)
    assert message_problems(message) == []
    import attrs

    assert message_problems(attrs.evolve(message, payload='{"a":2}'))


def test_tokens() -> None:
    assert valid_token("abc-123._:X") == "abc-123._:X"
    for bad in ("", "x" * 129, "a b", "<script>", "é", None, 5):
        assert valid_token(bad) is None
    rejected = idempotency_key("bad key")
    assert isinstance(rejected, Rejection) and rejected.code == VALIDATION_ERROR
    assert isinstance(rejected.message, str) and rejected.message  # a client is told why
    assert idempotency_key(None) is None
    assert idempotency_key("order-1:a.b_c") == "order-1:a.b_c"
    assert idempotency_key("k" * 128) == "k" * 128 and isinstance(idempotency_key("k" * 129), Rejection)
    assert message_id_for_key("k") == message_id_for_key("k") != message_id_for_key("k2")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(payload=json_values)
def test_any_json_payload_round_trips(payload: object) -> None:
    result = parse_submission(json.dumps({"payload": payload}))
    if isinstance(result, Rejection):  # only lone surrogates in generated text may be refused
        assert "surrogate" in result.message
        return
    assert json.loads(result.payload) == payload


@given(body=st.binary(max_size=300) | st.text(max_size=300))
def test_arbitrary_bodies_never_raise(body: str | bytes) -> None:
    result = parse_submission(body)
    assert isinstance(result, Request | Rejection)


# ---- boundaries and fields the mutation run found unchecked -----------------------------------------


def nested(containers: int, leaf: object = 1) -> object:
    """`containers` objects and arrays, alternating, around a scalar."""
    value = leaf
    for n in range(containers):
        value = [value] if n % 2 else {"k": value}
    return value


def test_nesting_is_allowed_to_the_limit_and_refused_past_it() -> None:
    """A payload of MAX_DEPTH nested objects and arrays is allowed, one more is refused; objects and
    arrays count alike."""
    ok = parse_submission(json.dumps({"payload": nested(MAX_DEPTH)}))
    assert isinstance(ok, Request)
    too_deep = parse_submission(json.dumps({"payload": nested(MAX_DEPTH + 1)}))
    assert isinstance(too_deep, Rejection) and too_deep.code == VALIDATION_ERROR
    lists = parse_submission(json.dumps({"payload": [nested(MAX_DEPTH - 1)]}))
    assert isinstance(lists, Request)


def test_an_empty_body_is_refused_as_bytes_or_text() -> None:
    for body in (None, b"", ""):
        rejected = parse_submission(body)
        assert isinstance(rejected, Rejection) and rejected.code == VALIDATION_ERROR, body


def test_a_text_body_with_a_lone_surrogate_is_refused_not_raised() -> None:
    rejected = parse_submission('{"payload": "\ud800"}')
    assert isinstance(rejected, Rejection) and rejected.code == VALIDATION_ERROR


@pytest.mark.parametrize("name", ["Amazon.x", "amazon.sqs", "AWS.trace", ".a", "a.", "a..b"])
def test_reserved_or_dotted_attribute_names_are_refused(name: str) -> None:
    rejected = parse_submission(json.dumps({"payload": 1, "attributes": {name: "v"}}))
    assert isinstance(rejected, Rejection) and rejected.code == VALIDATION_ERROR, name


def test_dotted_names_inside_are_accepted() -> None:
    accepted = parse_submission(json.dumps({"payload": 1, "attributes": {"a.b": "v", "amazonx": "w"}}))
    assert isinstance(accepted, Request)


def test_a_new_message_keeps_every_field_it_was_given() -> None:
    request = parse_submission(json.dumps({"payload": {"n": 1}, "attributes": {"g": "1"}}))
    assert isinstance(request, Request)
    message = new_message(request, "m-1", "corr-9", 1_234, "key-9")
    assert (message.message_id, message.correlation_id, message.created_at, message.idempotency_key) == (
        "m-1",
        "corr-9",
        1_234,
        "key-9",
    )
    assert message.payload == request.payload and message.attributes == request.attributes
    assert message.request_hash == request.request_hash
    assert new_message(request, "m-2", "corr", 1, None).idempotency_key is None


def test_a_new_message_keeps_its_composite_key_and_its_queue() -> None:
    """A team row's message keeps its (partition, sort) key, and every send of it goes to the queue it
    was accepted for; a plain key is the message id itself, no key of its own."""
    request = parse_submission(json.dumps({"payload": 1}))
    assert isinstance(request, Request)
    row = Key("acme", "p-1")
    message = new_message(request, row.message_id, "c", 1, key=row, queue="https://sqs/q-a")
    assert (message.key, message.record_key, message.queue) == (row, row, "https://sqs/q-a")
    plain = new_message(request, "p-1", "c", 1, key=Key("p-1"))
    assert plain == new_message(request, "p-1", "c", 1)
    assert (plain.key, plain.record_key, plain.queue) == (None, Key("p-1"), None)


def test_a_message_rebuilt_from_a_summary_has_no_payload_or_attributes() -> None:
    from statemodel.events import message_from_summary
    from statemodel.records import Message

    summary = {"correlation_id": "c", "created_at": "7", "request_hash": "h", "idempotency_key": "k"}
    assert message_from_summary("m-1", summary) == Message("m-1", "", (), "c", 7, "h", "k")
    assert message_from_summary("m-2", {**summary, "idempotency_key": None}).idempotency_key is None


def test_the_sqs_character_check_rejects_exactly_what_sqs_refuses() -> None:
    """The pattern lists the refused characters (it compiles in 1 ms, where the negated set of the
    accepted ranges took 14 ms of every cold start); every code point is checked against SQS's rule."""
    from statemodel.validation import _SQS_INVALID

    def accepted(c: int) -> bool:
        ranges = ((0x20, 0xD7FF), (0xE000, 0xFFFD), (0x10000, 0x10FFFF))
        return c in (0x9, 0xA, 0xD) or any(low <= c <= high for low, high in ranges)

    wrong = [c for c in range(0x110000) if (_SQS_INVALID.match(chr(c)) is None) != accepted(c)]
    assert wrong == []


# ---- the library's messages (`adapters.Outbox.send`): parse_message, body_hash, valid_key ----------


def accepted_message(body: object, attributes: object = None, group_id: object = None) -> Request:
    result = parse_message(body, {} if attributes is None else attributes, group_id)
    assert isinstance(result, Request), result
    return result


def refused_message(body: object, attributes: object = None, group_id: object = None) -> Rejection:
    result = parse_message(body, {} if attributes is None else attributes, group_id)
    assert isinstance(result, Rejection), result
    assert isinstance(result.message, str) and result.message  # a client is told why
    return result


def test_a_library_message_is_sent_exactly_as_given() -> None:
    """The body is not parsed or rewritten: any text SQS accepts, byte for byte, with its sorted
    attributes, its group and the hash of all three."""
    body = ' {"not": "normalised"}  \t é \ufffd'
    request = accepted_message(body, {"b": "2", "a": "1"}, "group-1")
    assert request == Request(
        body, (("a", "1"), ("b", "2")), body_hash(body, (("a", "1"), ("b", "2")), "group-1"), "group-1"
    )
    assert request.request_hash.startswith(BODY_HASH)
    plain = accepted_message("x")
    assert (plain.payload, plain.attributes, plain.group_id) == ("x", (), None)
    assert plain.request_hash == body_hash("x", (), None)


def test_a_library_message_that_sqs_would_refuse_is_rejected_with_a_code() -> None:
    for body in (b"bytes", None, 5, "", "a\x00b", "\ud800", "a\ufffeb"):
        assert refused_message(body).code == VALIDATION_ERROR, repr(body)
    for attributes in ([], {"a": 1}, {"a": ""}, {"message_id": "x"}, {"a b": "x"}, {"a": "\x01"}):
        assert refused_message("x", attributes).code == VALIDATION_ERROR, attributes
    for group_id in ("", "a b", "g" * 129, "é", 7):
        assert refused_message("x", group_id=group_id).code == VALIDATION_ERROR, group_id
    assert accepted_message("x", group_id="g" * 128).group_id == "g" * 128
    assert accepted_message("x", group_id="!~").group_id == "!~"


def test_a_library_message_s_size_limit_is_exact_and_counts_attributes() -> None:
    assert accepted_message("x" * MAX_MESSAGE_BYTES).size == MAX_MESSAGE_BYTES
    too_big = refused_message("x" * (MAX_MESSAGE_BYTES + 1))
    assert (too_big.code, too_big.http_status) == (PAYLOAD_TOO_LARGE, 413)
    with_attributes = refused_message("x" * (MAX_MESSAGE_BYTES - 3), {"ab": "é"})  # 2 + 2 bytes
    assert with_attributes.code == PAYLOAD_TOO_LARGE
    assert accepted_message("x" * (MAX_MESSAGE_BYTES - 4), {"ab": "é"}).size == MAX_MESSAGE_BYTES


def test_the_body_hash_tells_body_attributes_and_group_apart() -> None:
    base = body_hash("x", (("a", "1"),), None)
    assert (
        base == BODY_HASH + hashlib.sha256(b'{"attributes":{"a":"1"},"body":"x","group_id":null}').hexdigest()
    )
    others = {
        body_hash("y", (("a", "1"),), None),
        body_hash("x", (("a", "2"),), None),
        body_hash("x", (), None),
        body_hash("x", (("a", "1"),), "g"),
        body_hash("x ", (("a", "1"),), None),
    }
    assert base not in others and len(others) == 5
    assert (
        body_hash("é", (), "g")
        == BODY_HASH + hashlib.sha256(b'{"attributes":{},"body":"\\u00e9","group_id":"g"}').hexdigest()
    )


def test_a_stored_library_message_is_checked_against_its_body_hash() -> None:
    request = accepted_message("hello", {"a": "1"}, "g")
    message = new_message(request, "m-1", "c-1", 0, "k")
    assert message.group_id == "g" and message_problems(message) == []
    for changed in ({"payload": "hell0"}, {"attributes": ()}, {"group_id": None}):
        assert message_problems(attrs.evolve(message, **changed)) != [], changed  # type: ignore[arg-type]


def test_library_keys_are_printable_ascii_without_spaces() -> None:
    for good in ("k", "!~", "order/42#a", "k" * 128):
        assert valid_key(good) == good
    for bad in ("", "a b", "k" * 129, "é", "a\tb", None, 5):
        assert valid_key(bad) is None, bad


def test_a_key_names_one_message_per_caller_and_the_message_keeps_its_caller() -> None:
    """Where the API keeps callers apart, the same key of two callers names two messages, and neither
    is the plain key's (whose id is pinned: ids already stored must not move)."""
    from statemodel.validation import new_message

    plain = message_id_for_key("order-1")
    assert plain == "db9fe999-824c-5ea6-b53b-556bbc58ebe1"
    alice, bob = message_id_for_key("order-1", "alice"), message_id_for_key("order-1", "bob")
    assert len({plain, alice, bob}) == 3
    assert message_id_for_key("order-1", None) == plain and message_id_for_key("order-1", "alice") == alice
    message = new_message(accepted_message("x"), alice, "c-1", 0, "order-1", caller="alice")
    assert message.caller == "alice"
