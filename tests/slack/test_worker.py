"""The work pools stop cleanly: what runs ends, what never started is told."""

from __future__ import annotations

import threading

from vpsbot.slack.worker import Background


def test_stopping_ends_running_work_and_answers_what_never_started():
    background = Background(workers=1, dialog_workers=1, read_workers=1)
    release = threading.Event()
    started = threading.Event()
    ran: list[str] = []
    answers: list[tuple[str, str]] = []

    def slow() -> None:
        started.set()
        release.wait(10)
        ran.append("slow")

    background.run("r-slow", lambda text: answers.append(("r-slow", text)), slow)
    for number in range(3):
        request = f"r-{number}"
        background.run(
            request,
            lambda text, request=request: answers.append((request, text)),
            lambda request=request: ran.append(request),
        )
    assert started.wait(5)
    stopper = threading.Thread(target=background.shutdown, kwargs={"drain": 0.2})
    stopper.start()
    # The drain is over while the first request still runs; then it ends.
    stopper.join(0.6)
    assert stopper.is_alive()
    release.set()
    stopper.join(5)

    assert not stopper.is_alive()
    assert ran == ["slow"]
    nothing_done = (
        "vpsbot was restarting and could not start this; nothing was done. "
        "Run the command again in a minute."
    )
    assert answers == [
        ("r-0", nothing_done),
        ("r-1", nothing_done),
        ("r-2", nothing_done),
    ]


def test_stopping_with_time_enough_runs_everything_queued():
    background = Background(workers=1)
    ran: list[int] = []
    for number in range(5):
        background.run(f"r-{number}", print, lambda number=number: ran.append(number))

    background.shutdown(drain=10)

    assert ran == [0, 1, 2, 3, 4]
