"""The model's errors. A forbidden command and an illegal event each raise one specific error; the
model never ignores either silently."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the model raises on purpose."""


class ForbiddenCommand(DomainError):
    """`decide` refuses a command in the record's current phase, or its guard does not hold."""


class StaleAttempt(ForbiddenCommand):
    """The command names an attempt that no longer owns the record (fencing)."""


class LeaseStillLive(ForbiddenCommand):
    """The reconciler may not roll back an attempt whose lease has not expired."""


class IllegalTransition(DomainError):
    """An event that the transition table does not allow from the record's phase (replay, audit and
    the trace checker raise it for a history that could not have been written by `decide`)."""
