"""docs/fault-injection.md's table of faults: every member of `adapters.testing.Fault`, read from the
enum itself, so that the page cannot name a fault the injector lacks or miss one it has
(`make docs-check`)."""

from __future__ import annotations

from adapters.testing.injector import SEND, WRITE, Fault, Kind

# What each stage of a fault does to the call it hits (`adapters.testing.injector.Kind.stage`).
STAGES: dict[str, str] = {
    "before": "fails before anything is applied",
    "after": "is applied, then its caller does not hear of it",
    "crash-before": "is never made: the invocation is killed before it (a `BaseException`)",
    "crash-after": "is applied, then the invocation is killed (a `BaseException`)",
    "stall": "waits, with its invocation, while the clock runs past the lease and the reconciler runs",
    "stall-wire": "leaves before the deadline, and reaches the service only after the reconciler ran",
}
TARGETS = {SEND: "SQS sends", WRITE: "DynamoDB writes", None: "SQS sends and DynamoDB writes"}


def render() -> str:
    """The table, one row per member, in the enum's order."""
    rows = [
        "| `Fault.` | What | Hits | What happens to the call | What the caller sees | Classified as |",
        "|---|---|---|---|---|---|",
    ]
    rows += [_row(fault.name, fault.value) for fault in Fault]
    return "\n".join(rows) + "\n"


def _row(name: str, kind: Kind) -> str:
    if kind.stage == "before" and kind.target is not None:  # an error answer
        seen = f"`{kind.code}` (HTTP {kind.status})"
    elif kind.code:  # an exception botocore raises
        seen = f"`{kind.code}`"
    elif kind.stage == "after":  # the SDK's retry of the landed write, as DynamoDB answers it
        seen = "`ConditionalCheckFailedException` on a conditioned write (its retry met its own write)"
    elif kind.stage.startswith("stall"):
        seen = "the call's own answer, late"
    else:
        seen = "nothing: it is not running"
    category = "—" if kind.category is None else f"`{kind.category.value}`"
    return f"| `{name}` | {kind.name} | {TARGETS[kind.target]} | {STAGES[kind.stage]} | {seen} | {category} |"
