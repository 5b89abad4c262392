"""Run reports: Markdown with PNGs (and optionally one self-contained HTML page), for one or more models."""

from ecgedge.report.document import load_run, write_report

__all__ = ["load_run", "write_report"]
