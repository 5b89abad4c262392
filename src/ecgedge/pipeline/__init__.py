"""The end-to-end job as a Python API: a typed config in, a directory of runs, files and a report out.

    from ecgedge.pipeline import PipelineConfig, run_pipeline
    config = PipelineConfig.load("job.toml")            # or PipelineConfig.preset("quick", epochs=2)
    result = run_pipeline(config, Path("runs/p"))

``ecgedge pipeline`` (and ``./run main``) builds a :class:`PipelineConfig` from its options or
``--config FILE`` and calls :func:`run_pipeline`; a notebook can do the same.
"""

from ecgedge.pipeline.config import BundleOptions, CompressOptions, ExportOptions, PipelineConfig, ReportOptions
from ecgedge.pipeline.job import PipelineResult, check_pipeline, run_pipeline

__all__ = ["BundleOptions", "CompressOptions", "ExportOptions", "PipelineConfig", "PipelineResult", "ReportOptions", "check_pipeline", "run_pipeline"]
