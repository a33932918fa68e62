"""A schedules module that raises when imported: the mule must refuse to start, naming it."""

raise RuntimeError("this schedules module is broken on purpose")
