"""Where the gateway's events go: a small interface, a JSON-lines file and an in-memory list.

An event is a plain JSON-serialisable dict with a ``type`` key (``"beat"`` or ``"quality"``), so a
sink can forward it anywhere (MQTT, a socket, a file) without knowing the pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Protocol

__all__ = ["EventSink", "ListSink", "JsonLinesSink"]


class EventSink(Protocol):
    def emit(self, event: dict) -> None: ...

    def close(self) -> None: ...


class ListSink:
    """Keeps every event in :attr:`events` (tests, offline evaluation)."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def emit(self, event: dict) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass

    def beats(self, stream: str | None = None) -> list[dict]:
        return [e for e in self.events if e["type"] == "beat" and (stream is None or e["stream"] == stream)]

    def quality(self, stream: str | None = None) -> list[dict]:
        return [e for e in self.events if e["type"] == "quality" and (stream is None or e["stream"] == stream)]


class JsonLinesSink:
    """One JSON object per line, to a path (opened here) or an open text file."""

    def __init__(self, target: str | Path | IO[str]):
        if isinstance(target, (str, Path)):
            self._file: IO[str] = open(target, "w", encoding="utf-8")
            self._owned = True
        else:
            self._file, self._owned = target, False

    def emit(self, event: dict) -> None:
        self._file.write(json.dumps(event, separators=(",", ":"), allow_nan=False) + "\n")

    def close(self) -> None:
        self._file.flush()
        if self._owned:
            self._file.close()
