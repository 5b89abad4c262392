"""The gateway service's input: newline-delimited JSON, one message per line, over TCP or stdin.

    {"stream": "bed-7", "samples": [0.012, -0.034, null, ...]}     next samples of a stream
    {"stream": "bed-7", "samples": [...], "fs": 360}                 the same, stating the rate
    {"stream": "bed-7", "end": true}                                 the stream ended

* ``stream``: 1-128 printable characters; the sender's name for one ECG lead of one patient.
* ``samples``: millivolts at the model's sampling rate (360 Hz for MIT-BIH-trained models;
  ``python -m ecgedge.firmware_host status`` and the health file name the model), as JSON numbers;
  ``null`` is a missing sample (a dropped packet: held at the last value for the filters and
  reported as a ``nan`` quality stretch). A sender at another rate must resample first: a message
  with an ``fs`` other than the model's is refused, since a detector and a spectrogram at the
  wrong rate give confident nonsense.
* ``end``: the stream's last beats are classified now; the service answers (on a socket)
  ``{"stream": ..., "ended": true, "beats": N}``, N = beats classified for that stream, so a
  sender knows everything it sent was processed. The name may then be used for a new stream
  (sample indices start at 0 again).

Other keys are ignored (room for a sequence number or a timestamp). A refused message changes
nothing; the service logs it in one line and, on a socket, answers ``{"error": "..."}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ecgedge.errors import EcgEdgeError

#: where the service listens by default: loopback only (senders on other machines: --listen 0.0.0.0:9360)
DEFAULT_PORT = 9360
DEFAULT_LISTEN = f"127.0.0.1:{DEFAULT_PORT}"
MAX_STREAM_NAME = 128
#: one message is read into memory before it is checked: ~100,000 samples (~5 min at 360 Hz)
MAX_LINE_BYTES = 1 << 20


class ProtocolError(ValueError):
    """A message that is not one of the documented forms; the text says what is wrong."""


@dataclass(frozen=True)
class Samples:
    stream: str
    samples: np.ndarray  # float64, NaN where the sender sent null


@dataclass(frozen=True)
class End:
    stream: str


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6; port 0 = any free one) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise EcgEdgeError(f"--listen {text!r}: expected HOST:PORT, e.g. {DEFAULT_LISTEN} (or [::1]:{DEFAULT_PORT}).")
    return host, int(port)


def _no_constants(name: str) -> float:
    raise ProtocolError(f"{name} is not JSON; send null for a missing sample")


def parse_message(line: bytes | str, fs: int) -> Samples | End:
    """One line -> :class:`Samples` or :class:`End`; :class:`ProtocolError` for anything else."""
    try:
        msg = json.loads(line, parse_constant=_no_constants)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"not JSON ({exc})") from None
    if not isinstance(msg, dict):
        raise ProtocolError(f"expected a JSON object, got {type(msg).__name__}")
    stream = msg.get("stream")
    if not isinstance(stream, str) or not 0 < len(stream) <= MAX_STREAM_NAME or not stream.isprintable():
        raise ProtocolError(f"'stream' must be a name of 1-{MAX_STREAM_NAME} printable characters, got {_short(stream)}")
    if "end" in msg:
        if msg["end"] is not True or "samples" in msg:
            raise ProtocolError('an end message is {"stream": NAME, "end": true}, without samples')
        return End(stream)
    if "fs" in msg and (isinstance(msg["fs"], bool) or msg["fs"] != fs):
        raise ProtocolError(f"fs {_short(msg['fs'])} Hz, but the model takes {fs} Hz: resample to {fs} Hz before sending")
    samples = msg.get("samples")
    if not isinstance(samples, list):
        raise ProtocolError(f"'samples' must be a list of numbers (millivolts, null = missing), got {_short(samples)}")
    # np.asarray(..., float) would also take "1.5" and true: check each value's type
    bad = next((v for v in samples if v is not None and type(v) not in (int, float)), None)
    if bad is not None:
        raise ProtocolError(f"'samples' holds {_short(bad)}; only numbers (millivolts) and null are allowed")
    try:
        return Samples(stream, np.array(samples, dtype=np.float64))
    except OverflowError:
        raise ProtocolError("'samples' holds an integer too large for a float") from None


def _short(value: object) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."
