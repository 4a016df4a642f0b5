"""What the suite's hooks take and give, and their defaults.

`FaultInjectionSuite` calls each hook on the instance, so a subclass's override is what runs
(docs/fault-injection.md lists them): `make_event` turns a `Request` into the event the team's submit
handler takes, `read_reply` reads its answer, `read_item` reads a table item as a `TableRecord`,
`expected_message` says what a request must put on the queue. The functions here are the defaults,
two sets of them:

* for sendguard's own handler (`FaultInjectionSuite`): an API Gateway (HTTP API 2.0)
  `POST /messages`, sendguard's JSON answer, sendguard's item layout;
* for a team's handler built on `adapters.Outbox` with its own `TableLayout` (`OutboxSuite`): a plain
  event `{"key", "body", "attributes", "item", "transactional"}`, an answer that is the Outbox's
  `SendResult` (or a proxy answer with `messageId`), and items read with the team's layout, the team's
  attributes beside sendguard's `sg_` bookkeeping, the team's other items (an invoice) left out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from adapters.runtime.codec import foreign_attributes, is_record, stored_from_item
from adapters.runtime.layout import TableLayout
from statemodel.stored import Stored


@attrs.frozen
class Request:
    """One request a client makes: a body from `request_bodies()`, the Idempotency-Key the suite
    chose for it (None: sent without one), headers from `request_headers()`, and — for a service
    whose handler can write the record in the team's own transaction (`Service.transactional`) —
    whether this request takes that way (`Outbox.pending_put` then `dispatch`)."""

    body: Any
    key: str | None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    transactional: bool = False


@attrs.frozen
class Reply:
    """What an answer means, read by `read_reply`: its HTTP status (or the status it stands for, for
    a handler that does not answer HTTP), and for an accepted one (202) the message id."""

    status: int
    message_id: str | None = None
    detail: str = ""  # for the report: an error code, say

    @property
    def accepted(self) -> bool:
        return self.status == 202


@attrs.frozen
class TableRecord:
    """One sendguard record as `read_item` finds it in a table item."""

    key: str  # the record's id (the `message_id` its sends carry)
    stored: Stored  # the record's projection and history, as sendguard reads them
    request_key: str | None  # the Idempotency-Key the record was made for, if any
    team_attributes: Mapping[str, Any] = attrs.field(factory=dict)  # the team's own, never rewritten


@attrs.frozen
class Expected:
    """What a request must put on the queue: the payload (as JSON data) and the message attributes."""

    payload: Any
    attributes: Mapping[str, str] = attrs.field(factory=dict)


def api_gateway_event(request: Request, path: str = "/messages", body: Any = None) -> dict[str, Any]:
    """A POST of `body` (default: the request's) to `path` as an HTTP API (payload format 2.0)
    event, with the request's headers and its Idempotency-Key."""
    headers = {"content-type": "application/json", **request.headers}
    if request.key is not None:
        headers["idempotency-key"] = request.key
    return {
        "version": "2.0",
        "rawPath": path,
        "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": path}},
        "body": json.dumps(request.body if body is None else body),
        "isBase64Encoded": False,
    }


def read_api_reply(answer: Any) -> Reply:
    """An API Gateway proxy answer with a JSON body: `messageId` when accepted; for a refusal,
    sendguard's `error.code` (or the team's `error` text)."""
    status = int(answer["statusCode"])
    body = json.loads(answer.get("body") or "null")
    if status == 202:
        return Reply(status, str(body["messageId"]))
    error = body.get("error", "") if isinstance(body, dict) else ""
    detail = error.get("code", "") if isinstance(error, dict) else error
    return Reply(status, None, str(detail))


def read_sendguard_item(item: dict[str, Any]) -> TableRecord | None:
    """An item of sendguard's own table: every item is a record, keyed `message_id`."""
    stored = stored_from_item(item)
    message = stored.record.message
    return TableRecord(message.message_id, stored, message.idempotency_key)


def read_layout_item(item: dict[str, Any], layout: TableLayout) -> TableRecord | None:
    """An item of a team's table with `layout`: a record if it carries sendguard's bookkeeping (its
    key is the request's key, and what sendguard does not own is the team's), else the team's own
    item (None)."""
    if not is_record(item):
        return None
    stored = stored_from_item(item, layout)
    key = stored.record.message.message_id
    return TableRecord(key, stored, key, foreign_attributes(item, layout))


def outbox_event(request: Request) -> dict[str, Any]:
    """The plain event of `outbox_handler`: the key, the payload as JSON text, its attributes, the
    team's item attributes, and the way in."""
    body = request.body
    return {
        "key": request.key,
        "body": json.dumps(body["payload"]),
        "attributes": dict(body.get("attributes", {})),
        "item": dict(body.get("item", {})),
        "transactional": request.transactional,
    }


def read_send_result(answer: Any) -> Reply:
    """An Outbox `SendResult` (what a handler that returns it answers), or a proxy answer."""
    if isinstance(answer, dict):
        return read_api_reply(answer)
    status = int(answer.http_status)
    if answer.accepted:
        return Reply(202, str(answer.message_id))
    return Reply(status, None, str(answer.error_code or answer.outcome))


def sendguard_message(request: Request) -> Expected:
    """sendguard's request body: `{"payload": ..., "attributes": {...}}`."""
    body = request.body
    return Expected(body["payload"], dict(body.get("attributes", {})))
