raise RuntimeError("this schedules module is broken")
