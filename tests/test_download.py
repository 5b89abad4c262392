"""`ecgedge data download`: the transfer is wfdb's; what follows it (the SHA-256 check) is ours."""

import shutil

import pytest

from ecgedge.data.download import download
from ecgedge.errors import DataError


def _serve_from(src, corrupt=None):
    """A stand-in for PhysioNet that serves the files of ``src`` (no network in tests)."""

    def fetch(dest):
        for path in src.iterdir():
            shutil.copy(path, dest)
        if corrupt:
            (dest / corrupt).write_bytes(b"not the file")

    return fetch


def test_download_checks_every_file(mitdb_dir, tmp_path):
    assert download(tmp_path / "db", fetch=_serve_from(mitdb_dir)) == 48 * 3  # every .hea, .dat and .atr in SHA256SUMS.txt


def test_download_rejects_a_corrupt_transfer(mitdb_dir, tmp_path):
    with pytest.raises(DataError, match="117.atr: checksum mismatch"):
        download(tmp_path / "db", fetch=_serve_from(mitdb_dir, corrupt="117.atr"))


def test_download_failure_is_one_clear_line(tmp_path):
    def offline(dest):
        raise ConnectionError("Name or service not known")

    with pytest.raises(DataError, match="download of mitdb from PhysioNet .* failed .*check the network"):
        download(tmp_path / "db", fetch=offline)
