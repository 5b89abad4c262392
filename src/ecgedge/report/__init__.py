"""Run reports: a self-contained HTML page and a Markdown file with PNGs, for one or more runs."""

from ecgedge.report.html import load_run, write_report

__all__ = ["load_run", "write_report"]
