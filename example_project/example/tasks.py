import logging

import spoolcron

logger = logging.getLogger("example")


@spoolcron.task
def say(text: str) -> None:
    logger.warning("say: %s", text)
