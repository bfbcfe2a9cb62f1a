"""User-facing errors: the CLI prints their message as one line and exits non-zero.

Raise these for bad input (a wrong path, an unsupported file, inconsistent options); let bugs stay
ordinary exceptions so that their tracebacks reach us.
"""

__all__ = ["CheckpointError", "GanfactoryError"]


class GanfactoryError(Exception):
    """Bad input or an unmet requirement, explained in one line that says how to fix it."""


class CheckpointError(GanfactoryError, ValueError):
    """A checkpoint that cannot be read: missing, corrupt, unsupported or unsafe."""
