"""Typed errors raised by core; pages turn each into one clear message."""
from __future__ import annotations


class StudioError(Exception):
    """Base of every error core raises on purpose. str(e) is a user-facing message."""


class ConfigError(StudioError):
    """A setting has a bad value; the message names the variable and what it accepts."""


class InvalidInput(StudioError):
    """Prediction or form input that cannot be used."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class MissingFeature(InvalidInput):
    pass


class InputNotNumeric(InvalidInput):
    pass


class InputOutOfRange(InvalidInput):
    pass


class UnknownModel(StudioError):
    pass


class ModelUnavailable(StudioError):
    """No model (not even a fallback) can answer right now."""


class ArtifactsMissing(StudioError):
    """A registered version's artifacts are gone or unreadable."""


class TrainingFailed(StudioError):
    pass


class RateLimited(StudioError):
    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class AuthError(StudioError):
    """Login, user-store and role errors."""


class PermissionDenied(AuthError):
    pass


class PruneError(StudioError):
    pass
