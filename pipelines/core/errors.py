"""Errors raised for bad input. Each names the record (or file) and the problem."""
from __future__ import annotations


class DataError(ValueError):
    """Input data is missing, corrupt or unusable.

    Parameters
    ----------
    where : str
        The record name or file path at fault, e.g. ``"mitdb/100"`` or ``"100.dat"``.
    problem : str
        What is wrong, in words a user can act on.
    """

    def __init__(self, where: str, problem: str):
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


class ChecksumError(DataError):
    """A file's SHA-256 differs from the pinned value."""


class ConfigError(ValueError):
    """``params.yaml`` holds a value that cannot work (unknown engine, empty class ...)."""
