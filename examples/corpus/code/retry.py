"""Retry a flaky network call with exponential backoff and jitter."""

import random
import time


def retry(call, attempts=5, base_delay=0.5, max_delay=8.0):
    """Call `call()` until it succeeds, sleeping longer after each failure.

    The delay doubles after every failed attempt, capped at max_delay, with random
    jitter so that many clients do not retry in lockstep.
    """
    for attempt in range(attempts):
        try:
            return call()
        except ConnectionError:
            if attempt == attempts - 1:
                raise
            delay = min(max_delay, base_delay * 2 ** attempt)
            time.sleep(delay * random.uniform(0.5, 1.5))
