"""Errors shared by every layer. Lives in the kernel because the kernel is the bottom layer."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad user input: names the offending field and, where there are any, the allowed values."""

    def __init__(self, field: str, message: str, allowed: object = None) -> None:
        self.field = field
        self.allowed = allowed
        text = f"{field}: {message}"
        if allowed is not None:
            text += f" (allowed: {allowed})"
        super().__init__(text)


class CausalityError(RuntimeError):
    """A message arrived with a time earlier than what its receiver already processed."""


class SimulationAborted(RuntimeError):
    """Another worker failed; this one stops without claiming completion."""
