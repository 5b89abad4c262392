"""Raspberry-Pi-class device profiles, and whether a model's measured peak memory fits one.

A gateway process shares the board's RAM with the firmware's GPU split and the operating system,
so a profile's budget is its RAM minus :data:`RESERVED_MB`: 64 MB of GPU memory (the default split
on the 512 MB and 1 GB boards) plus about 128 MB that Raspberry Pi OS Lite (bookworm) uses idle
with its services and a little page cache. What is left is what the gateway's Python process may
reach at its peak; the check compares the target's measured high-water resident set with it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ecgedge.errors import EcgEdgeError

__all__ = ["DeviceProfile", "PROFILES", "RESERVED_MB", "get_profile", "memory_fit"]

RESERVED_MB = 64 + 128
MB = 1024 * 1024


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    board: str
    cpu: str  # the QEMU_CPU that emulates it (qemu-aarch64:CPU)
    ram_mb: int

    @property
    def budget_mb(self) -> int:
        return self.ram_mb - RESERVED_MB

    def as_dict(self) -> dict:
        return {**asdict(self), "budget_mb": self.budget_mb}


# The smallest RAM each board is sold with: a model that fits there fits every variant.
PROFILES = {
    p.name: p
    for p in (
        DeviceProfile("pi-zero-2w", "Raspberry Pi Zero 2 W", "cortex-a53", 512),
        DeviceProfile("pi3", "Raspberry Pi 3 Model B/B+", "cortex-a53", 1024),
        DeviceProfile("pi4", "Raspberry Pi 4 Model B (1 GB)", "cortex-a72", 1024),
        DeviceProfile("pi5", "Raspberry Pi 5 (2 GB)", "cortex-a76", 2048),
    )
}


def get_profile(name: str) -> DeviceProfile:
    try:
        return PROFILES[name]
    except KeyError:
        listed = ", ".join(f"{p.name} ({p.ram_mb} MB)" for p in PROFILES.values())
        raise EcgEdgeError(f"unknown device profile {name!r}; choose one of {listed}.") from None


def memory_fit(profile: DeviceProfile, peak_bytes: int, measured_on: str) -> dict:
    """The verdict for one measured peak: budget, peak and whether it fits (JSON-ready)."""
    peak_mb = peak_bytes / MB
    return {
        **profile.as_dict(),
        "peak_mb": round(peak_mb, 1),
        "measured_on": measured_on,
        "fits": peak_mb <= profile.budget_mb,
    }
