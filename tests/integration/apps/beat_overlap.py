"""An entry whose run (2.5 s) outlasts its period (1 s): overlap="skip" drops the fires between."""

from spoolcron import Entry

ENTRIES = [
    Entry("overlap-skip", "tests.testapp.tasks.sleepy", "every second", args=["overlap-skip", 2.5]),
]
