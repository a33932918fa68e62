"""The one exception the schedules package raises for bad input."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["AT", "ScheduleError", "did_you_mean"]

#: Where a problem text wants " at position N"; problems name the bad value first and the
#: place right after it ("unknown unit 'secnds' at position 8"), so the place sits mid-sentence.
AT = "\x00"


class ScheduleError(ValueError):
    """A schedule expression, zone or constructor argument that cannot be used.

    ``text`` is the input as given, ``position`` the 0-based index in ``text`` where the
    problem starts (``None`` when it is about the whole input), ``hint`` a suggested fix
    (``None`` when there is none). The message is one sentence built from all three, e.g.
    ``Cannot parse schedule 'every 5 secnds': unknown unit 'secnds' at position 8; did you
    mean 'seconds'?``.
    """

    text: str
    problem: str
    position: int | None
    hint: str | None

    def __init__(
        self,
        text: str,
        problem: str,
        position: int | None = None,
        hint: str | None = None,
        *,
        subject: str = "schedule",
    ) -> None:
        self.text = text
        self.problem = problem.replace(AT, "")
        self.position = position
        self.hint = hint
        where = "" if position is None else f" at position {position}"
        before, marker, after = problem.rpartition(AT)
        sentence = f"{before}{where}{after}" if marker else f"{problem}{where}"
        message = f"Cannot parse {subject} {text!r}: {sentence}"
        message += f"; {hint}" if hint else "."
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        # Keep the structured attributes when the error crosses a process boundary.
        return (
            _rebuild,
            (type(self), self.text, self.problem, self.position, self.hint, self.args),
        )


def _rebuild(
    cls: type[ScheduleError],
    text: str,
    problem: str,
    position: int | None,
    hint: str | None,
    args: tuple[object, ...],
) -> ScheduleError:
    error = cls.__new__(cls)
    ValueError.__init__(error, *args)
    error.text, error.problem, error.position, error.hint = text, problem, position, hint
    return error


def did_you_mean(word: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """Return ``"did you mean 'x'?"`` for the closest choice to ``word``, or ``None``."""
    pool = list(choices)
    folded = {choice.lower(): choice for choice in pool}
    if word.lower() in folded:
        return f"did you mean {folded[word.lower()]!r}?"
    matches = difflib.get_close_matches(word.lower(), list(folded), n=1, cutoff=cutoff)
    return f"did you mean {folded[matches[0]]!r}?" if matches else None
