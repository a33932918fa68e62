"""Logging a recurring failure without flooding the log: the first one with its traceback,
then one line at most every ``every`` seconds, then one line when it works again."""

from __future__ import annotations

__all__ = ["Throttled", "one_line"]


class Throttled:
    """Counts consecutive failures and says when each deserves a log line; callers word it."""

    def __init__(self, every: float = 30.0) -> None:
        self.every = every
        self.failures = 0
        self.since: float | None = None
        self._last_log = 0.0

    def failed(self, now: float) -> bool:
        """Count one failure at ``now``; True if it is the first or the last line is old."""
        self.failures += 1
        if self.since is None:
            self.since = self._last_log = now
            return True
        if now - self._last_log >= self.every:
            self._last_log = now
            return True
        return False

    @property
    def first(self) -> bool:
        return self.failures == 1

    def outage(self, now: float) -> float:
        """Seconds since the first of the current failures (0 when nothing fails)."""
        return 0.0 if self.since is None else now - self.since

    def recovered(self) -> int:
        """Forget the failures; return how many there were (0: nothing to say)."""
        failures, self.failures, self.since = self.failures, 0, None
        return failures


def one_line(exc: BaseException) -> str:
    """``ExceptionName: message`` on one line, at most 300 characters, for a log line's end."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
