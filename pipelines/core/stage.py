"""One way to run a stage's ``main()``: bad input is one exit code and one line on stderr.

Every command-line entry point (``python -m pipelines.ingest|segment|render|gallery``, ``pipelines.shards
verify``, ``training.train``, ``evaluation.evaluate``) runs its body through :func:`run_stage`:

* success: exit status 0 (or the status the body returns);
* :class:`~pipelines.core.errors.ConfigError` or :class:`~pipelines.core.errors.DataError` (bad params,
  missing, corrupt or unusable data): exit status :data:`BAD_INPUT` (2, like argparse's usage errors)
  and exactly one line ``<stage>: error: <message>`` on stderr, no traceback;
* any other exception is a bug and propagates with its traceback.

"""
from __future__ import annotations

import functools
import sys
from typing import Any, Callable, TextIO

from .errors import ConfigError, DataError

#: Exit status for bad input (params or data).
BAD_INPUT = 2


def error_line(stage: str, exc: BaseException) -> str:
    """The one-line message for a bad-input error: newlines of the message are folded.

    Examples
    --------
    >>> from pipelines.core.errors import DataError
    >>> error_line("render", DataError("beats.parquet", "not found\\n(run segment)"))
    'render: error: beats.parquet: not found (run segment)'
    """
    message = " ".join(str(exc).split())
    return f"{stage}: error: {message}"


def run_stage(stage: str, fn: Callable[[], Any], *, stream: TextIO | None = None) -> int:
    """Call ``fn()``; return its int result (0 for anything else), or :data:`BAD_INPUT` after one error line.

    Parameters
    ----------
    stage : str
        Name printed before ``error:`` (``segment``, ``render`` ...).
    fn : callable
        The stage body, without arguments.
    stream : text stream, optional
        Where the error line goes (stderr by default).

    Examples
    --------
    >>> import io
    >>> from pipelines.core.errors import ConfigError
    >>> def bad():
    ...     raise ConfigError("render.engine: unknown engine 'svg'")
    >>> err = io.StringIO()
    >>> run_stage("render", bad, stream=err), err.getvalue()
    (2, "render: error: render.engine: unknown engine 'svg'\\n")
    >>> run_stage("render", lambda: None), run_stage("render", lambda: 3)
    (0, 3)
    """
    try:
        result = fn()
    except (ConfigError, DataError) as exc:
        print(error_line(stage, exc), file=stream if stream is not None else sys.stderr)
        return BAD_INPUT
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def stage_main(stage: str) -> Callable[[Callable[..., Any]], Callable[..., int]]:
    """Decorator form of :func:`run_stage` for a ``main(argv=None)``.

    Examples
    --------
    >>> from pipelines.core.errors import DataError
    >>> @stage_main("ingest")
    ... def main(argv=None):
    ...     raise DataError("mitdb/100", "bad checksum")
    >>> import io, contextlib
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err):
    ...     main([])
    2
    >>> err.getvalue()
    'ingest: error: mitdb/100: bad checksum\\n'
    """
    def decorate(main: Callable[..., Any]) -> Callable[..., int]:
        @functools.wraps(main)
        def wrapper(*args: Any, **kwargs: Any) -> int:
            return run_stage(stage, lambda: main(*args, **kwargs))
        return wrapper
    return decorate
