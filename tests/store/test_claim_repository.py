from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from vpsbot.store import ClaimRepository, session_scope
from vpsbot.store.models import Claim

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
RACERS = 20


def _claim(
    factory: sessionmaker[Session],
    request_id: str,
    *,
    key: str = "delete:T1:42",
    ttl: float | None = 60.0,
    now: datetime = T0,
) -> bool:
    with session_scope(factory) as session:
        return ClaimRepository(session).try_claim(
            key=key, request_id=request_id, ttl_seconds=ttl, now=now
        )


def _holder(factory: sessionmaker[Session], key: str = "delete:T1:42") -> Claim | None:
    with session_scope(factory) as session:
        return session.get(Claim, key)


def _race(factory: sessionmaker[Session], *, now: datetime) -> list[str]:
    """Let RACERS threads claim one key at once; return the winners' ids."""
    start = threading.Barrier(RACERS)
    winners: list[str] = []
    errors: list[BaseException] = []

    def run(request_id: str) -> None:
        try:
            start.wait()
            if _claim(factory, request_id, now=now):
                winners.append(request_id)
        except BaseException as exc:  # collected and checked below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(f"req-{number}",))
        for number in range(RACERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return winners


def test_first_claim_wins_and_a_second_is_refused(
    session_factory: sessionmaker[Session],
) -> None:
    assert _claim(session_factory, "req-a") is True
    assert _claim(session_factory, "req-b", now=T0 + timedelta(seconds=59)) is False

    claim = _holder(session_factory)
    assert claim is not None
    assert (claim.request_id, claim.created_at, claim.expires_at) == (
        "req-a",
        T0,
        T0 + timedelta(seconds=60),
    )


def test_the_holder_claiming_again_is_refused_too(
    session_factory: sessionmaker[Session],
) -> None:
    assert _claim(session_factory, "req-a") is True
    assert _claim(session_factory, "req-a") is False


def test_an_expired_claim_is_taken_over_once(
    session_factory: sessionmaker[Session],
) -> None:
    later = T0 + timedelta(seconds=61)
    assert _claim(session_factory, "req-a") is True

    assert _claim(session_factory, "req-b", now=later) is True
    assert _claim(session_factory, "req-c", now=later) is False

    claim = _holder(session_factory)
    assert claim is not None
    assert (claim.request_id, claim.expires_at) == (
        "req-b",
        later + timedelta(seconds=60),
    )


def test_a_claim_without_ttl_never_expires(
    session_factory: sessionmaker[Session],
) -> None:
    assert _claim(session_factory, "req-a", ttl=None) is True

    far_future = T0 + timedelta(days=3650)
    assert _claim(session_factory, "req-b", now=far_future) is False
    claim = _holder(session_factory)
    assert claim is not None
    assert (claim.request_id, claim.expires_at) == ("req-a", None)


def test_release_by_the_holder_frees_the_key(
    session_factory: sessionmaker[Session],
) -> None:
    assert _claim(session_factory, "req-a") is True

    with session_scope(session_factory) as session:
        ClaimRepository(session).release(key="delete:T1:42", request_id="req-a")

    assert _holder(session_factory) is None
    assert _claim(session_factory, "req-b") is True


def test_release_by_another_request_changes_nothing(
    session_factory: sessionmaker[Session],
) -> None:
    assert _claim(session_factory, "req-a") is True

    with session_scope(session_factory) as session:
        ClaimRepository(session).release(key="delete:T1:42", request_id="req-b")

    claim = _holder(session_factory)
    assert claim is not None
    assert claim.request_id == "req-a"


def test_claims_on_different_keys_are_independent(
    session_factory: sessionmaker[Session],
) -> None:
    assert _claim(session_factory, "req-a", key="power:T1:1") is True
    assert _claim(session_factory, "req-b", key="power:T1:2") is True


def test_a_claim_rolled_back_is_not_held(
    session_factory: sessionmaker[Session],
) -> None:
    with pytest.raises(RuntimeError), session_scope(session_factory) as session:
        ClaimRepository(session).try_claim(
            key="delete:T1:42", request_id="req-a", ttl_seconds=60, now=T0
        )
        raise RuntimeError("the caller gave up")

    assert _claim(session_factory, "req-b") is True


@pytest.mark.parametrize(
    ("ttl", "now", "message"),
    [
        (-1.0, T0, "ttl_seconds must not be negative"),
        (60.0, datetime(2026, 3, 1, 12, 0, 0), "now must be timezone-aware"),
    ],
)
def test_try_claim_refuses_bad_arguments(
    session_factory: sessionmaker[Session], ttl: float, now: datetime, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _claim(session_factory, "req-a", ttl=ttl, now=now)


def test_twenty_racers_on_one_key_give_exactly_one_winner(
    session_factory: sessionmaker[Session],
) -> None:
    winners = _race(session_factory, now=T0)

    assert len(winners) == 1
    claim = _holder(session_factory)
    assert claim is not None
    assert claim.request_id == winners[0]


def test_twenty_racers_on_an_expired_claim_give_exactly_one_winner(
    session_factory: sessionmaker[Session],
) -> None:
    assert _claim(session_factory, "req-old", ttl=1.0) is True

    winners = _race(session_factory, now=T0 + timedelta(seconds=5))

    assert len(winners) == 1
    claim = _holder(session_factory)
    assert claim is not None
    assert claim.request_id == winners[0]
