"""statemodel.sizes: the one module holding every size limit and rule. Its values are pinned (moving
them here changed none), each rule is exact at its bound, and each refusal names what is too large and
which limit it passed. Pure: `make mutation` runs it over the module (tests/test_sizes_surface.py
checks the names the adapters re-export and the generated limits page)."""

from __future__ import annotations

import json

import pytest

import statemodel.validation as validation
from statemodel import sizes
from statemodel.validation import PAYLOAD_TOO_LARGE, VALIDATION_ERROR, Rejection, Request, parse_message

# The values on main before the move (statemodel/validation.py, adapters/runtime/item_size.py,
# adapters/runtime/inbox.py, adapters/runtime/rearm.py, adapters/runtime/sqs_batch.py, statemodel/keys.py,
# adapters/runtime/batch_get.py, adapters/runtime/layout.py; later adapters/ops/provision.py).
BEFORE = {
    "SQS_MAX_MESSAGE_BYTES": 1_048_576,
    "SQS_MAX_ATTRIBUTES": 10,
    "SQS_MAX_ATTRIBUTE_NAME_CHARS": 256,
    "SQS_MAX_ID_CHARS": 128,
    "SQS_MAX_BATCH_ENTRIES": 10,
    "SQS_MAX_BATCH_BYTES": 262_144,
    "SQS_MAX_QUEUE_NAME_CHARS": 80,
    "DYNAMODB_MAX_ITEM_BYTES": 409_600,
    "DYNAMODB_MAX_PARTITION_BYTES": 2_048,
    "DYNAMODB_MAX_SORT_BYTES": 1_024,
    "DYNAMODB_MAX_NAME_BYTES": 255,
    "DYNAMODB_WRITE_UNIT_BYTES": 1_024,
    "DYNAMODB_MAX_TRANSACTION_ITEMS": 100,
    "DYNAMODB_MAX_BATCH_GET_KEYS": 100,
    "RECORD_OVERHEAD_BYTES": 24_576,
    "MAX_RECORD_EXTRA_BYTES": 385_024,
    "MAX_ATTEMPTS_LIMIT": 20,
    "BODY_ITEM_KEY_BYTES": 2_048,
    "MAX_MESSAGE_BYTES": 400_000,
    "BODY_ITEM_LIMIT_BYTES": 402_048,
    "SQS_ATTRIBUTE_ROOM_BYTES": 256,
    "MAX_MESSAGE_BYTES_WITH_BUCKET": 1_048_320,
    "MAX_BODY_BYTES": 1_114_112,
    "MAX_DEPTH": 32,
    "MAX_ATTRIBUTES": 9,
    "CONFIRM_GROWTH_BYTES": 0,
    "REQUEST_WORTH_UNITS": 1,
    "ATTEMPT_HISTORY_BYTES": 1_024,
    "LIFECYCLE_BYTES": 2_048,
    "REARM_MAX_TEXT_CHARS": 512,
    "INBOX_MAX_EFFECT_ENTRIES": 99,
    "INBOX_MAX_RESULT_BYTES": 65_536,
    "INBOX_MAX_KEY_BYTES": 1_024,
    "INBOX_MAX_PREFIX_BYTES": 1_024,
}


def test_no_limit_changed_in_the_move() -> None:
    assert {name: getattr(sizes, name) for name in BEFORE} == BEFORE


def test_every_limit_of_the_module_is_pinned() -> None:
    """A limit added to the module is added here too, with its value: none slips in unreviewed."""
    limits = {name for name, value in vars(sizes).items() if name.isupper() and isinstance(value, int)}
    assert limits == set(BEFORE)


def test_a_message_s_size_limit_is_exact_and_names_its_largest_attribute() -> None:
    attributes = (("big", "v" * 40), ("a", "b"))
    size = sizes.message_bytes("x" * 10, attributes)
    assert size == 10 + 3 + 40 + 1 + 1
    assert sizes.message_size_problem("body", "x" * 10, attributes, size) is None
    problem = sizes.message_size_problem("body", "x" * 10, attributes, size - 1)
    assert problem == (
        f"body and attributes take {size} bytes; at most {size - 1} are accepted "
        "(body 10 bytes, largest attribute 'big' 43 bytes)"
    )


def test_the_attribute_count_and_name_length_are_exact() -> None:
    assert sizes.attribute_count_problem(sizes.MAX_ATTRIBUTES) is None
    assert sizes.attribute_count_problem(sizes.MAX_ATTRIBUTES + 1) == (
        "10 attributes given; at most 9 attributes are allowed (count limit: SQS takes 10 and "
        "sendguard uses one for 'message_id')"
    )
    assert sizes.attribute_name_problem("n" * sizes.SQS_MAX_ATTRIBUTE_NAME_CHARS) is None
    too_long = sizes.attribute_name_problem("n" * (sizes.SQS_MAX_ATTRIBUTE_NAME_CHARS + 1))
    assert (
        too_long == f"attribute name {'n' * 64!r} is 257 characters; names take 1 to 256 (name length limit)"
    )
    assert (
        sizes.attribute_name_problem("")
        == "attribute name '' is 0 characters; names take 1 to 256 (name length limit)"
    )


def test_the_record_s_room_is_exact_and_names_the_largest_part() -> None:
    room = sizes.MAX_RECORD_EXTRA_BYTES
    attributes = (("a", "b"),)
    assert sizes.record_extra_problem(attributes, {"blob": room - 2 - 10}, 10) is None
    problem = sizes.record_extra_problem(attributes, {"blob": room - 2 - 10 + 1}, 10)
    assert problem == (
        f"attributes and item take {room + 1} bytes; at most {room} fit in the record "
        f"(record size limit, key 10 bytes; largest item['blob'] {room - 11} bytes)"
    )
    big = sizes.record_extra_problem((("big", "v" * room),), {}, 0)
    assert big is not None and "largest attribute 'big'" in big


def test_an_item_name_is_a_string_of_1_to_255_bytes() -> None:
    assert sizes.item_name_problem("é" * 127) is None  # 254 bytes
    assert sizes.item_name_problem("n" * 255) is None
    assert sizes.item_name_problem("n" * 256) == (
        f"item attribute name {'n' * 64!r} is 256 bytes; names take 1 to 255 (name length limit)"
    )
    assert (
        sizes.item_name_problem("")
        == "item attribute name '' is 0 bytes; names take 1 to 255 (name length limit)"
    )
    assert sizes.item_name_problem(5) == "item attribute name 5 must be a string, not int"


@pytest.mark.parametrize(("payload", "name", "value"), [("p", "k", "v"), ("é", "ķ", "€𝄞")])
def test_the_re_arm_room_is_exact_in_utf_8_bytes(payload: str, name: str, value: str) -> None:
    text = payload + name + value
    fixed = len(text.encode()) + 100 + sizes.LIFECYCLE_BYTES
    room = sizes.DYNAMODB_MAX_ITEM_BYTES - fixed
    attempts = room // sizes.ATTEMPT_HISTORY_BYTES
    extra = room - attempts * sizes.ATTEMPT_HISTORY_BYTES
    assert sizes.rearm_fits(payload, ((name, value),), 100 + extra, attempts)
    assert not sizes.rearm_fits(payload, ((name, value),), 100 + extra + 1, attempts)


def test_attributes_the_record_takes_may_leave_no_room_for_a_re_arm_by_their_bytes() -> None:
    """126,667 euro signs are 380,001 bytes: the record takes them beside its key, but a fresh budget
    of 20 attempts' history (and ~7.5 KB of history already) does not fit beside them. Counted in
    characters (126,667) the re-arm would be let through and its later writes refused as too large."""
    attributes = (("k", "€" * 126_666),)  # 1 + 379,998 bytes, with the payload's 2: 380,001
    assert sizes.message_bytes("xx", attributes) == 380_001
    assert sizes.record_extra_problem(attributes, {}, 0) is None
    assert not sizes.rearm_fits("xx", attributes, 7_500, sizes.MAX_ATTEMPTS_LIMIT)


def test_the_inbox_s_limits_are_exact() -> None:
    assert sizes.inbox_result_problem("r" * sizes.INBOX_MAX_RESULT_BYTES) is None
    assert sizes.inbox_result_problem("r" * (sizes.INBOX_MAX_RESULT_BYTES + 1)) == (
        "the handler's result is 65537 bytes as JSON; the inbox keeps 65536"
    )
    assert sizes.inbox_effects_problem(99) is None
    assert sizes.inbox_effects_problem(100) == (
        "100 entries: a transaction takes 99 beside the inbox's record (DynamoDB takes 100)"
    )


def test_sqs_counts_each_attribute_s_name_type_and_value() -> None:
    assert sizes.sqs_message_bytes("é", [("message_id", "String", "m-1")]) == 2 + 10 + 6 + 3


def test_write_units_are_per_started_kilobyte() -> None:
    assert [sizes.write_units(n) for n in (0, 1, 1024, 1025, 2048)] == [1, 1, 1, 2, 2]


def refused(attributes: object, body: str = "x", limit: int = sizes.MAX_MESSAGE_BYTES) -> Rejection:
    result = parse_message(body, attributes, None, limit)
    assert isinstance(result, Rejection), result
    return result


@pytest.mark.parametrize(
    ("attributes", "code", "message"),
    [
        (
            {f"a{i}": "x" for i in range(10)},
            VALIDATION_ERROR,
            "10 attributes given; at most 9 attributes are allowed (count limit: SQS takes 10 and sendguard "
            "uses one for 'message_id')",
        ),
        (
            {"n" * 300: "x"},
            VALIDATION_ERROR,
            f"attribute name {'n' * 64!r} is 300 characters; names take 1 to 256 (name length limit)",
        ),
        (
            {"": "x"},
            VALIDATION_ERROR,
            "attribute name '' is 0 characters; names take 1 to 256 (name length limit)",
        ),
        (
            {"tenant id": "x"},
            VALIDATION_ERROR,
            "attribute name 'tenant id' holds ' ' at index 6; names take A-Z a-z 0-9 _ - . only",
        ),
        ({5: "x"}, VALIDATION_ERROR, "attribute name 5 must be a string, not int"),
        ({"a": 1}, VALIDATION_ERROR, "attribute 'a' must be a non-empty string, not int"),
        ({"a": ""}, VALIDATION_ERROR, "attribute 'a' must be a non-empty string, not an empty string"),
        (
            {"a": "ok\x01"},
            VALIDATION_ERROR,
            "attribute 'a' holds '\\x01' at index 2, a character SQS does not accept",
        ),
        (
            {"blob": "v" * 100, "a": "b"},
            PAYLOAD_TOO_LARGE,
            "body and attributes take 107 bytes; at most 100 are accepted (body 1 bytes, largest attribute "
            "'blob' 104 bytes)",
        ),
    ],
)
def test_an_attribute_s_refusal_names_it_and_its_limit_in_one_line(
    attributes: object, code: str, message: str
) -> None:
    rejection = refused(attributes, limit=100)
    assert (rejection.code, rejection.message) == (code, message)
    assert "\n" not in rejection.message


def test_an_api_payload_too_large_names_its_largest_attribute() -> None:
    body = json.dumps({"payload": "x" * 10, "attributes": {"blob": "v" * 50}})
    result = validation.parse_submission(body, 60)
    assert isinstance(result, Rejection) and result.code == PAYLOAD_TOO_LARGE
    assert result.message == (
        "payload and attributes take 66 bytes; at most 60 are accepted (payload 12 bytes, largest "
        "attribute 'blob' 54 bytes)"
    )
    assert isinstance(validation.parse_submission(body, 66), Request)


def test_the_id_length_limit_is_said_in_its_refusals() -> None:
    idempotency = validation.idempotency_key("k" * (sizes.SQS_MAX_ID_CHARS + 1))
    assert idempotency == Rejection(
        VALIDATION_ERROR, "Idempotency-Key must be 1 to 128 characters of A-Za-z0-9._:-"
    )
    group = parse_message("x", {}, "g" * (sizes.SQS_MAX_ID_CHARS + 1))
    assert group == Rejection(
        VALIDATION_ERROR, "group_id must be 1 to 128 printable ASCII characters without spaces"
    )
    assert isinstance(parse_message("x", {}, "g" * sizes.SQS_MAX_ID_CHARS), Request)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ({"S": "abc"}, 3),
        ({"S": "é"}, 2),  # UTF-8 bytes, not characters
        ({"S": ""}, 0),
        ({"N": "0"}, 2),
        ({"N": "7"}, 2),
        ({"N": "12"}, 2),
        ({"N": "123"}, 3),
        ({"N": "12345"}, 4),
        ({"N": "1000"}, 2),  # trailing zeros are not significant
        ({"N": "-1.50"}, 2),
        ({"N": "0.001"}, 2),
        ({"N": "1E+3"}, 2),  # an exponent counts as the digits it stands for
        ({"N": "12345678901234567890123456789012345678"}, 20),  # 38 digits, DynamoDB's most
        ({"B": b"\x00\x01\x02"}, 3),
        ({"BOOL": False}, 1),
        ({"NULL": True}, 1),
        ({"L": []}, 3),
        ({"L": [{"S": "ab"}, {"N": "1"}]}, 3 + (2 + 1) + (2 + 1)),
        ({"M": {}}, 3),
        ({"M": {"k": {"S": "ab"}, "é": {"BOOL": True}}}, 3 + (1 + 2 + 1) + (2 + 1 + 1)),
        ({"SS": ["a", "bé"]}, 1 + 3),
        ({"NS": ["1", "123"]}, 2 + 3),
        ({"BS": [b"a", b"bc"]}, 3),
    ],
)
def test_a_value_s_size_is_dynamodb_s(value: dict[str, object], size: int) -> None:
    assert sizes.value_size(value) == size


def test_an_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown DynamoDB type X"):
        sizes.value_size({"X": "1"})


def test_an_item_s_size_counts_each_name_and_value() -> None:
    assert sizes.item_size(None) == 0 and sizes.item_size({}) == 0
    assert sizes.item_size({"id": {"S": "m-1"}, "né": {"N": "12"}}) == (2 + 3) + (3 + 2)


def test_the_message_limit_is_the_bucket_s_or_the_item_s() -> None:
    assert (sizes.message_limit(False), sizes.message_limit(True)) == (400_000, 1_048_320)
    assert sizes.attributes_bytes([("a", "é"), ("bc", "d")]) == 3 + 3


KB = sizes.DYNAMODB_WRITE_UNIT_BYTES


@pytest.mark.parametrize(
    ("inline", "apart", "body", "bucket", "where"),
    [
        (KB, 300, KB, False, sizes.Placement.INLINE),  # 2 units inline against 2 + 1 apart
        (3 * KB, 300, 3 * KB, False, sizes.Placement.INLINE),  # 6 against 3 + 2: within one unit
        (3 * KB + 1, 300, 3 * KB, False, sizes.Placement.ITEM),  # 8 against 3 + 2: apart saves more
        (200_000, 300, 200_000, False, sizes.Placement.ITEM),
        # Past the item limit the body cannot stay, however cheap: then an item, then S3, then nowhere.
        (sizes.DYNAMODB_MAX_ITEM_BYTES, 0, 10**9, False, sizes.Placement.INLINE),
        (sizes.DYNAMODB_MAX_ITEM_BYTES + 1, 0, 10**9, False, None),
        (sizes.DYNAMODB_MAX_ITEM_BYTES + 1, 300, sizes.BODY_ITEM_LIMIT_BYTES, False, sizes.Placement.ITEM),
        (sizes.DYNAMODB_MAX_ITEM_BYTES + 1, 300, sizes.BODY_ITEM_LIMIT_BYTES + 1, True, sizes.Placement.S3),
        (sizes.DYNAMODB_MAX_ITEM_BYTES + 1, 300, sizes.BODY_ITEM_LIMIT_BYTES + 1, False, None),
    ],
)
def test_a_body_goes_where_it_costs_least_and_fits(
    inline: int, apart: int, body: int, bucket: bool, where: sizes.Placement | None
) -> None:
    assert sizes.placement(inline, apart, body, bucket=bucket) is where


def test_the_largest_part_is_the_largest_by_size_not_by_name() -> None:
    attributes = (("a", "v" * 30), ("z", "v"))
    problem = sizes.message_size_problem("body", "x", attributes, 10)
    assert problem is not None and problem.endswith("(body 1 bytes, largest attribute 'a' 31 bytes)")
    alone = sizes.message_size_problem("body", "x" * 11, (), 10)
    assert alone == "body and attributes take 11 bytes; at most 10 are accepted (body 11 bytes)"
    room = sizes.MAX_RECORD_EXTRA_BYTES
    both = sizes.record_extra_problem((("a", "v" * room),), {"z": 5}, 0)
    assert both is not None and both.endswith(f"largest attribute 'a' {room + 1} bytes)")
    key_only = sizes.record_extra_problem((), {}, room + 1)
    assert key_only == (
        f"attributes and item take {room + 1} bytes; at most {room} fit in the record "
        f"(record size limit, key {room + 1} bytes)"
    )


def test_a_one_byte_item_name_is_taken() -> None:
    assert sizes.item_name_problem("n") is None


# Every rule that takes text counts it as its limit does: UTF-8 bytes for what AWS stores or sends
# (an item, a message), characters only where the quota is in characters over an ASCII alphabet.
EURO = "€"  # 1 character, 3 bytes
CLEF = "𝄞"  # 1 character, 4 bytes (outside the BMP)


def test_a_message_s_size_is_its_utf_8_bytes_at_the_bound() -> None:
    attributes = (("k", EURO * 10),)
    size = 2 * 4 + 1 + 10 * 3  # payload of two clefs, name, ten euros: 39 bytes, 13 characters
    assert sizes.attributes_bytes(attributes) == 31
    assert sizes.message_bytes(CLEF * 2, attributes) == size
    assert sizes.message_size_problem("body", CLEF * 2, attributes, size) is None
    assert sizes.message_size_problem("body", CLEF * 2, attributes, size - 1) == (
        f"body and attributes take {size} bytes; at most {size - 1} are accepted "
        "(body 8 bytes, largest attribute 'k' 31 bytes)"
    )


def test_sqs_counts_a_non_ascii_attribute_in_bytes() -> None:
    assert sizes.sqs_message_bytes(CLEF, [("k", "String", EURO)]) == 4 + 1 + 6 + 3


def test_the_record_s_room_counts_non_ascii_in_bytes() -> None:
    room = sizes.MAX_RECORD_EXTRA_BYTES
    fill = "v" * (room - 1 - 3 * 1000)
    attributes = (("k", EURO * 1000 + fill),)  # room bytes, room - 2,000 characters
    assert sizes.record_extra_problem(attributes, {}, 0) is None
    refused = sizes.record_extra_problem((("k", EURO * 1000 + fill + "v"),), {}, 0)
    assert refused is not None and refused.startswith(f"attributes and item take {room + 1} bytes")


def test_an_attribute_name_counts_characters_as_sqs_does_and_its_alphabet_is_ascii() -> None:
    """SQS's quota is 256 characters of A-Za-z0-9_-. (so 256 bytes): the length rule counts
    characters, and a name outside the alphabet is refused by the alphabet's rule."""
    assert sizes.attribute_name_problem("é" * sizes.SQS_MAX_ATTRIBUTE_NAME_CHARS) is None
    assert sizes.attribute_name_problem("é" * 257) == (
        f"attribute name {'é' * 64!r} is 257 characters; names take 1 to 256 (name length limit)"
    )
    rejection = refused({"é" * 10: "x"})
    assert rejection.code == VALIDATION_ERROR and "A-Z a-z 0-9 _ - . only" in rejection.message


def test_an_item_name_counts_bytes_and_refuses_text_that_is_not_unicode() -> None:
    assert sizes.item_name_problem(CLEF * 63 + "abc") is None  # 255 bytes, 66 characters
    assert sizes.item_name_problem(CLEF * 64) == (
        f"item attribute name {CLEF * 64!r} is 256 bytes; names take 1 to 255 (name length limit)"
    )
    assert sizes.item_name_problem("a\ud800") == "item attribute name 'a\\ud800' is not valid Unicode text"


def test_an_inbox_result_counts_bytes() -> None:
    fits = EURO * (sizes.INBOX_MAX_RESULT_BYTES // 3) + "x"  # 65,535 + 1 bytes, 21,846 characters
    assert sizes.inbox_result_problem(fits) is None
    assert sizes.inbox_result_problem(fits + "x") == (
        "the handler's result is 65537 bytes as JSON; the inbox keeps 65536"
    )


def test_an_inbox_key_counts_bytes_as_its_partition_key_does() -> None:
    """1,024 characters of clefs would be 4,096 bytes, past DynamoDB's 2,048 for a partition key."""
    assert sizes.inbox_key_fits("k" * sizes.INBOX_MAX_KEY_BYTES)
    assert sizes.inbox_key_fits(CLEF * 256)  # 1,024 bytes
    assert not sizes.inbox_key_fits(CLEF * 256 + "k")  # 257 characters, 1,025 bytes
    assert not sizes.inbox_key_fits("k" * (sizes.INBOX_MAX_KEY_BYTES + 1))
    assert not sizes.inbox_key_fits("")
    assert sizes.inbox_key_fits("k")  # one byte is a key
    assert not sizes.inbox_key_fits("k\ud800")


def test_the_re_arm_room_counts_its_own_by_and_reason_in_bytes() -> None:
    """The re-arm's history entry keeps `by` and `reason`: 512 characters may be 2,048 bytes."""
    by, reason = "ops", CLEF * sizes.REARM_MAX_TEXT_CHARS  # 3 bytes; 512 characters, 2,048 bytes
    fixed = len(b"pkv") + 100 + sizes.LIFECYCLE_BYTES + 3 + 2_048
    room = sizes.DYNAMODB_MAX_ITEM_BYTES - fixed
    attempts = room // sizes.ATTEMPT_HISTORY_BYTES
    extra = room - attempts * sizes.ATTEMPT_HISTORY_BYTES
    assert sizes.rearm_fits("p", (("k", "v"),), 100 + extra, attempts, (by, reason))
    assert not sizes.rearm_fits("p", (("k", "v"),), 100 + extra + 1, attempts, (by, reason))
    assert sizes.rearm_fits("p", (("k", "v"),), 100 + extra + 1 + 3 + 2_048 - 1, attempts)


def test_an_inbox_prefix_leaves_its_key_the_partition_key_s_rest_in_bytes() -> None:
    assert sizes.INBOX_MAX_PREFIX_BYTES + sizes.INBOX_MAX_KEY_BYTES == sizes.DYNAMODB_MAX_PARTITION_BYTES
    assert sizes.inbox_prefix_problem(CLEF * 256) is None  # 1,024 bytes
    assert sizes.inbox_prefix_problem(CLEF * 256 + "#") == (
        f"key_prefix={CLEF * 64!r} takes 1025 bytes; at most 1024 (with a key of up to 1024 bytes it is "
        "the inbox record's partition key, which DynamoDB takes up to 2048)"
    )
    assert sizes.inbox_prefix_problem("in\ud800#") == "key_prefix='in\\ud800#' is not valid Unicode text"
