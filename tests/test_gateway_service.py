"""The gateway service (`python -m ecgedge.firmware_host serve`), its health check, its systemd unit,
and `ecgedge deploy` driving it.

Real processes on a real installed gateway directory (the tiny export of deploy_fixtures, record
100 of MIT-BIH): the service is started as a subprocess on a free loopback port, fed over TCP and
stdin, stopped with SIGTERM. systemd is stood in for by SYSTEMCTL (start in the background, wait
for the service's READY=1 on $NOTIFY_SOCKET as systemd does for a Type=notify unit). Deadlines
below only stop a hung test; nothing asserts a duration.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("cryptography")

from conftest import run_cli  # noqa: E402
from deploy_fixtures import gateway_root, keypair, tiny_export  # noqa: E402
from ecgedge.atomic import sha256_file  # noqa: E402
from ecgedge.data.records import read_record  # noqa: E402
from ecgedge.deploy.bundle import build_bundle, pack_bundle, stage_bundle  # noqa: E402
from ecgedge.firmware_host.install import install  # noqa: E402
from ecgedge.firmware_host.protocol import ProtocolError, parse_message  # noqa: E402
from ecgedge.firmware_host.runtime import load_runtime  # noqa: E402
from ecgedge.firmware_host.sinks import ListSink  # noqa: E402
from ecgedge.firmware_host.stream import Gateway  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
MODEL = "models/tiny-run-fp32.onnx"
FS = 360
HANG_S = 300  # a service that has not answered by then is hung

SYSTEMCTL = r'''"""stand-in for `systemctl restart` of a Type=notify unit: stop the old process, start the service, wait for READY=1"""
import os, signal, socket, subprocess, sys, time
root, state = sys.argv[1], sys.argv[2]
pidfile, notify = os.path.join(state, "pid"), os.path.join(state, "notify")

def alive(pid):
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False

if os.path.exists(pidfile):
    old = int(open(pidfile).read())
    if alive(old):
        os.kill(old, signal.SIGTERM)
    while alive(old):
        time.sleep(0.05)
if os.path.exists(notify):
    os.unlink(notify)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(notify)
sock.settimeout(0.2)
log = open(os.path.join(state, "log"), "ab")
proc = subprocess.Popen([sys.executable, "-m", "ecgedge.firmware_host", "serve", "--root", root, "--listen", "127.0.0.1:0", "--health-interval", "1"],
                        env={**os.environ, "NOTIFY_SOCKET": notify}, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
open(pidfile, "w").write(str(proc.pid))
while True:
    try:
        if b"READY=1" in sock.recv(4096).split(b"\n"):
            sys.exit(0)
    except socket.timeout:
        if proc.poll() is not None:
            lines = open(os.path.join(state, "log")).read().strip().splitlines()
            sys.exit(f"service exited with status {proc.returncode}: {lines[-1] if lines else ''}")
'''


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def setup(mitdb_dir, tmp_path_factory):
    """Keys, two good bundles, one the service refuses, and a gateway directory with the first installed."""
    d = tmp_path_factory.mktemp("service")
    export = tiny_export(mitdb_dir, tmp_path_factory.getbasetemp())
    pair = keypair(d)
    good = [build_bundle(export, d / f"v{i}.bundle", pair.private, data_dir=mitdb_dir, n_golden=n) for i, n in ((1, 40), (2, 30))]
    root = gateway_root(d / "installed", pair.public)
    install(root, good[0].path)
    return {"pair": pair, "good": good, "broken": _bundle_without_preprocessing(export, d, pair.private, mitdb_dir), "root": root}


def _bundle_without_preprocessing(export: Path, d: Path, key: Path, mitdb_dir: Path) -> Path:
    """A signed bundle whose model lost its preprocessing metadata: it passes install (same outputs), the service cannot run it."""
    import onnx

    staging = d / "staging"
    manifest = stage_bundle(export, staging, data_dir=mitdb_dir, n_golden=20)
    model = onnx.load(str(staging / MODEL))
    for prop in model.metadata_props:
        if prop.key == "ecgedge":
            meta = json.loads(prop.value)
            meta.pop("preprocess")
            prop.value = json.dumps(meta)
    onnx.save(model, str(staging / MODEL))
    return pack_bundle(staging, manifest, key, d / "broken.bundle").path


@pytest.fixture
def root(setup, tmp_path):
    """A private copy of the installed gateway directory (links are relative)."""
    return Path(shutil.copytree(setup["root"], tmp_path / "gateway", symlinks=True))


@pytest.fixture(scope="module")
def ecg(mitdb_dir):
    """Two minutes of record 100 (MLII, millivolts, 360 Hz) as float64, as a sender's JSON carries them."""
    return read_record(mitdb_dir, "100").signal[: 120 * FS].astype(np.float64)


def fh(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ecgedge.firmware_host", *args], capture_output=True, text=True, env=ENV, timeout=HANG_S, **kw)


def start(root: Path, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ecgedge.firmware_host", "serve", "--root", str(root), *args], env=ENV, stderr=subprocess.PIPE, text=True, **kw)


def wait_ready(root: Path, proc: subprocess.Popen) -> dict:
    """The health file once this process wrote it (it has loaded and self-tested its model)."""
    deadline = time.monotonic() + HANG_S
    while time.monotonic() < deadline:
        try:
            h = json.loads((root / "run" / "health.json").read_text())
            if h["pid"] == proc.pid and h["status"] == "running":
                return h
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        if proc.poll() is not None:
            pytest.fail(f"serve exited with {proc.returncode}: {proc.stderr.read()}")
        time.sleep(0.1)
    proc.kill()
    pytest.fail("serve did not become ready")


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=HANG_S)
    return proc.returncode, err


def send(f, msg) -> None:
    f.write((msg if isinstance(msg, bytes) else json.dumps(msg).encode()) + b"\n")


def replies_until_ack(f) -> tuple[list[dict], dict]:
    """Answers on a connection up to the ``ended`` one: (errors before it, the ack)."""
    f.flush()
    errors = []
    while True:
        line = f.readline()
        assert line, "the service closed the connection"
        reply = json.loads(line)
        if reply.get("ended"):
            return errors, reply
        errors.append(reply)


def in_process(root: Path, version: str, streams: list[tuple[str, np.ndarray, bool]]) -> ListSink:
    """The same Gateway over the same samples in this process: (stream, samples, ended by its sender)."""
    sink = ListSink()
    gw = Gateway(load_runtime(root / "versions" / version / MODEL), sink)
    for name, x, ended in streams:
        gw.push(name, x)
        if ended:
            gw.end_stream(name)
    gw.close()
    return sink


def assert_same_events(got: list[dict], ref: ListSink, stream: str) -> int:
    beats = [e for e in got if e["type"] == "beat" and e["stream"] == stream]
    want = ref.beats(stream)
    key = ("sample", "time_s", "class", "model", "padded")
    assert [[e[k] for k in key] for e in beats] == [[e[k] for k in key] for e in want]
    for a, b in zip(beats, want):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-5)  # batch composition differs
    q = ("kind", "start", "end")
    assert [[e[k] for k in q] for e in got if e["type"] == "quality" and e["stream"] == stream] == [[e[k] for k in q] for e in ref.quality(stream)]
    return len(beats)


# --------------------------------------------------------------------------- the service


def test_two_tcp_senders_get_the_events_of_the_in_process_gateway(setup, root, ecg, tmp_path):
    version = setup["good"][0].version
    events = tmp_path / "events.jsonl"
    proc = start(root, "--listen", "127.0.0.1:0", "--events", str(events), "--health-interval", "0.2")
    h = wait_ready(root, proc)
    assert h["version"] == version and h["model"]["file"] == MODEL and h["model"]["sha256"] == sha256_file(root / "versions" / version / MODEL)
    assert h["self_test"]["passed"] and h["self_test"]["n"] == 40 and h["fs"] == FS
    host, port = h["listen"].rsplit(":", 1)
    a_x, b_x = ecg[: 60 * FS], ecg[60 * FS :]
    try:
        ca, cb = (socket.create_connection((host, int(port)), timeout=HANG_S) for _ in range(2))
        fa, fb = ca.makefile("rwb"), cb.makefile("rwb")
        a_chunks = [a_x[i : i + 360] for i in range(0, len(a_x), 360)]
        b_chunks = [b_x[i : i + 500] for i in range(0, len(b_x), 500)]
        for c in a_chunks[:10]:
            send(fa, {"stream": "a", "samples": c.tolist()})
        send(fa, b"not json")
        send(fa, {"stream": "a", "samples": [0.1] * 10, "fs": 250})
        send(fa, {"stream": "a", "samples": [0.1, "0.2"]})
        send(fa, {"stream": "barrier", "end": True})  # answered after everything before it on this connection
        errors, ack = replies_until_ack(fa)
        assert [e["error"][:12] for e in errors] == ["not JSON (Ex", "fs 250 Hz, b", "'samples' ho"] and ack["beats"] == 0
        send(fb, {"stream": "a", "samples": [0.0]})  # stream a belongs to the other connection
        send(fb, {"stream": "barrier-b", "end": True})
        errors, _ = replies_until_ack(fb)
        assert len(errors) == 1 and "is being sent by tcp 127.0.0.1:" in errors[0]["error"]
        for i in range(max(len(a_chunks), len(b_chunks))):  # both senders at once
            if 10 <= i < len(a_chunks):
                send(fa, {"stream": "a", "samples": a_chunks[i].tolist(), "fs": FS})
            if i < len(b_chunks):
                send(fb, {"stream": "b", "samples": b_chunks[i].tolist()})
        send(fa, {"stream": "a", "end": True})
        _, ack_a = replies_until_ack(fa)
        send(fb, {"stream": "barrier-b", "end": True})  # b stays open: the shutdown must classify its last beats
        replies_until_ack(fb)

        with socket.create_connection((host, int(port)), timeout=HANG_S) as cc:  # a line over the limit drops only that connection
            try:
                cc.sendall(b"[" * (1 << 20) + b"0")
                dropped = cc.recv(100) == b""
            except ConnectionError:
                dropped = True
            assert dropped

        ok = fh("health", "--root", str(root), "--version", version)
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["pid"] == proc.pid
        wrong = fh("health", "--root", str(root), "--version", "not-this-one")
        assert wrong.returncode == 2 and wrong.stderr.strip().splitlines() == [f"error: the gateway service runs {version}, not not-this-one."]
    finally:
        rc, err = stop(proc)
    assert rc == 0, err
    assert len([ln for ln in err.splitlines() if ln.startswith("refused a message") or "longer than" in ln]) == 5, err
    after = fh("health", "--root", str(root))
    assert after.returncode == 2 and "error: the gateway service is stopped" in after.stderr

    got = [json.loads(line) for line in events.read_text().splitlines()]
    ref = in_process(root, version, [("a", a_x, True), ("b", b_x, False)])
    n_a, n_b = assert_same_events(got, ref, "a"), assert_same_events(got, ref, "b")
    assert ack_a["beats"] == n_a > 60 and n_b > 60
    assert {e["stream"] for e in got} == {"a", "b"}
    assert len({e["class"] for e in got if e["type"] == "beat"}) > 1  # the tiny model is not constant


def test_stdin_to_stdout_is_the_same_service(setup, root, ecg):
    version = setup["good"][0].version
    x = ecg[: 30 * FS]
    lines = [json.dumps({"stream": "s", "samples": x[i : i + 1000].tolist()}) for i in range(0, len(x), 1000)]
    lines.insert(5, '{"stream": "s", "samples": [NaN]}')
    res = fh("serve", "--root", str(root), "--stdin", "--events", "-", input="\n".join(lines) + "\n")
    assert res.returncode == 0, res.stderr
    assert "refused a message from stdin: NaN is not JSON" in res.stderr
    n = assert_same_events([json.loads(line) for line in res.stdout.splitlines()], in_process(root, version, [("s", x, True)]), "s")
    assert n > 25
    assert json.loads((root / "run" / "health.json").read_text())["status"] == "stopped"


def test_a_damaged_model_file_is_refused_at_start(setup, root):
    model = root / "versions" / setup["good"][0].version / MODEL
    model.chmod(0o644)
    data = bytearray(model.read_bytes())
    data[-1] ^= 1
    model.write_bytes(bytes(data))
    res = fh("serve", "--root", str(root), "--stdin", stdin=subprocess.DEVNULL)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [res.stderr.strip()] and "does not match its SHA-256 in the manifest" in res.stderr
    assert not (root / "run").exists() and not (root / "events").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--listen", "localhost"], "expected HOST:PORT"),
        (["--model", "other.tflite"], "holds no such model file; it has tiny-run-fp32.onnx"),
        (["--health-interval", "0"], "must be positive"),
    ],
)
def test_bad_serve_options_are_one_line(root, args, message):
    res = fh("serve", "--root", str(root), *args, stdin=subprocess.DEVNULL)
    assert res.returncode == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_health_without_a_service(root):
    res = fh("health", "--root", str(root))
    assert res.returncode == 2 and "health.json does not exist: the gateway service has not started" in res.stderr


@pytest.mark.parametrize(
    "line, problem",
    [
        ('{"stream": "", "samples": [1]}', "'stream' must be a name"),
        ('{"stream": "x", "samples": [true]}', "'samples' holds true"),
        ('{"stream": "x", "samples": 3}', "'samples' must be a list"),
        ('{"stream": "x", "end": false}', "an end message is"),
        ('{"stream": "x", "samples": [1], "fs": 360.5}', "fs 360.5 Hz, but the model takes 360 Hz"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_protocol_refusals(line, problem):
    with pytest.raises(ProtocolError, match=problem.replace("(", r"\(")):
        parse_message(line, FS)


def test_protocol_accepts_null_as_a_missing_sample():
    msg = parse_message(b'{"stream": "x", "samples": [0.5, null, -1], "fs": 360, "seq": 7}', FS)
    assert msg.stream == "x" and np.array_equal(msg.samples, [0.5, np.nan, -1.0], equal_nan=True)


def test_unit_file(root):
    res = fh("unit", "--root", str(root), "--python", sys.executable, "--listen", "0.0.0.0:9400")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    for expected in (
        "After=network.target",
        "Type=notify",
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        f"WorkingDirectory={root}",
        f"ExecStart={sys.executable} -m ecgedge.firmware_host serve --root {root} --listen 0.0.0.0:9400",
        f"User={Path(root).owner()}",
        "WantedBy=multi-user.target",
    ):
        assert expected in lines
    if shutil.which("systemd-analyze"):
        unit = root / "ecgedge-gateway.service"
        unit.write_text(res.stdout)
        check = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120)
        assert str(unit) not in check.stderr, check.stderr  # systemd names the file in every complaint about it
    bad = fh("unit", "--root", str(root), "--python", "python3")
    assert bad.returncode == 2 and "absolute path" in bad.stderr


# --------------------------------------------------------------------------- ecgedge deploy with the service


@pytest.fixture
def systemd(tmp_path):
    """The stand-in's state directory and --restart-cmd; the service it started is stopped afterwards."""
    state = tmp_path / "systemd"
    state.mkdir()
    script = tmp_path / "systemctl.py"
    script.write_text(SYSTEMCTL)
    yield state, f"{{python}} {script} {{root}} {state}"
    if (state / "pid").exists():
        pid = int((state / "pid").read_text())
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + HANG_S
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for a parent that is not us)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _health(root: Path) -> dict:
    return json.loads((root / "run" / "health.json").read_text())


def test_deploy_restarts_the_service_onto_the_new_version_and_rolls_back_when_it_cannot(setup, systemd, tmp_path):
    state, restart = systemd
    v1, v2 = (b.version for b in setup["good"])
    root = gateway_root(tmp_path / "gw", setup["pair"].public)
    target = ["--target", f"local:{root}", "--restart-cmd", restart, "--health-timeout", "120"]

    first = run_cli("deploy", str(setup["good"][0].path), *target)  # the default health check
    assert first.returncode == 0, first.stderr
    assert _health(root)["version"] == v1 and _health(root)["pid"] == int((state / "pid").read_text())
    second = run_cli("deploy", str(setup["good"][1].path), *target)
    assert second.returncode == 0, second.stderr
    pid2 = int((state / "pid").read_text())
    assert _health(root)["version"] == v2 and _health(root)["pid"] == pid2
    assert fh("health", "--root", str(root), "--version", v2).returncode == 0

    # a version the service refuses to start: systemctl restart fails, the deploy goes back to v2
    broken = run_cli("deploy", str(setup["broken"]), *target)
    assert broken.returncode == 2
    assert "restart command failed" in broken.stderr and "carries no preprocessing metadata" in broken.stderr
    assert f"rolled back to {v2}, its service is healthy again" in broken.stderr
    assert os.readlink(root / "current") == f"versions/{v2}" and sorted(os.listdir(root / "versions")) == sorted([v1, v2])
    assert _health(root)["version"] == v2 and _health(root)["pid"] != pid2
    assert fh("health", "--root", str(root), "--version", v2).returncode == 0

    # a restart that does not take (the old process keeps running v2): `systemctl is-active` would
    # pass, the default health check sees the old version and the deploy is undone
    stuck = run_cli("deploy", str(setup["good"][0].path), "--target", f"local:{root}", "--restart-cmd", "true", "--health-timeout", "1")
    assert stuck.returncode == 2
    assert f"runs {v2}, but current is {v1}" in stuck.stderr and f"rolled back to {v2}, its service is healthy again" in stuck.stderr
    assert os.readlink(root / "current") == f"versions/{v2}" and os.readlink(root / "previous") == f"versions/{v1}"
