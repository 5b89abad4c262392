"""Shared fixtures: the real MIT-BIH copy in ../shared/data/mitdb and an isolated cache."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MITDB = Path(os.environ.get("ECGEDGE_TEST_MITDB", REPO.parent / "shared" / "data" / "mitdb"))


@pytest.fixture(scope="session")
def mitdb_dir() -> Path:
    if not (MITDB / "100.hea").is_file():
        pytest.skip(f"MIT-BIH not found at {MITDB} (set ECGEDGE_TEST_MITDB)")
    return MITDB


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Keep prepared datasets of the tests out of the user's cache."""
    old = os.environ.get("ECGEDGE_CACHE_DIR")
    os.environ["ECGEDGE_CACHE_DIR"] = str(tmp_path_factory.mktemp("ecgedge-cache"))
    yield
    if old is None:
        os.environ.pop("ECGEDGE_CACHE_DIR", None)
    else:
        os.environ["ECGEDGE_CACHE_DIR"] = old


@pytest.fixture
def mitdb_copy(mitdb_dir, tmp_path):
    """A writable copy of a few records (plus SHA256SUMS.txt) to damage in tests."""

    def make(records=("100", "101"), with_sums=True) -> Path:
        dest = tmp_path / "mitdb"
        dest.mkdir(exist_ok=True)
        for rec in records:
            for suffix in (".hea", ".dat", ".atr"):
                shutil.copy(mitdb_dir / f"{rec}{suffix}", dest)
        if with_sums:
            shutil.copy(mitdb_dir / "SHA256SUMS.txt", dest)
        return dest

    return make


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed ``ecgedge`` command as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "ecgedge", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


@pytest.fixture
def synthetic_mitdb(tmp_path):
    """A MIT-BIH-like WFDB directory of synthetic records (see tests/synthetic_wfdb.py)."""
    from synthetic_wfdb import write_database

    def make(records=("101", "106"), n_beats: int = 300) -> Path:
        return write_database(tmp_path / "synthetic-mitdb", tuple(records), n_beats)

    return make
