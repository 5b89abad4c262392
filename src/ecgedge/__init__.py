"""ecgedge: ECG heartbeat classification from MIT-BIH to a Pi-class gateway."""

__version__ = "0.1.0"
