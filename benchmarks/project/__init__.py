"""A minimal Django project the benchmarks run, in-process and under real uWSGI."""
