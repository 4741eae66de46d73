"""Turns an execution's time on the emulator into the seconds it would take on AWS.

The emulator shortens only Wait states, Retry intervals and task timeouts by ``time_scale``;
history timestamps have millisecond precision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class WaitEntered:
    """A Wait state an execution entered: the declared seconds it had waited in Wait states before."""

    waited_before_s: float
    still_waiting: bool


class DeclaredClock:
    """Declared seconds of an execution, from its history.

    A Wait state with a fixed ``Seconds`` counts as those seconds, spread evenly over the time it
    was entered (so that the interpreter's own overhead inside it is not multiplied); any other
    Wait counts its measured time divided by ``time_scale``. Everything else counts as measured.
    """

    def __init__(self, definition: Mapping[str, Any], time_scale: float) -> None:
        self.time_scale = time_scale
        self.wait_seconds: dict[str, float | None] = {}
        self._collect_waits(definition.get("States", {}))

    def _collect_waits(self, states: Mapping[str, Any]) -> None:
        for name, state in states.items():
            if state.get("Type") == "Wait":
                seconds = state.get("Seconds")
                self.wait_seconds[name] = float(seconds) if isinstance(seconds, (int, float)) else None
            for branch in state.get("Branches", []):
                self._collect_waits(branch.get("States", {}))
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor:
                self._collect_waits(processor.get("States", {}))

    def seconds(self, history: Sequence[Mapping[str, Any]], start: datetime, end: datetime) -> float:
        """Declared seconds from ``start`` to ``end`` of the execution with this ``history``."""
        declared = (end - start).total_seconds()
        for name, entered, exited in wait_intervals(history):
            stop = exited or end
            overlap = _overlap((entered, stop), (start, end))
            if overlap <= 0:
                continue
            fixed = self.wait_seconds.get(name)
            if fixed is None or exited is None:  # no fixed length, or still waiting: measured, scaled back
                in_wait = overlap / self.time_scale if fixed is None else min(overlap / self.time_scale, fixed)
            else:
                in_wait = fixed * overlap / (exited - entered).total_seconds()
            declared += in_wait - overlap
        return declared

    def waited(self, history: Sequence[Mapping[str, Any]], until: datetime) -> float:
        """Declared seconds a waiter waited: the declared length of every Wait state it entered.

        A waiter without Wait states (parked in a task until called back) waited from its start
        until ``until`` (its owner's end) by the emulator's clock, wall time / time_scale.
        """
        intervals = wait_intervals(history)
        if not intervals:
            return (until - history_start(history)).total_seconds() / self.time_scale
        return sum(self._length(name, entered, exited or until) for name, entered, exited in intervals)

    def waits_entered(self, history: Sequence[Mapping[str, Any]]) -> list[WaitEntered]:
        """Every Wait state entered, in order, with the declared seconds waited in the ones before it."""
        waits, waited = [], 0.0
        for name, entered, exited in wait_intervals(history):
            waits.append(WaitEntered(waited, exited is None))
            if exited is not None:
                waited += self._length(name, entered, exited)
        return waits

    def _length(self, name: str, entered: datetime, exited: datetime) -> float:
        fixed = self.wait_seconds.get(name)
        return fixed if fixed is not None else (exited - entered).total_seconds() / self.time_scale


def history_start(history: Sequence[Mapping[str, Any]]) -> datetime:
    start: datetime = min(event["timestamp"] for event in history)
    return start


def history_end(history: Sequence[Mapping[str, Any]]) -> datetime:
    end: datetime = max(event["timestamp"] for event in history)
    return end


def wait_intervals(history: Sequence[Mapping[str, Any]]) -> list[tuple[str, datetime, datetime | None]]:
    """Each Wait state entered: its name, when it was entered, and when it was exited (None: still waiting)."""
    entered = [event for event in history if event["type"] == "WaitStateEntered"]
    exited = [event["timestamp"] for event in history if event["type"] == "WaitStateExited"]
    return [
        (event["stateEnteredEventDetails"]["name"], event["timestamp"], exited[index] if index < len(exited) else None)
        for index, event in enumerate(entered)
    ]


def _overlap(first: tuple[datetime, datetime], second: tuple[datetime, datetime]) -> float:
    start, end = max(first[0], second[0]), min(first[1], second[1])
    return max(0.0, (end - start).total_seconds())
