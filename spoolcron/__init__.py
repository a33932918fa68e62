"""Periodic and delayed jobs for Django on the uWSGI spooler."""
