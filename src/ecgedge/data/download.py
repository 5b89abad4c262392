"""Fetching MIT-BIH from PhysioNet with wfdb, checked against PhysioNet's own SHA-256 sums."""

from pathlib import Path

from ecgedge.data.checksums import SUMS_FILE, FileProblem, check_files, read_sums
from ecgedge.errors import DataError

PHYSIONET_DB = "mitdb"
PHYSIONET_VERSION = "1.0.0"


def _fetch(data_dir: Path) -> None:
    import wfdb

    # Records, annotations, RECORDS and the checksum list; wfdb skips files already present.
    wfdb.dl_database(PHYSIONET_DB, str(data_dir), annotators=["atr"])
    wfdb.dl_files(f"{PHYSIONET_DB}/{PHYSIONET_VERSION}", str(data_dir), [SUMS_FILE, "RECORDS"])


def verify(data_dir: Path) -> tuple[int, list[FileProblem]]:
    """(files checked, problems) for every file named in the directory's ``SHA256SUMS.txt``."""
    if not data_dir.is_dir():
        raise DataError(
            f"{data_dir} does not exist; run `ecgedge data download --data-dir {data_dir}` to fetch MIT-BIH."
        )
    sums = read_sums(data_dir)
    names = sorted(sums)
    return len(names), check_files(data_dir, names, sums)


def download(data_dir: Path, fetch=_fetch) -> int:
    """Download MIT-BIH into ``data_dir`` and verify it; returns the number of files checked.

    ``fetch`` is the transfer step (wfdb from PhysioNet); it is a parameter so the check that
    follows it can be exercised without a network.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fetch(data_dir)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(
            f"download of {PHYSIONET_DB} from PhysioNet into {data_dir} failed ({type(exc).__name__}: {exc}); "
            "check the network, or copy the database there by hand and run `ecgedge data verify`."
        ) from None
    n_files, problems = verify(data_dir)
    if problems:
        raise DataError(
            f"{data_dir}: {len(problems)} file(s) failed the check after download ("
            + "; ".join(map(str, problems[:5]))
            + "); delete them and run `ecgedge data download` again."
        )
    return n_files
