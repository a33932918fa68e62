"""A project's own ``@postfork`` function, imported by uWSGI (``--import``) after
``spoolcron.uwsgi``: it must still run in every process uWSGI forks, the spooler included
(spoolcron's post-fork hook chains to uwsgidecorators')."""

import os
from pathlib import Path

import uwsgidecorators


@uwsgidecorators.postfork
def mark() -> None:
    Path(os.environ["SPOOLCRON_TEST_RESULTS"], f"postfork-{os.getpid()}").touch()
