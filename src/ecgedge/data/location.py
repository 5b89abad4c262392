"""Where MIT-BIH lives: ``--data-dir`` > ``$ECGEDGE_DATA_DIR`` > the user cache directory."""

import os
from pathlib import Path

import platformdirs

ENV_DATA_DIR = "ECGEDGE_DATA_DIR"
ENV_CACHE_DIR = "ECGEDGE_CACHE_DIR"


def default_data_dir() -> Path:
    """The per-user directory that ``ecgedge data download`` fills when nothing else is given."""
    return Path(platformdirs.user_cache_dir("ecgedge")) / "mitdb"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The MIT-BIH directory to use, by precedence: argument, environment, user cache."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env).expanduser()
    return default_data_dir()


def cache_dir() -> Path:
    """Root of derived artifacts (prepared spectrogram datasets); ``$ECGEDGE_CACHE_DIR`` overrides."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("ecgedge"))
