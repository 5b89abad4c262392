"""What machine a target is, as its own Python sees it: architecture, CPU, board, Python and runtime versions.

Standard library only and self-contained: a remote target runs this file's source as
``python -c`` (nothing of ecgedge need be installed there for it), and the host imports it.
A Raspberry Pi's arm64 ``/proc/cpuinfo`` names no CPU model, only its MIDR part number and the
board (``Model``); the part is mapped to its Cortex name as ``lscpu`` does.
"""

import json
import platform
from importlib import metadata

#: ARM MIDR part numbers of the Raspberry-Pi-class cores (Pi 3 / Zero 2 W, Pi 4, Pi 5) and neighbours
ARM_PARTS = {0xD03: "Cortex-A53", 0xD04: "Cortex-A35", 0xD05: "Cortex-A55", 0xD07: "Cortex-A57", 0xD08: "Cortex-A72", 0xD0B: "Cortex-A76"}
#: the distributions whose versions decide a target's outputs
PACKAGES = ("numpy", "scipy", "onnxruntime", "ai-edge-litert", "tflite-runtime")


def machine_facts() -> dict:
    fields = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep:
                    fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    cpu = fields.get("model name")
    if cpu is None and fields.get("CPU implementer") == "0x41":
        try:
            cpu = ARM_PARTS.get(int(fields.get("CPU part", ""), 16))
        except ValueError:
            pass
    packages = []
    for name in PACKAGES:
        try:
            packages.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return {
        "machine": platform.machine(),
        "cpu": cpu or platform.processor() or None,
        "board": fields.get("Model"),
        "python": platform.python_version(),
        "packages": packages,
    }


def source() -> str:
    """This module as a ``python -c`` program printing :func:`machine_facts` as one JSON line."""
    with open(__file__) as fh:
        return fh.read()


if __name__ == "__main__":
    print(json.dumps(machine_facts()))
