from __future__ import annotations

import vpsbot.store


def test_store_exports_exactly_its_public_api() -> None:
    assert sorted(vpsbot.store.__all__) == [
        "ApprovalRepository",
        "AuditRepository",
        "ClaimRepository",
        "CredentialRepository",
        "FollowedOperationRepository",
        "PolicyRepository",
        "begin_read_only",
        "make_engine",
        "make_session_factory",
        "migrations_current",
        "session_scope",
        "upgrade_database",
    ]
    for name in vpsbot.store.__all__:
        assert getattr(vpsbot.store, name).__module__.startswith("vpsbot.store.")
