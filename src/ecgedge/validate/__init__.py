"""Scoring model files (exported ``.onnx`` / ``.tflite`` files, checkpoints, run directories) on a set.

Sits on top, beside ``report`` and ``cli``: it runs the gateway's runtimes
(:mod:`ecgedge.firmware_host`) and, for the float reference, the torch one
(:mod:`ecgedge.models.torch_runtime`). Import :mod:`.scoring` directly.
"""
