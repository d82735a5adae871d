"""Calls run at the same time, one thread each, for the tests of two writers of one file."""

import threading
from collections.abc import Callable


def run_at_once(*calls: Callable[[], object], timeout: float = 60) -> list[BaseException]:
    """Runs every call in its own thread, waits up to `timeout` s for each, and returns the
    exceptions they raised (none: an empty list), for the test to assert on."""
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            call()
        except Exception as error:  # collected, then asserted on by the caller
            errors.append(error)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return errors
