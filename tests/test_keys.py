"""Record keys (`statemodel.keys`, `statemodel.validation.parse_key`): every key names one message id
within SQS's limits, different keys name different ids, and a readable id gives its key back. Pure
(in `make mutation`'s run); `TableLayout`'s key rules are in tests/test_team_row.py."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statemodel.keys import DIGEST, MAX_MESSAGE_ID, Key
from statemodel.validation import parse_key

DEDUPLICATION_ID = re.compile(r"[!-~]{1,128}")  # SQS: alphanumerics and punctuation, 1 to 128

parts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300)
plain_keys = st.from_regex(r"[!-.0-~]{1,128}", fullmatch=True)  # printable ASCII without '/'
keys = st.one_of(plain_keys.map(Key), st.builds(Key, parts, parts))


def test_a_composite_key_reads_as_its_parts() -> None:
    assert Key("acme", "p-1").message_id == "acme/p-1"
    assert (
        Key("TENANT#acme", "PAY#2024-01-01T00:00:00Z").message_id
        == "TENANT#acme/PAY#2024-01-01T00%3A00%3A00Z"
    )
    assert Key("a/b", "ż c").message_id == "a%2Fb/%C5%BC%20c"
    assert Key("p-1").message_id == "p-1"


@given(keys)
def test_every_key_names_a_message_id_sqs_takes_and_a_readable_one_gives_the_key_back(key: Key) -> None:
    message_id = key.message_id
    assert DEDUPLICATION_ID.fullmatch(message_id), message_id
    back = Key.from_message_id(message_id)
    if DIGEST in message_id:
        assert back is None and key.composite
    else:
        assert back == key


@given(st.lists(keys, min_size=2, max_size=2, unique=True))
def test_different_keys_name_different_message_ids(pair: list[Key]) -> None:
    first, second = pair
    assert first.message_id != second.message_id


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (Key("a/b", "c"), Key("a", "b/c")),  # the separator inside a part
        (Key("a%2Fb", "c"), Key("a/b", "c")),  # an escape inside a part
        (Key("a:b", "c"), Key("a%3Ab", "c")),
    ],
)
def test_keys_that_read_alike_name_different_message_ids(first: Key, second: Key) -> None:
    assert first.message_id != second.message_id


def test_a_long_composite_key_is_named_by_a_digest_within_128_characters() -> None:
    key = Key("t" * 2048, "s" * 1024)
    assert len(key.message_id) <= MAX_MESSAGE_ID and DIGEST in key.message_id
    assert key.message_id.startswith("t" * 40 + "/")
    assert Key("t" * 2048, "s" * 1023).message_id != key.message_id
    assert Key.from_message_id(key.message_id) is None


@pytest.mark.parametrize(
    ("given_key", "words"),
    [
        ("", "1 to 128 printable ASCII"),
        ("has space", "1 to 128 printable ASCII"),
        (("acme", ""), "takes 0 bytes"),
        (("acme", "s" * 1025), "DynamoDB takes 1 to 1024"),
        (("p" * 2049, "s"), "DynamoDB takes 1 to 2048"),
        (("acme", 7), "must be strings"),
        (["acme", "p-1"], "string or a (partition value, sort value) pair"),
        (("acme", "\ud800"), "not valid Unicode"),
    ],
)
def test_parse_key_says_why_a_key_cannot_be_one(given_key: object, words: str) -> None:
    problem = parse_key(given_key)
    assert isinstance(problem, str) and words in problem


def test_parse_key_takes_a_string_a_pair_or_a_key() -> None:
    assert parse_key("p-1") == Key("p-1")
    assert parse_key(("acme", "p-1")) == Key("acme", "p-1")
    assert parse_key(Key("acme", "p-1")) == Key("acme", "p-1")
    assert parse_key(Key("p-1")) == Key("p-1")


def test_a_key_value_may_take_1_to_dynamodbs_limit_in_utf8_bytes() -> None:
    """The limits count UTF-8 bytes (DynamoDB's), each bound taken: 1 byte; 2,048 for the partition
    value and 1,024 for the sort value, in one-byte or two-byte characters."""
    for partition, sort in (("a", "b"), ("p" * 2048, "s" * 1024), ("ż" * 1024, "ż" * 512)):
        assert parse_key((partition, sort)) == Key(partition, sort)
    for partition, sort in (("ż" * 1024 + "a", "s"), ("p", "ż" * 512 + "a")):
        assert isinstance(parse_key((partition, sort)), str)


@pytest.mark.parametrize("message_id", ["acme/%FF", "%C5/p-1", "acme/%ED%A0%80"])
def test_a_message_id_no_key_can_have_made_is_refused(message_id: str) -> None:
    """An escape that is not UTF-8 (a stray byte, a cut character, a surrogate) is a ValueError, not
    a key."""
    with pytest.raises(ValueError):
        Key.from_message_id(message_id)
