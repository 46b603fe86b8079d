"""Progress lines for long work: items done, rate, time left, and a one-line summary."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Report progress of ``total`` items on stderr at most every ``interval`` seconds.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> p = Progress("records", total=2, stream=out, interval=0)
    >>> p.update(1); p.update(1); line = p.done()
    >>> line.startswith("records: 2/2 done")
    True
    """

    def __init__(self, what: str, total: int | None = None, *, unit: str = "", stream: TextIO | None = None,
                 interval: float = 2.0):
        self.what = what
        self.total = total
        self.unit = unit or what
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.count = 0
        self.start = time.perf_counter()
        self._last = -float("inf")

    def update(self, n: int = 1, note: str = "") -> None:
        """Add ``n`` finished items and print a line if ``interval`` has passed."""
        self.count += n
        now = time.perf_counter()
        if now - self._last >= self.interval:
            self._last = now
            print(self._line(now, note), file=self.stream, flush=True)

    def _line(self, now: float, note: str = "") -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = self.count / elapsed
        parts = [f"{self.what}: {self.count}" + (f"/{self.total}" if self.total else "")]
        parts.append(_rate(self.count, elapsed, self.unit))
        if self.total and rate > 0:
            parts.append(f"{max(self.total - self.count, 0) / rate:,.0f} s left")
        if note:
            parts.append(note)
        return ", ".join(parts)

    def done(self, summary: str = "") -> str:
        """Print and return the one-line summary."""
        elapsed = time.perf_counter() - self.start
        line = (f"{self.what}: {self.count}" + (f"/{self.total}" if self.total else "")
                + f" done in {elapsed:,.1f} s ({_rate(self.count, elapsed, self.unit)})"
                + (f"; {summary}" if summary else ""))
        print(line, file=self.stream, flush=True)
        return line


def _rate(count: int, elapsed: float, unit: str) -> str:
    """``"1,234.5 beats/s"``; for slow work (under one a second), seconds per item: ``"250.3 s per fold"``.

    >>> _rate(3, 2.0, "beats"), _rate(2, 500.0, "folds"), _rate(0, 5.0, "folds")
    ('1.5 beats/s', '250.0 s per fold', '0.0 folds/s')
    """
    rate = count / max(elapsed, 1e-9)
    if 0 < rate < 1:
        return f"{elapsed / count:,.1f} s per {unit[:-1] if unit.endswith('s') else unit}"
    return f"{rate:,.1f} {unit}/s"
