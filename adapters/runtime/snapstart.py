"""SnapStart: what must differ between execution environments resumed from one snapshot.

With Lambda SnapStart (Python 3.12 and later, on published versions) Lambda initialises a function
once, snapshots it, and resumes every new execution environment from that snapshot. Whatever the
snapshot holds, every environment resumed from it shares:

* `random`'s state: botocore draws its retry back-off jitter from it, so environments resumed from one
  snapshot would back off in step, the herd the jitter is there to spread;
* the connections clients opened before the snapshot (one TCP and TLS session, resumed in many
  environments at once), and the credentials they resolved then.

sendguard's ids and nonces (message, correlation and attempt ids: `uuid.uuid4`; body nonces:
`secrets`) are drawn from the operating system's generator when a call needs them, never kept from
the initialisation, so they differ without help.

`RESTORE.restored()` runs after a restore: it reseeds `random` from `os.urandom` and runs every
`on_restore` callback (the Lambda handlers drop their Outbox, so that the next invocation makes its
clients, with new connections, again). The container's boto3 Session stays: it holds botocore's
loaded data and no connection, and `adapters.runtime.clients` makes a new one when the AWS
environment it was made from (credentials, region, endpoints) has changed. Before the snapshot,
`RESTORE.before_snapshot()` runs the `on_snapshot` callbacks: the handlers make their configuration
and clients there, without a request, so that the snapshot holds botocore's loaded service data and
the clients a restored environment makes again cost little. Both are registered with the runtime's
`snapshot_restore_py` (`register_before_snapshot`, `register_after_restore`) where that module
exists (Lambda's Python runtimes include it); `restored` also runs in a forked child
(`os.register_at_fork`): a process forked from an initialised parent is the same situation (the
tests simulate a snapshot and two restores that way; CPython reseeds `random` in a forked child
itself).
"""

from __future__ import annotations

import os
import random
import threading
import weakref
from collections.abc import Callable
from typing import Any


def reseed() -> None:
    """`random`'s state from the operating system's generator, as `random` seeds itself at start."""
    random.seed(os.urandom(32))


class Restore:
    """Callbacks that make an execution environment its own again after a restore (or a fork).
    `reseed` renews the random state (`reseed`; the tests pass a broken one to see it caught)."""

    def __init__(self, reseed: Callable[[], None] = reseed) -> None:
        self._reseed = reseed
        self._callbacks: list[Callable[[], Any]] = []
        self._primers: list[Callable[[], Any]] = []
        self._lock = threading.Lock()
        self.restores = 0  # restores this process went through (0: it started cold)

    def on_restore(self, callback: Callable[[], object]) -> None:
        """Call `callback` after each restore. A bound method is held weakly (registering an
        object's method does not keep the object alive); any other callable, strongly."""
        with self._lock:
            self._callbacks = [r for r in self._callbacks if r() is not None] + [_ref(callback)]

    def on_snapshot(self, callback: Callable[[], object]) -> None:
        """Call `callback` before the snapshot is taken (held as `on_restore` holds it): the
        handlers make their clients there, so that botocore's service data is loaded into the
        snapshot and a restored environment's clients are quick to make again."""
        with self._lock:
            self._primers = [r for r in self._primers if r() is not None] + [_ref(callback)]

    def before_snapshot(self) -> None:
        for callback in [callback for ref in list(self._primers) if (callback := ref()) is not None]:
            callback()

    def restored(self) -> None:
        """After a restore: fresh random state, and no client kept from before it."""
        self._reseed()
        # No lock: in a forked child, another thread of the parent may have held it at the fork.
        callbacks = [callback for ref in list(self._callbacks) if (callback := ref()) is not None]
        for callback in callbacks:
            callback()
        self.restores += 1


def _ref(callback: Callable[[], object]) -> Callable[[], Any]:
    return weakref.WeakMethod(callback) if hasattr(callback, "__self__") else (lambda: callback)


def runtime_hooks() -> Any:
    """Lambda's `snapshot_restore_py` module (in its Python runtimes), or None elsewhere."""
    try:
        import snapshot_restore_py  # type: ignore[import-not-found]
    except ImportError:
        return None
    return snapshot_restore_py


def install(restore: Restore, hooks: Callable[[], Any] = runtime_hooks, *, fork: bool = True) -> str:
    """Runs `restore.restored` after each restore: through the runtime's hooks when `hooks()` gives
    them (and `restore.before_snapshot` before the snapshot), and (`fork`) in each forked child.
    Returns which took it: "snapshot_restore_py" or "fork"."""
    if fork:
        os.register_at_fork(after_in_child=restore.restored)
    module = hooks()
    if module is None:
        return "fork"
    module.register_before_snapshot(restore.before_snapshot)
    module.register_after_restore(restore.restored)
    return "snapshot_restore_py"


RESTORE = Restore()
HOOKED = install(RESTORE)  # at import: Lambda runs the hooks its handler's imports registered


def on_restore(callback: Callable[[], object]) -> None:
    """Call `callback` after each restore of this process (`RESTORE.on_restore`)."""
    RESTORE.on_restore(callback)
