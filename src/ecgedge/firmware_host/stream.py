"""The gateway: many ECG streams in, classified beats and signal-quality stretches out.

Per stream a :class:`~ecgedge.firmware_host.beats.BeatCutter` (causal high-pass, online QRS
detection, beat window and rhythm features once the window and the next R peak have arrived).
Ready beats of all streams wait in one queue; the :class:`Gateway` turns them into spectrograms
with the training function :func:`~ecgedge.preprocess.beats_to_images` and classifies them in one
runtime call (micro-batching: one model call for many streams is several times cheaper per beat
than one call per beat), when

* the queue holds ``batch_size`` beats, or
* its oldest beat has waited ``max_wait_s`` of *its stream's* time (samples that stream has
  delivered since the beat became ready), or
* :meth:`Gateway.flush` / :meth:`Gateway.end_stream` is called.

So batching adds at most ``max_wait_s`` (plus the chunk that crosses it) to a beat's latency,
measured in stream time: a replay at 1000x real time batches exactly as a live gateway would.
Stream time, not wall time, also keeps the output deterministic: which beats share a batch
depends on the chunking, but each beat's image, features and (per-beat independent) model output
do not, so any chunking gives the same events (tested).

Events (plain dicts, to an :class:`~ecgedge.firmware_host.sinks.EventSink`):

* ``{"type": "beat", "stream", "sample", "time_s", "class", "probabilities": {cls: p},
  "model", "latency_s", "padded"}``: ``latency_s`` = stream time from the R peak to the event.
* ``{"type": "quality", "stream", "kind", "start", "end", "start_s", "end_s"}``: NaN, saturated or
  flat stretches found by the detector's quality tracker, emitted once they have ended.

numpy + the one inference runtime of the model file; no torch, no wfdb.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ecgedge.errors import EcgEdgeError
from ecgedge.firmware_host.beats import BeatCutter, ReadyBeat
from ecgedge.firmware_host.qrs import QrsConfig
from ecgedge.firmware_host.quality import QualityEvent
from ecgedge.firmware_host.sinks import EventSink
from ecgedge.preprocess.config import PreprocessConfig
from ecgedge.preprocess.spectrogram import beats_to_images

__all__ = ["Gateway", "model_id", "preprocess_of", "softmax"]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def model_id(runtime) -> str:
    """``<file name>@<first 12 hex of its SHA-256>``: which exact model classified a beat."""
    path = Path(runtime.path)
    h = hashlib.sha256()
    if path.is_file():
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return f"{path.name}@{h.hexdigest()[:12]}"


def preprocess_of(runtime) -> PreprocessConfig:
    """The preprocessing the model was trained with, from its embedded metadata."""
    pre = (runtime.metadata or {}).get("preprocess")
    if not pre:
        raise EcgEdgeError(f"{runtime.path} carries no preprocessing metadata; export it with `ecgedge export`.")
    return PreprocessConfig.from_dict(pre)


class Gateway:
    """Streams in, events out. ``push(stream, samples)`` any chunking; ``end_stream`` / ``close`` at the end."""

    def __init__(
        self,
        runtime,
        sink: EventSink,
        preprocess: PreprocessConfig | None = None,
        batch_size: int = 64,
        max_wait_s: float = 0.5,
        qrs: QrsConfig | None = None,
        model: str | None = None,
    ):
        self.runtime = runtime
        self.sink = sink
        self.pre = preprocess or preprocess_of(runtime)
        h, w = self.pre.spectrogram.image_size
        if tuple(runtime.input_size) != (h, w):
            raise EcgEdgeError(f"{runtime.path}: model takes {runtime.input_size} images but the preprocessing makes {(h, w)}")
        self.classes = tuple(runtime.classes)
        self.batch_size = int(batch_size)
        self.max_wait = int(round(max_wait_s * self.pre.fs))
        self.qrs = qrs
        self.model = model or model_id(runtime)
        self.streams: dict[str, BeatCutter] = {}
        self._queue: list[ReadyBeat] = []
        self.stats = {"beats": 0, "batches": 0, "quality": 0}

    # ------------------------------------------------------------------ streams

    def stream(self, stream: str) -> BeatCutter:
        cutter = self.streams.get(stream)
        if cutter is None:
            cutter = self.streams[stream] = BeatCutter(stream, self.pre, self.qrs)
        return cutter

    def push(self, stream: str, samples: np.ndarray) -> None:
        """Feed the next samples of ``stream`` (millivolts at the model's rate, NaN allowed)."""
        cutter = self.stream(stream)
        beats, quality = cutter.feed(samples)
        self._quality(stream, quality)
        self._queue.extend(beats)
        self._maybe_run()

    def end_stream(self, stream: str) -> None:
        """The stream ended: its last beats are classified and its quality stretches closed."""
        cutter = self.streams.get(stream)
        if cutter is None:
            return
        beats, quality = cutter.finish()
        self._queue.extend(beats)
        self.flush()
        self._quality(stream, quality)
        del self.streams[stream]

    def flush(self) -> None:
        """Classify every queued beat now."""
        while self._queue:
            self._run(self._queue[: self.batch_size])
            del self._queue[: self.batch_size]

    def close(self) -> None:
        for stream in list(self.streams):
            self.end_stream(stream)
        self.flush()
        self.sink.close()

    # ------------------------------------------------------------------ batching

    def _maybe_run(self) -> None:
        while len(self._queue) >= self.batch_size:
            self._run(self._queue[: self.batch_size])
            del self._queue[: self.batch_size]
        if self._queue and self._oldest_wait() > self.max_wait:
            self.flush()

    def _oldest_wait(self) -> int:
        wait = 0
        for b in self._queue:
            cutter = self.streams.get(b.stream)
            now = cutter.n if cutter is not None else b.ready_at
            wait = max(wait, now - b.ready_at)
        return wait

    def _run(self, batch: list[ReadyBeat]) -> None:
        windows = np.stack([b.window for b in batch])
        images = beats_to_images(windows, self.pre)
        rr = np.stack([b.rr for b in batch]).astype(np.float32)
        probs = softmax(self.runtime.predict(images, rr).astype(np.float64))
        fs = float(self.pre.fs)
        for b, p in zip(batch, probs):
            k = int(np.argmax(p))
            cutter = self.streams.get(b.stream)
            now = cutter.n if cutter is not None else b.ready_at
            self.sink.emit(
                {
                    "type": "beat",
                    "stream": b.stream,
                    "sample": b.sample,
                    "time_s": b.sample / fs,
                    "class": self.classes[k],
                    "probabilities": {c: round(float(v), 6) for c, v in zip(self.classes, p)},
                    "model": self.model,
                    "latency_s": max(now, b.sample) / fs - b.sample / fs,
                    "padded": b.padded,
                }
            )
        self.stats["beats"] += len(batch)
        self.stats["batches"] += 1

    def _quality(self, stream: str, events: list[QualityEvent]) -> None:
        fs = float(self.pre.fs)
        for ev in events:
            self.sink.emit(
                {"type": "quality", "stream": stream, "kind": ev.kind, "start": ev.start, "end": ev.end, "start_s": ev.start / fs, "end_s": ev.end / fs}
            )
        self.stats["quality"] += len(events)

