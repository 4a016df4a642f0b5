"""sendguard's adapters: the pure model's decisions carried out on DynamoDB and SQS.

Who lives where:

* `adapters.aws_lambda` — the Lambda handlers (`submit`, `reconcile`), what the SAM template names;
* `adapters.runtime` — everything the Lambda loads: clients and deadlines, error classification, the
  DynamoDB store, the SQS queue, the flow runner, configuration, logs, EMF metrics, API Gateway event
  shapes, the reconciler pass, the re-arm of an exhausted record;
* `adapters.testing` — the fault-injection suite service teams run in their CI (extra `testing`);
* `adapters.ops` — operator tools: provisioning, audit, the trace checker, the index backlog;
* `adapters.cli` — the `sendguard` command line: argument parsing and printing only;
* `adapters.local` — the local service behind `sendguard demo` and `serve` (extra `local`);
* `adapters.docgen` — the doc generators (`python -m adapters.docgen`).

The names in `__all__` are the public API. They are imported on first use, so that
`import adapters.aws_lambda` loads no more than the handler needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters.aws_lambda import reconcile as reconcile
    from adapters.aws_lambda import submit as submit
    from adapters.ops.provision import ensure_resources as ensure_resources
    from adapters.runtime.config import ConfigError as ConfigError
    from adapters.runtime.inbox import BatchResult as BatchResult
    from adapters.runtime.inbox import Delivery as Delivery
    from adapters.runtime.inbox import Inbox as Inbox
    from adapters.runtime.inbox import InboxError as InboxError
    from adapters.runtime.inbox import InboxLayoutMismatch as InboxLayoutMismatch
    from adapters.runtime.inbox import InboxRearmOutcome as InboxRearmOutcome
    from adapters.runtime.inbox import InboxRearmResult as InboxRearmResult
    from adapters.runtime.inbox import InboxView as InboxView
    from adapters.runtime.inbox import InvalidEffect as InvalidEffect
    from adapters.runtime.inbox import ProcessOutcome as ProcessOutcome
    from adapters.runtime.inbox import ProcessResult as ProcessResult
    from adapters.runtime.layout import TableLayout as TableLayout
    from adapters.runtime.outbox import InvalidMessage as InvalidMessage
    from adapters.runtime.outbox import LayoutMismatch as LayoutMismatch
    from adapters.runtime.outbox import Outbox as Outbox
    from adapters.runtime.outbox import OutboxError as OutboxError
    from adapters.runtime.outbox import RecordView as RecordView
    from adapters.runtime.outbox import SendOutcome as SendOutcome
    from adapters.runtime.outbox import SendResult as SendResult
    from adapters.runtime.rearm import InvalidRearm as InvalidRearm
    from adapters.runtime.rearm import RearmOutcome as RearmOutcome
    from adapters.runtime.rearm import RearmResult as RearmResult
    from adapters.runtime.reconciler import PassSummary as PassSummary
    from statemodel.attention import Shards as Shards
    from statemodel.keys import Key as Key

_PUBLIC = {
    "submit": "adapters.aws_lambda",
    "reconcile": "adapters.aws_lambda",
    "ensure_resources": "adapters.ops.provision",
    # The library API (docs/library.md): sendguard in the team's own handler, on the team's table.
    "Outbox": "adapters.runtime.outbox",
    "TableLayout": "adapters.runtime.layout",
    "ConfigError": "adapters.runtime.config",  # `Outbox.from_env` and the handlers: what to set
    "InvalidMessage": "adapters.runtime.outbox",
    "OutboxError": "adapters.runtime.outbox",
    "LayoutMismatch": "adapters.runtime.outbox",  # a ConfigError and an OutboxError: the layout does not fit
    "SendResult": "adapters.runtime.outbox",
    "SendOutcome": "adapters.runtime.outbox",  # `SendResult.outcome`
    "RecordView": "adapters.runtime.outbox",
    "PassSummary": "adapters.runtime.reconciler",
    "RearmResult": "adapters.runtime.rearm",  # what `Outbox.rearm` did
    "RearmOutcome": "adapters.runtime.rearm",  # `RearmResult.outcome`
    "InvalidRearm": "adapters.runtime.rearm",
    "Shards": "statemodel.attention",  # `TableLayout.shards`: the `attention` index's shards
    "Key": "statemodel.keys",  # a record's key: (partition value, sort value) for the team's own row
    # The consumer side (docs/inbox.md): each message's effect applied once.
    "Inbox": "adapters.runtime.inbox",
    "Delivery": "adapters.runtime.inbox",  # what the team's handler gets
    "ProcessResult": "adapters.runtime.inbox",  # what `Inbox.process` did with one message
    "ProcessOutcome": "adapters.runtime.inbox",  # `ProcessResult.outcome`
    "BatchResult": "adapters.runtime.inbox",  # `Inbox.process_batch`: the results and the batch response
    "InboxView": "adapters.runtime.inbox",  # an inbox record, as `Inbox.get` and `Inbox.failed` read it
    "InboxLayoutMismatch": "adapters.runtime.inbox",  # a ConfigError and an InboxError: a layout misfit
    "InboxRearmResult": "adapters.runtime.inbox",  # what `Inbox.rearm` did
    "InboxRearmOutcome": "adapters.runtime.inbox",  # `InboxRearmResult.outcome`
    "InboxError": "adapters.runtime.inbox",
    "InvalidEffect": "adapters.runtime.inbox",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'adapters' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
