"""The run-directory names :mod:`ecgedge.train.fit` uses, under their old import path.

They are :mod:`ecgedge.run_dirs`'s, which every other module imports; this module goes once
``fit`` does too.
"""

from ecgedge.run_dirs import BEST, CHECKPOINTS, HISTORY, LAST, write_json

__all__ = ["BEST", "CHECKPOINTS", "HISTORY", "LAST", "write_json"]
