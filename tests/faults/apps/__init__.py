"""Schedules modules the fault tests load into uWSGI (SPOOLCRON_TEST_MODULES)."""
