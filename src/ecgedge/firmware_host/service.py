"""The gateway service: ``python -m ecgedge.firmware_host serve --root ROOT`` (one systemd unit).

At start, once:

1. ``ROOT/current`` is resolved to ``versions/V`` and everything after reads ``versions/V``: a
   deploy's switch takes effect at the restart that follows it, never in the middle of a run;
2. V's manifest is read (:func:`~.bundle_format.parse_manifest`) and one model file chosen: the
   ``--model`` option (a file name or ``models/NAME``) when given, else the *first* model the
   manifest lists (the first ``--model`` given to ``ecgedge bundle``, or the export's first file);
3. the SHA-256 of every file the service reads (that model, its metadata sidecar, ``golden.npz``)
   is checked against the manifest: install checked them, this catches a file damaged on disk
   since (~50 ms for a ResNet-18 int8 file on a Pi 4);
4. the model is loaded with :func:`~.runtime.load_runtime`, its preprocessing read from its
   metadata (the streaming front end needs it; install's self-test does not), and the golden
   vectors are run through *that* runtime object (:func:`~.selftest.self_test`): install proved
   the gateway's runtime works, this proves the process that serves does;
5. the listener is bound, the events file opened, ``ROOT/run/health.json`` written
   (:mod:`.health`) and, under systemd (``Type=notify``, ``$NOTIFY_SOCKET``), ``READY=1`` sent,
   so ``systemctl restart`` returns only once the new version serves, and fails when it cannot.
   Any failure before this point prints one ``error:`` line and exits 2 without a health file
   claiming anything.

Then it runs a :class:`~.stream.Gateway` over the line protocol of :mod:`.protocol`, read from
TCP connections (``--listen HOST:PORT``; each connection may send any number of streams, a
stream belongs to the connection that started it, a closed connection ends its open streams)
and/or stdin (``--stdin``; the service exits at its end when it listens on nothing else). Events
go one JSON object per line (line-buffered, so ``tail -f`` sees each beat as it is classified) to
``--events FILE`` (appended to), ``-`` (stdout), or by default a new file per start,
``ROOT/events/<started UTC>-<version>.jsonl``. A refused message is logged in one line and the
connection kept; a line over :data:`~.protocol.MAX_LINE_BYTES` drops that connection; an
unexpected error while handling one message is logged and counted (``errors`` in the health
file), never fatal.

SIGTERM / SIGINT: stop listening, end every open stream (its pending beats are classified and
written), close the events file, mark the health file ``stopped``, exit 0.

The event loop is :mod:`asyncio` in one thread: the Gateway is not thread-safe and inference is
the bottleneck anyway (one core on a Pi runs it; the others are the runtime's own threads).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import IO

from ecgedge.atomic import sha256_file
from ecgedge.errors import EcgEdgeError
from ecgedge.firmware_host.bundle_format import GOLDEN, MANIFEST, parse_manifest
from ecgedge.firmware_host.health import INTERVAL_S, mark_stopped, utc, write_health
from ecgedge.firmware_host.install import CURRENT, VERSIONS, linked_version
from ecgedge.firmware_host.protocol import DEFAULT_LISTEN, MAX_LINE_BYTES, End, ProtocolError, parse_listen, parse_message
from ecgedge.firmware_host.runtime import Runtime, load_runtime
from ecgedge.firmware_host.selftest import Comparison, as_dicts, failure_message, self_test
from ecgedge.firmware_host.sinks import JsonLinesSink
from ecgedge.firmware_host.stream import Gateway, preprocess_of
from ecgedge.model_files import sidecar_path
from ecgedge.preprocess.config import PreprocessConfig

EVENTS_DIR = "events"

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- start: the model


@dataclass(frozen=True)
class LoadedModel:
    version: str  # what ROOT/current pointed at when the service started
    file: str  # the model's path in the bundle, models/NAME
    sha256: str
    runtime: Runtime
    preprocess: PreprocessConfig  # from the model's own metadata, as training wrote it
    self_test: Comparison

    @property
    def model_id(self) -> str:
        """What beat events name, as :func:`~.stream.model_id` would: ``NAME@<12 hex of SHA-256>``."""
        return f"{Path(self.file).name}@{self.sha256[:12]}"


def choose_model(manifest: dict, wanted: str | None) -> dict:
    """The manifest entry to serve: ``wanted`` (file name or bundle path), else the first listed."""
    models = manifest["models"]
    if wanted is None:
        return models[0]
    for m in models:
        if wanted in (m["file"], Path(m["file"]).name):
            return m
    names = ", ".join(Path(m["file"]).name for m in models)
    raise EcgEdgeError(f"--model {wanted}: bundle {manifest['version']} holds no such model file; it has {names}.")


def _check_files(directory: Path, manifest: dict, names: list[str]) -> None:
    files = manifest["files"]
    for name in names:
        path = directory / name
        if not path.is_file():
            raise EcgEdgeError(f"{path} is missing from the installed version; deploy the bundle again or roll back.")
        if sha256_file(path) != files[name]["sha256"]:
            raise EcgEdgeError(
                f"{path} does not match its SHA-256 in the manifest of {manifest['version']} (damaged on disk or changed by hand); "
                "refusing to serve it: deploy the bundle again, or go back with `ecgedge deploy --rollback`."
            )


def load_current(root: Path, model: str | None = None, threads: int | None = None) -> LoadedModel:
    """Steps 1-4 of the module docstring; EcgEdgeError (one line) when the version cannot be served."""
    root = Path(root)
    if not root.is_dir():
        raise EcgEdgeError(f"{root} is not a gateway directory (it does not exist); deploy a bundle there first.")
    version = linked_version(root, CURRENT)
    if version is None:
        raise EcgEdgeError(f"{root} has no current version; deploy a bundle first (`ecgedge deploy BUNDLE --target ...`).")
    directory = root / VERSIONS / version
    try:
        manifest = parse_manifest((directory / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise EcgEdgeError(f"{root / CURRENT} points at {directory}, which holds no {MANIFEST}; roll back or deploy again.") from None
    entry = choose_model(manifest, model)
    name = entry["file"]
    sidecar = sidecar_path(Path(name)).as_posix()
    _check_files(directory, manifest, [name, GOLDEN] + ([sidecar] if sidecar in manifest["files"] else []))
    runtime = load_runtime(directory / name, num_threads=threads)
    preprocess = preprocess_of(runtime)
    results = self_test(directory, {**manifest, "models": [entry]}, runtimes={name: runtime})
    problem = failure_message(results)
    if problem:
        raise EcgEdgeError(f"{version}: the golden vectors fail in this process ({problem}); refusing to serve.")
    return LoadedModel(version, name, manifest["files"][name]["sha256"], runtime, preprocess, results[0])


# --------------------------------------------------------------------------- messages -> Gateway


class CountingSink:
    """Passes events on, counting the beats of each open stream (the answer to its ``end``)."""

    def __init__(self, sink) -> None:
        self.sink = sink
        self.beats: Counter[str] = Counter()

    def emit(self, event: dict) -> None:
        self.sink.emit(event)
        if event["type"] == "beat":
            self.beats[event["stream"]] += 1

    def close(self) -> None:
        self.sink.close()


class Router:
    """Messages from connections to the one Gateway: who owns which stream, ends, refusals.

    Transport-free: :meth:`handle` takes one line from connection ``conn`` and returns the answer
    for that connection (or None); :meth:`disconnect` ends the connection's open streams.
    """

    def __init__(self, gateway: Gateway, counts: CountingSink, log: Log = _stderr):
        self.gateway, self.counts, self.log = gateway, counts, log
        self.fs = int(gateway.pre.fs)
        self.owner: dict[str, str] = {}
        self.stats = Counter(bad_messages=0, errors=0, streams_ended=0)

    def handle(self, conn: str, line: bytes) -> dict | None:
        try:
            msg = parse_message(line, self.fs)
        except ProtocolError as exc:
            return self._refuse(conn, str(exc))
        owner = self.owner.get(msg.stream, conn)
        if owner != conn:
            return self._refuse(conn, f"stream {msg.stream!r} is being sent by {owner}; one sender per stream")
        try:
            if isinstance(msg, End):
                return self._end(conn, msg.stream, "ended")
            self.owner[msg.stream] = conn
            self.gateway.push(msg.stream, msg.samples)
        except Exception as exc:  # a bug or a full disk must not take the other streams down
            self.stats["errors"] += 1
            self.log(f"error: {conn}: stream {msg.stream!r}: {type(exc).__name__}: {exc}")
            return {"error": f"internal error ({type(exc).__name__}); see the service log"}
        return None

    def disconnect(self, conn: str) -> None:
        for stream in [s for s, c in self.owner.items() if c == conn]:
            self._end(conn, stream, "ended by the end of its connection")

    def close(self) -> None:
        """Every stream ends (pending beats classified), then the sink closes."""
        for conn in sorted(set(self.owner.values())):
            self.disconnect(conn)
        self.gateway.close()

    def _end(self, conn: str, stream: str, how: str) -> dict:
        self.gateway.end_stream(stream)
        answer = {"stream": stream, "ended": True, "beats": self.counts.beats.pop(stream, 0)}
        if self.owner.pop(stream, None) is not None:
            self.stats["streams_ended"] += 1
            self.log(f"{conn}: stream {stream!r} {how}, {answer['beats']} beats")
        return answer

    def _refuse(self, conn: str, why: str) -> dict:
        self.stats["bad_messages"] += 1
        self.log(f"refused a message from {conn}: {why}")
        return {"error": why}


# --------------------------------------------------------------------------- the running service


class Service:
    """The asyncio side: listener, stdin pump, health ticker, shutdown. See the module docstring."""

    def __init__(self, root: Path, loaded: LoadedModel, events: IO[str], events_name: str, *, listener: socket.socket | None,
                 use_stdin: bool, health_interval_s: float, log: Log):  # fmt: skip
        self.root, self.loaded, self.log = Path(root), loaded, log
        self.events_name = events_name
        self.listener, self.use_stdin, self.health_interval_s = listener, use_stdin, health_interval_s
        self.counts = CountingSink(JsonLinesSink(events))
        self.gateway = Gateway(loaded.runtime, self.counts, loaded.preprocess, model=loaded.model_id)
        self.router = Router(self.gateway, self.counts, log)
        self.started = time.time()
        self.bound = _address(listener) if listener is not None else None
        self.clients: dict[str, tuple[asyncio.Task, asyncio.StreamWriter]] = {}
        self.connections_total = 0

    def state(self) -> dict:
        rt, g = self.loaded.runtime, self.gateway
        return {
            "status": "running",
            "pid": os.getpid(),
            "root": str(self.root),
            "version": self.loaded.version,
            "model": {"file": self.loaded.file, "sha256": self.loaded.sha256, "id": self.loaded.model_id, "format": rt.format, "precision": rt.precision, "backend": rt.backend},
            "classes": list(g.classes),
            "fs": int(g.pre.fs),
            "self_test": as_dicts([self.loaded.self_test])[0],
            "listen": self.bound,
            "stdin": self.use_stdin,
            "events": self.events_name,
            "started_utc": utc(self.started),
            "beats": g.stats["beats"],
            "batches": g.stats["batches"],
            "quality_events": g.stats["quality"],
            "streams_open": len(self.router.owner),
            **dict(self.router.stats),
            "connections_open": len(self.clients),
            "connections_total": self.connections_total,
        }

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        server = None if self.listener is None else await asyncio.start_server(self._client, sock=self.listener, limit=MAX_LINE_BYTES)
        write_health(self.root, self.state())
        sd_notify(f"READY=1\nSTATUS=serving {self.loaded.version}", self.log)
        where = " and ".join(x for x in (self.bound and f"tcp {self.bound}", self.use_stdin and "stdin") if x)
        self.log(f"serving {self.loaded.version} ({self.loaded.model_id}, {self.loaded.runtime.backend}) on {where}; events -> {self.events_name}")
        ticker = asyncio.create_task(self._tick())
        pump = asyncio.create_task(self._stdin(stop if server is None else None)) if self.use_stdin else None
        try:
            await stop.wait()
        finally:
            self.log("stopping: ending open streams")
            sd_notify("STOPPING=1", self.log)
            if server is not None:
                server.close()
            for task, writer in list(self.clients.values()):
                writer.close()
                task.cancel()
            await asyncio.gather(*(t for t, _ in list(self.clients.values())), return_exceptions=True)
            for task in (ticker, pump):
                if task is not None:
                    task.cancel()
            self.router.close()
            mark_stopped(self.root, os.getpid(), self.state())
            self.log(f"stopped: {self.gateway.stats['beats']} beats classified")

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval_s)
            try:
                write_health(self.root, self.state())
            except OSError as exc:  # a full disk: keep classifying, the check will say the file is stale
                self.log(f"cannot update the health file ({exc})")

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        conn = f"tcp {peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "tcp client"
        self.clients[conn] = (asyncio.current_task(), writer)
        self.connections_total += 1
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than the reader's limit: the stream cannot be resynchronised
                    self.router.stats["bad_messages"] += 1
                    self.log(f"{conn}: a line longer than {MAX_LINE_BYTES} bytes; connection dropped")
                    break
                if not line:
                    break
                if line.strip():
                    reply = self.router.handle(conn, line)
                    if reply is not None:
                        writer.write((json.dumps(reply) + "\n").encode())
                        await writer.drain()
        except ConnectionError:
            pass
        finally:
            self.clients.pop(conn, None)
            self.router.disconnect(conn)
            writer.close()

    async def _stdin(self, stop_at_end: asyncio.Event | None) -> None:
        """Lines of stdin, read by a daemon thread (pipes, files and terminals alike; asyncio's pipes take no files)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue(maxsize=64)  # bounded: a fast pipe waits for inference

        def reader() -> None:
            try:
                for line in read_lines(sys.stdin.fileno()):
                    asyncio.run_coroutine_threadsafe(queue.put(line), loop).result()
                asyncio.run_coroutine_threadsafe(queue.put(b""), loop).result()
            except RuntimeError:  # the loop closed first: the service is stopping
                pass

        threading.Thread(target=reader, name="stdin", daemon=True).start()
        while (line := await queue.get()) != b"":
            if line is None:
                self.router.stats["bad_messages"] += 1
                self.log(f"stdin: a line longer than {MAX_LINE_BYTES} bytes; skipped")
            elif line.strip():
                self.router.handle("stdin", line)  # no channel back: refusals are in the log
        self.router.disconnect("stdin")
        if stop_at_end is not None:
            stop_at_end.set()


def read_lines(fd: int) -> Iterator[bytes | None]:
    """The lines of file descriptor ``fd`` (None for one longer than MAX_LINE_BYTES, skipped).

    ``os.read`` rather than ``sys.stdin.buffer``: a daemon thread blocked inside a buffered
    reader holds its lock, and the interpreter aborts when it finds that lock taken at exit.
    """
    pending, skipping = b"", False
    while data := os.read(fd, 1 << 16):
        *complete, pending = (pending + data).split(b"\n")
        for line in complete:
            yield None if skipping else line
            skipping = False
        if len(pending) > MAX_LINE_BYTES:
            pending, skipping = b"", True
    if skipping:
        yield None
    elif pending:
        yield pending


def sd_notify(message: str, log: Log = _stderr) -> None:
    """Send ``message`` to systemd (``Type=notify`` units); nothing when not started by systemd.

    The protocol is one datagram to the AF_UNIX socket named by ``$NOTIFY_SOCKET`` (``@`` = the
    abstract namespace), which needs no libsystemd.
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        log(f"cannot notify systemd at {os.environ['NOTIFY_SOCKET']} ({exc})")


def bind(address: str) -> socket.socket:
    """The listening socket, bound before anything is written (a port in use refuses the start cleanly)."""
    host, port = parse_listen(address)
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise EcgEdgeError(f"cannot listen on {address} ({exc.strerror or exc}); choose another --listen or stop what uses it.") from None


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _open_events(root: Path, events: str | None, version: str, started: float) -> tuple[IO[str], str]:
    if events == "-":
        sys.stdout.reconfigure(line_buffering=True)
        return sys.stdout, "-"
    path = Path(events) if events else Path(root) / EVENTS_DIR / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(started))}-{version}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "a", encoding="utf-8", buffering=1), str(path)


def serve(root: Path, *, listen: str | None = None, use_stdin: bool = False, events: str | None = None, model: str | None = None,
          threads: int | None = None, health_interval_s: float = INTERVAL_S, log: Log = _stderr) -> None:  # fmt: skip
    """Run the service until SIGTERM / SIGINT (or the end of stdin when it listens on nothing else)."""
    address = listen or (None if use_stdin else DEFAULT_LISTEN)
    if address:
        parse_listen(address)
    if health_interval_s <= 0:
        raise EcgEdgeError(f"--health-interval {health_interval_s}: must be positive.")
    started = time.time()
    loaded = load_current(root, model, threads)
    log(f"{loaded.version}: {loaded.file} SHA-256 checked, golden vectors passed ({loaded.self_test.n} beats) in {time.time() - started:.2f} s")
    listener = bind(address) if address else None
    try:
        handle, name = _open_events(root, events, loaded.version, started)
    except BaseException:
        if listener is not None:
            listener.close()
        raise
    service = Service(root, loaded, handle, name, listener=listener, use_stdin=use_stdin, health_interval_s=health_interval_s, log=log)
    try:
        asyncio.run(service.run())
    finally:
        if handle is not sys.stdout:
            handle.close()
