"""`sendguard check-trace FILE…`: replays the transitions in JSON log lines through the model.

Every line with `"event": "transition"` is one event of one record (other lines are skipped). A
message's lines may be spread over several files — the submit function and the reconciler write to
different log streams — so each message's lines are put in order by their `version` (the event's
place in the record's history) and replayed through `statemodel.decider.HistoryChecker`. Reported, each with
its file and line: a line out of order within its file, a version seen twice (a duplicated line), a
missing version, an event the table does not allow (wrong phase, another attempt's event, a lease rolled
back before it expired), and a line whose `from`, `to` or `version` disagree with the replay. A history
that starts after version 1 (the trace begins after the record was created) cannot be replayed from its
start; it is counted, not judged. Exit 1 on any problem.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable
from typing import Any

import attrs

from adapters.runtime.log_events import TRANSITION
from statemodel.decider import HistoryChecker
from statemodel.errors import IllegalTransition
from statemodel.events import event_from_dict, message_from_summary
from statemodel.records import phase_of


@attrs.frozen
class Line:
    file: str
    number: int
    data: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.file}:{self.number}"

    @property
    def version(self) -> int:
        return int(self.data["version"])


@attrs.define
class TraceReport:
    lines: int = 0
    transitions: int = 0
    messages: int = 0
    partial: int = 0  # histories that start after version 1: not checked from their start
    problems: list[str] = attrs.field(factory=list)


def read_lines(paths: Iterable[str]) -> tuple[list[Line], int, list[str]]:
    lines, total, problems = [], 0, []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as stream:
            for number, text in enumerate(stream, 1):
                total += 1
                start = text.find("{")
                if start < 0:
                    continue
                try:
                    data = json.loads(text[start:])
                except (ValueError, RecursionError):  # nested past the parser's limit, too
                    continue  # not a JSON line: skipped, like any other line
                if not isinstance(data, dict) or data.get("event") != TRANSITION.name:
                    continue
                if not _well_formed(data):
                    problems.append(f"{path}:{number}: a transition line without its fields")
                    continue
                lines.append(Line(path, number, data))
    return lines, total, problems


def _well_formed(data: dict[str, Any]) -> bool:
    return (
        isinstance(data.get("message_id"), str)
        and isinstance(data.get("version"), int)
        and isinstance(data.get("record_event"), dict)
    )


def check(lines: list[Line]) -> TraceReport:
    report = TraceReport(transitions=len(lines))
    by_message: dict[str, list[Line]] = collections.defaultdict(list)
    for line in lines:
        by_message[line.data["message_id"]].append(line)
    report.messages = len(by_message)
    for message_id, message_lines in by_message.items():
        report.problems += _out_of_order(message_id, message_lines)
        ordered = sorted(message_lines, key=lambda line: (line.version, line.file, line.number))
        if ordered[0].version != 1:
            report.partial += 1
            continue
        report.problems += _replay(message_id, ordered)
    return report


def _out_of_order(message_id: str, lines: list[Line]) -> list[str]:
    problems: list[str] = []
    last_in_file: dict[str, Line] = {}
    for line in lines:
        previous = last_in_file.get(line.file)
        if previous is not None and line.version < previous.version:
            problems.append(
                f"{line.where}: {message_id}: out of order: version {line.version} after version "
                f"{previous.version} at line {previous.number}"
            )
        last_in_file[line.file] = line
    return problems


def _replay(message_id: str, lines: list[Line]) -> list[str]:
    checker = HistoryChecker()
    message = None
    seen: dict[int, Line] = {}
    for line in lines:
        if line.version in seen:
            first = seen[line.version]
            kind = "duplicated" if line.data == first.data else "conflicting"
            return [
                f"{line.where}: {message_id}: {kind} transition: version {line.version} is at {first.where}"
            ]
        seen[line.version] = line
        expected = (checker.record.version if checker.record else 0) + 1
        if line.version != expected:
            return [f"{line.where}: {message_id}: versions {expected} to {line.version - 1} are missing"]
        data = line.data["record_event"]
        try:  # the line's record_event, read as an event: a field missing or of another type is no event
            if message is None:
                message = message_from_summary(message_id, data)
            event = event_from_dict(data, message)
        except KeyError as exc:
            return [f"{line.where}: {message_id}: its record_event has no field {exc}: not an event"]
        except (ValueError, TypeError) as exc:
            return [f"{line.where}: {message_id}: its record_event does not read as an event: {exc}"]
        before = phase_of(checker.record)
        try:
            after = checker.apply(event)
        except (IllegalTransition, ValueError) as exc:
            return [f"{line.where}: {message_id}: illegal transition: {exc}"]
        stated = (line.data.get("from"), line.data.get("to"))
        if stated != (before.value, after.phase.value):
            return [
                f"{line.where}: {message_id}: the line says {stated[0]} -> {stated[1]}, "
                f"the history gives {before.value} -> {after.phase.value}"
            ]
    if not checker.complete:
        return [f"{lines[-1].where}: {message_id}: the trace ends inside a write"]
    return []
