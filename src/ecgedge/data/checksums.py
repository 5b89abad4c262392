"""SHA-256 checks of a MIT-BIH directory against PhysioNet's ``SHA256SUMS.txt``."""

from dataclasses import dataclass
from pathlib import Path

from ecgedge.atomic import sha256_file
from ecgedge.errors import DataError

SUMS_FILE = "SHA256SUMS.txt"
RECORD_SUFFIXES = (".hea", ".dat", ".atr")


def read_sums(data_dir: Path) -> dict[str, str]:
    """``{file name: sha256}`` from the directory's ``SHA256SUMS.txt``."""
    path = data_dir / SUMS_FILE
    if not path.is_file():
        raise DataError(
            f"{path} is missing, so the data cannot be checked; "
            "run `ecgedge data download --data-dir "
            f"{data_dir}` to fetch it from PhysioNet."
        )
    sums: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise DataError(f"{path}:{lineno} is not a 'sha256  name' line; re-download the file.")
        sums[parts[1].strip().lstrip("*")] = parts[0].lower()
    return sums


@dataclass(frozen=True)
class FileProblem:
    name: str
    problem: str  # "missing" or "checksum mismatch"

    def __str__(self) -> str:
        return f"{self.name}: {self.problem}"


def check_files(data_dir: Path, names: list[str], sums: dict[str, str]) -> list[FileProblem]:
    """Problems with ``names`` in ``data_dir`` (empty when all match ``sums``)."""
    problems = []
    for name in names:
        path = data_dir / name
        if not path.is_file():
            problems.append(FileProblem(name, "missing"))
        elif name in sums and sha256_file(path) != sums[name]:
            problems.append(FileProblem(name, "checksum mismatch"))
    return problems


def record_files(records: list[str]) -> list[str]:
    return [f"{rec}{suffix}" for rec in records for suffix in RECORD_SUFFIXES]
