"""A periodic entry whose task is a Django ``@task`` (Tasks framework) run by SpoolerBackend."""

from spoolcron import Entry
from tests.testapp import framework_tasks

ENTRIES = [Entry("django-tick", framework_tasks.tick, "every second", args=["tick"])]
