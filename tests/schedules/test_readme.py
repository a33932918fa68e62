"""Every ``>>>`` example in the README's schedules section runs and prints what it shows."""

from __future__ import annotations

import doctest
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.rst"
BEGIN = ".. SECTION schedules"
END = ".. END SECTION schedules"


def _section() -> tuple[str, int]:
    text = README.read_text(encoding="utf-8")
    start = text.index(BEGIN)
    end = text.index(END, start)
    return text[start:end], text.count("\n", 0, start)


def test_section_starts_with_its_heading() -> None:
    section, _ = _section()

    assert section.splitlines()[2:4] == ["Schedule expressions", "===================="]


def test_readme_examples_run() -> None:
    section, line = _section()
    test = doctest.DocTestParser().get_doctest(
        section, globs={}, name="README.rst [schedules]", filename=str(README), lineno=line
    )
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS, verbose=False)

    result = runner.run(test, out=report.append)

    assert len(test.examples) >= 15
    assert result.failed == 0, "".join(report)
