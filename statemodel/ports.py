"""The two ports the flows' effects are carried out on: a record store with DynamoDB's conditional
writes, and a message queue with SQS's sends.

`adapters.runtime.store.DynamoStore` and `adapters.runtime.sqs.SqsQueue` implement them on AWS;
`statemodel.checker.world.WorldStore` and `WorldQueue` in memory. Each call also returns the backend's
own report of it (`R`: the AWS adapters' `CallReport`, for the logs; None in memory). One contract test,
written once against these protocols, runs against both backends (tests/test_ports.py).
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from statemodel.categories import Failure
from statemodel.flows import Outcome, Send, Write
from statemodel.stored import Stored

R_co = TypeVar("R_co", covariant=True)


class RecordStore(Protocol[R_co]):
    def perform(self, write: Write, deadline_ms: int | None) -> tuple[Outcome, R_co]:
        """One conditional write: `Written`, `ConditionFailed` with the record as it is, or `Failed`."""
        ...

    def get(self, message_id: str, deadline_ms: int | None = None) -> tuple[Stored | Failure | None, R_co]:
        """The stored record (strongly consistent), None when there is none, or why it cannot be read."""
        ...


class MessageQueue(Protocol[R_co]):
    def perform(self, send: Send, deadline_ms: int | None) -> tuple[Outcome, R_co]:
        """One send: `Sent` with the queue's message id, or `Failed`."""
        ...
