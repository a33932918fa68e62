"""``tests.settings`` with ``SPOOLCRON["METRICS"]`` on: the uWSGI processes of
``test_metrics_uwsgi.py``."""

from tests.settings import *  # noqa: F403
from tests.settings import SPOOLCRON

SPOOLCRON = {**SPOOLCRON, "METRICS": True}
