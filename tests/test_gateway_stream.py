"""The streaming gateway: chunking invariance, the same features and images as training's functions,
signal-quality stretches, WFDB annotation round trip, and the `ecgedge ec57` command."""

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from conftest import run_cli  # noqa: E402
from ecgedge.data.records import read_record  # noqa: E402
from ecgedge.evaluate.annotations import read_beat_annotations, write_beat_annotations  # noqa: E402
from ecgedge.evaluate.ec57 import match_beats  # noqa: E402
from ecgedge.evaluate.ec57_classes import class_counts  # noqa: E402
from ecgedge.firmware_host.beats import BeatCutter, hold_nan  # noqa: E402
from ecgedge.firmware_host.filters import highpass  # noqa: E402
from ecgedge.firmware_host.sinks import JsonLinesSink, ListSink  # noqa: E402
from ecgedge.firmware_host.stream import Gateway  # noqa: E402
from ecgedge.preprocess import beats_to_images, get_preset  # noqa: E402
from ecgedge.preprocess.rhythm import rhythm_features  # noqa: E402
from ecgedge.firmware_host.runtime import load_runtime  # noqa: E402
from gateway_model import build_tiny_onnx  # noqa: E402
from tiny_models import registered_tiny_arch  # noqa: E402

PRE = get_preset("edge")
FS = PRE.fs
SECONDS = 90  # of record 119 (frequent PVCs): enough beats, fast


@pytest.fixture(scope="module")
def model_path(mitdb_dir, tmp_path_factory):
    pytest.importorskip("torch")
    with registered_tiny_arch("test_tiny_gateway", width=8) as name:
        return build_tiny_onnx(mitdb_dir, tmp_path_factory.mktemp("gw-model"), name)


@pytest.fixture(scope="module")
def runtime(model_path):
    return load_runtime(model_path)


@pytest.fixture(scope="module")
def signal(mitdb_dir):
    return read_record(mitdb_dir, "119").signal[: SECONDS * FS].astype(np.float64)


def _stream(runtime, x, chunks, **kw) -> ListSink:
    sink = ListSink()
    gw = Gateway(runtime, sink, **kw)
    pos = 0
    for n in chunks:
        gw.push("p1", x[pos : pos + n])
        pos += n
    assert pos >= len(x)
    gw.close()
    return sink


def _random_chunks(n_total, rng, hi):
    sizes = []
    while sum(sizes) < n_total:
        sizes.append(int(rng.integers(1, hi)))
    return sizes


def test_any_chunking_gives_the_same_events(runtime, signal):
    rng = np.random.default_rng(0)
    whole = _stream(runtime, signal, [len(signal)])
    runs = [_stream(runtime, signal, _random_chunks(len(signal), rng, hi)) for hi in (50, 2000)]
    runs.append(_stream(runtime, signal, [360] * (len(signal) // 360 + 1), batch_size=7, max_wait_s=0.0))
    ref = whole.beats()
    assert len(ref) > 80
    assert len({e["class"] for e in ref}) > 1  # the tiny model is not constant: classes can differ
    for sink in runs:
        got = sink.beats()
        assert [e["sample"] for e in got] == [e["sample"] for e in ref]
        assert [e["class"] for e in got] == [e["class"] for e in ref]
        for a, b in zip(got, ref):
            for c in a["probabilities"]:
                assert a["probabilities"][c] == pytest.approx(b["probabilities"][c], abs=1e-5)


def _cut_all(x, chunk=500):
    cutter = BeatCutter("p", PRE)
    beats = []
    for s in range(0, len(x), chunk):
        beats += cutter.feed(x[s : s + chunk])[0]
    beats += cutter.finish()[0]
    return beats


def test_rhythm_features_and_images_equal_the_training_functions(signal):
    beats = _cut_all(signal)
    peaks = np.array([b.sample for b in beats])
    # rhythm: the batch function on the same detected peaks
    np.testing.assert_array_equal(np.stack([b.rr for b in beats]), rhythm_features(peaks, FS))
    # windows: the causally filtered record cut at the same peaks (whole-record causal filter)
    filt = highpass(FS, PRE.highpass_hz, PRE.highpass_order)(signal).astype(np.float32)
    inside = [b for b in beats if not b.padded]
    assert len(inside) >= len(beats) - 2
    idx = np.array([b.sample for b in inside])[:, None] - PRE.window.before + np.arange(PRE.window.length)
    np.testing.assert_array_equal(np.stack([b.window for b in inside]), filt[idx])
    # images: the training function, one beat at a time or all at once
    images = beats_to_images(filt[idx], PRE)
    one_by_one = np.concatenate([beats_to_images(b.window[None], PRE) for b in inside])
    np.testing.assert_array_equal(one_by_one, images)


def test_rhythm_history_is_bounded_and_still_exact(mitdb_dir):
    """Over a whole 30-min record the kept peaks stay bounded and features equal the batch function."""
    x = read_record(mitdb_dir, "100").signal.astype(np.float64)
    cutter = BeatCutter("p", PRE)
    beats, longest = [], 0
    for s in range(0, len(x), 3600):
        beats += cutter.feed(x[s : s + 3600])[0]
        longest = max(longest, len(cutter._peaks))
    beats += cutter.finish()[0]
    peaks = np.array([b.sample for b in beats])
    assert longest < 0.3 * len(peaks)  # 5 min of a 30-min record, plus a few
    rr = np.stack([b.rr for b in beats])
    np.testing.assert_allclose(rr, rhythm_features(peaks, FS), rtol=1e-6)
    assert np.mean(rr == rhythm_features(peaks, FS)) > 0.999


def test_bad_stretches_are_marked_and_the_stream_goes_on(runtime, signal):
    x = signal.copy()
    flat, sat, nan = (20 * FS, 23 * FS), (40 * FS, 41 * FS), (60 * FS, 62 * FS)
    x[flat[0] : flat[1]] = x[flat[0]]
    x[sat[0] : sat[1]] = 5.12
    x[nan[0] : nan[1]] = np.nan
    sink = _stream(runtime, x, [1000] * (len(x) // 1000 + 1))
    kinds = {(q["kind"], q["start"], q["end"]) for q in sink.quality()}
    other = _stream(runtime, x, _random_chunks(len(x), np.random.default_rng(3), 700))
    assert sorted(kinds) == sorted((q["kind"], q["start"], q["end"]) for q in other.quality())
    assert [e["sample"] for e in other.beats()] == [e["sample"] for e in sink.beats()]
    assert ("saturated", *sat) in kinds and ("nan", *nan) in kinds
    assert any(k == "flat" and abs(s - flat[0]) <= 1 and e == flat[1] for k, s, e in kinds)
    beats = sink.beats()
    times = np.array([e["time_s"] for e in beats])
    for a, b in (flat, sat, nan):  # beats on both sides of every stretch, none inside it
        assert np.any((times > a / FS - 5) & (times < a / FS)) and np.any((times > b / FS) & (times < b / FS + 5))
        assert not np.any((times > a / FS + 0.1) & (times < b / FS - 0.1))
    for e in beats:
        assert all(np.isfinite(v) for v in e["probabilities"].values())
    assert times[-1] > SECONDS - 3


def test_hold_nan():
    x = np.array([np.nan, 1.0, np.nan, np.nan, 3.0])
    filled, last = hold_nan(x, 7.0)
    assert filled.tolist() == [7.0, 1.0, 1.0, 1.0, 3.0] and last == 3.0


def test_json_lines_sink(tmp_path, runtime, signal):
    path = tmp_path / "events.jsonl"
    gw = Gateway(runtime, JsonLinesSink(path))
    gw.push("a", signal[: 20 * FS])
    gw.push("b", signal[20 * FS : 40 * FS])
    gw.close()
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert {e["stream"] for e in events} == {"a", "b"}
    e = events[0]
    assert set(e) >= {"type", "stream", "sample", "time_s", "class", "probabilities", "model"}
    assert e["model"].startswith(runtime.path.name + "@") and sum(e["probabilities"].values()) == pytest.approx(1, abs=1e-4)


def test_micro_batching_bounds_the_wait(runtime, signal):
    """With many streams a batch fills; with one, a beat waits at most max_wait plus one chunk."""
    sink = ListSink()
    gw = Gateway(runtime, sink, batch_size=1000, max_wait_s=0.3)
    for s in range(0, len(signal), 36):
        gw.push("one", signal[s : s + 36])
    gw.close()
    lat = np.array([e["latency_s"] for e in sink.beats()[:-2]])
    # ready = next R peak found (<= 2 RR + detector latency) and window complete; plus 0.3 s + 0.1 s chunk
    assert lat.max() < 0.3 + 0.1 + 0.75 + 3.5
    assert gw.stats["batches"] > len(lat) / 5  # it did not wait for 1000 beats


def test_annotations_round_trip(tmp_path):
    samples = np.array([10, 400, 750, 1200, 99000])
    symbols = ["N", "A", "V", "F", "Q"]
    write_beat_annotations("900", samples, tmp_path, FS, symbols, extension="ecg")
    s, sym = read_beat_annotations(tmp_path / "900", "ecg")
    assert s.tolist() == samples.tolist() and sym.tolist() == symbols


def test_veb_sveb_rules():
    T5 = int(300 * FS)
    ref = np.array([T5 + 100, T5 + 500, T5 + 900, T5 + 1300, T5 + 1700, T5 + 2100])
    ref_sym = np.array(["V", "F", "N", "A", "Q", "V"])
    det = np.array([T5 + 102, T5 + 498, T5 + 905, T5 + 1300, T5 + 1702, T5 + 3000])
    det_lab = np.array([2, 2, 2, 1, 2, 2])  # V V V S V V (last one matches nothing)
    m = match_beats(ref, det, FS)
    c = class_counts("x", ref, ref_sym, det, det_lab, m, FS)
    veb, sveb = c["veb"], c["sveb"]
    # V: ref V detected V (tp); ref V missed (fn); F called V: not a FP; N called V: FP; Q called V: not scored; extra V: FP
    assert (veb.tp, veb.fn, veb.fp) == (1, 1, 2)
    assert (veb.negatives, veb.fp_negatives) == (2, 1)  # matched N and S
    assert (sveb.tp, sveb.fn, sveb.fp) == (1, 0, 0)


@pytest.mark.slow
def test_ec57_cli_writes_annotations_and_json(model_path, mitdb_dir, tmp_path):
    out = tmp_path / "ec57"
    r = run_cli("ec57", str(model_path), "--records", "100,119", "-o", str(out), "--data-dir", str(mitdb_dir), "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["qrs"]["gross"]["se"] > 0.99
    result = json.loads((out / "ec57.json").read_text())
    assert set(result["per_record"]) == {"100", "119"}
    for key in ("four_class", "ec57", "per_class", "confusion"):
        assert key in result["classes"]
    assert (out / "report.md").read_text().startswith("# EC57")
    import wfdb

    ann = wfdb.rdann(str(out / "100"), "ecg")
    assert len(ann.sample) == result["per_record"]["100"]["detections"]
    assert set(ann.symbol) <= {"N", "A", "V", "F", "Q"}
    # the QRS counts are the detector's own: the gateway loses and adds no beat
    assert result["per_record"]["100"]["qrs"]["tp"] + result["per_record"]["100"]["qrs"]["fn"] == 1902


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--records", "999"], "unknown record"),
        (["--records", "100", "--data-dir", "/nonexistent/mitdb"], "does not exist"),
    ],
)
def test_ec57_cli_bad_input(model_path, tmp_path, args, needle, mitdb_dir):
    r = run_cli("ec57", str(model_path), "-o", str(tmp_path / "o"), *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_ec57_cli_missing_model(tmp_path, mitdb_dir):
    r = run_cli("ec57", str(tmp_path / "nope.onnx"), "--records", "100", "-o", str(tmp_path / "o"), "--data-dir", str(mitdb_dir))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "not found" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_gateway_imports_neither_torch_nor_wfdb():
    import subprocess
    import sys

    code = "import sys, ecgedge.firmware_host.stream, ecgedge.firmware_host.beats; print('torch' in sys.modules, 'wfdb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
