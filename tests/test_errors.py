"""Bad input: one line naming the file and what to do, non-zero exit, no traceback, nothing half-written."""

import pytest

from conftest import run_cli


def assert_user_error(res, *needles):
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    for needle in needles:
        assert needle in res.stderr, (needle, res.stderr)


def test_missing_data_dir(tmp_path):
    missing = tmp_path / "nowhere"
    res = run_cli("data", "summary", "--data-dir", str(missing), "--json")
    assert_user_error(res, str(missing), "ecgedge data download")
    assert res.stdout == ""


def test_missing_record_file(mitdb_copy):
    d = mitdb_copy()
    (d / "101.dat").unlink()
    res = run_cli("data", "summary", "--data-dir", str(d), "--records", "100,101")
    assert_user_error(res, "101.dat", "missing", "ecgedge data download")


def test_truncated_dat(mitdb_copy, tmp_path):
    d = mitdb_copy(with_sums=False)
    data = (d / "100.dat").read_bytes()
    (d / "100.dat").write_bytes(data[: len(data) // 2])
    cache = tmp_path / "cache"
    res = run_cli("data", "prepare", "--data-dir", str(d), "--records", "100,101", env={"ECGEDGE_CACHE_DIR": str(cache)})
    assert_user_error(res, "100.dat", "truncated", f"{len(data) // 2} of {len(data)} bytes")
    assert not (cache / "prepared").exists() or not any((cache / "prepared").iterdir())


def test_corrupt_header(mitdb_copy):
    d = mitdb_copy(with_sums=False)
    (d / "101.hea").write_text("101 2 three-hundred-sixty 650000\r\ngarbage\r\n")
    res = run_cli("data", "summary", "--data-dir", str(d), "--records", "100,101")
    assert_user_error(res, "101.hea", "could not be parsed")


def test_checksum_mismatch_stops_prepare(mitdb_copy, tmp_path):
    d = mitdb_copy()
    raw = bytearray((d / "100.atr").read_bytes())
    raw[100] ^= 0xFF
    (d / "100.atr").write_bytes(raw)
    cache = tmp_path / "cache"
    res = run_cli("data", "prepare", "--data-dir", str(d), "--records", "100,101", env={"ECGEDGE_CACHE_DIR": str(cache)})
    assert_user_error(res, "100.atr", "checksum mismatch", "ecgedge data download")
    assert not (cache / "prepared").exists() or not any((cache / "prepared").iterdir())


def test_verify_names_each_bad_file(mitdb_copy):
    d = mitdb_copy()
    raw = bytearray((d / "101.dat").read_bytes())
    raw[0] ^= 0x01
    (d / "101.dat").write_bytes(raw)
    res = run_cli("data", "verify", "--data-dir", str(d))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "101.dat: checksum mismatch" in res.stderr
    # Files of records that were not copied are reported missing, by name.
    assert "234.dat: missing" in res.stderr
    assert "100.dat" not in res.stderr


def test_verify_passes_on_the_real_database(mitdb_dir):
    res = run_cli("data", "verify", "--data-dir", str(mitdb_dir))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("OK: ")


@pytest.mark.parametrize("command", ["summary", "prepare"])
def test_unknown_record(mitdb_dir, command):
    res = run_cli("data", command, "--data-dir", str(mitdb_dir), "--records", "100,999")
    assert_user_error(res, "unknown record(s) 999")


def test_unknown_preset(mitdb_dir):
    res = run_cli("data", "summary", "--data-dir", str(mitdb_dir), "--preset", "huge")
    assert_user_error(res, "unknown preset 'huge'", "edge")
