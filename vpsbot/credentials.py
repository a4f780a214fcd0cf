"""Workspaces' VPS.org tokens, kept encrypted in the database.

In multi-workspace mode each Slack workspace connects its own VPS.org account
(``/vps connect``). The token is encrypted with Fernet under the keys of
``VPSBOT_SECRET_KEY``: the first key encrypts, every listed key decrypts, so a
new key is put first, ``vpsbot keys rotate`` re-encrypts the rows with it, and
the old key can then be removed. A token is never logged, never shown and
never part of an export; once stored, only the provider client reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.orm import Session, sessionmaker

from vpsbot.config import Secret
from vpsbot.errors import ConfigError, VpsbotError
from vpsbot.store import CredentialRepository, session_scope

logger = logging.getLogger(__name__)


class UndecryptableCredentialError(VpsbotError):
    """A stored token was encrypted with a key that is no longer configured."""


class TokenCipher:
    """Encrypts with the first key, decrypts with any (``MultiFernet``).

    Raises:
        ConfigError: no key is given.
    """

    def __init__(self, keys: Sequence[Secret]) -> None:
        if not keys:
            raise ConfigError(
                "VPSBOT_SECRET_KEY is required to store workspace tokens; make one "
                "with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            )
        self._fernet = MultiFernet([Fernet(key.value.encode()) for key in keys])

    def __repr__(self) -> str:
        return "TokenCipher(keys='****')"

    def encrypt(self, token: str) -> str:
        return self._fernet.encrypt(token.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> Secret:
        """The token inside ``ciphertext``.

        Raises:
            UndecryptableCredentialError: no configured key opens it.
        """
        try:
            return Secret(self._fernet.decrypt(ciphertext.encode("ascii")).decode())
        except (InvalidToken, UnicodeError):
            raise UndecryptableCredentialError(
                "a stored VPS.org token cannot be decrypted with the keys of "
                "VPSBOT_SECRET_KEY; put the key it was stored with back in the list"
            ) from None

    def rotate(self, ciphertext: str) -> str:
        """``ciphertext`` encrypted again with the first key.

        Raises:
            UndecryptableCredentialError: no configured key opens it.
        """
        try:
            return self._fernet.rotate(ciphertext.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise UndecryptableCredentialError(
                "a stored token cannot be decrypted with the keys of "
                "VPSBOT_SECRET_KEY; put the key it was stored with back in the list"
            ) from None


@dataclass(frozen=True)
class StoredCredential:
    """A workspace's credential as stored; the token stays encrypted."""

    team_id: str
    ciphertext: str = ""
    connected_by: str = ""
    connected_at: datetime | None = None

    def __repr__(self) -> str:
        return (
            f"StoredCredential(team_id={self.team_id!r}, "
            f"connected_by={self.connected_by!r}, ciphertext='****')"
        )


@dataclass(frozen=True)
class RotationResult:
    """What ``rotate_all`` did: rows re-encrypted, and rows changed meanwhile."""

    rotated: int
    skipped: int


class WorkspaceCredentials:
    """Stores, reads and deletes each workspace's encrypted VPS.org token."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        cipher: TokenCipher,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._clock = clock

    def store(self, team_id: str, token: Secret, *, connected_by: str) -> None:
        """Encrypt and keep ``token`` as the workspace's, replacing any before.

        Raises:
            StoreUnavailableError: the database did not answer.
        """
        with session_scope(self._sessions) as session:
            self.store_in(session, team_id, token, connected_by=connected_by)

    def store_in(
        self, session: Session, team_id: str, token: Secret, *, connected_by: str
    ) -> None:
        """``store`` in the caller's transaction (with its audit entry)."""
        CredentialRepository(session).put(
            team_id=team_id,
            ciphertext=self._cipher.encrypt(token.value),
            connected_by=connected_by,
            connected_at=self._clock(),
        )
        logger.info("VPS.org account connected for workspace %s", team_id)

    def stored(self, team_id: str) -> StoredCredential | None:
        """The workspace's row, still encrypted, or ``None``.

        Raises:
            StoreUnavailableError: the database did not answer.
        """
        with session_scope(self._sessions) as session:
            row = CredentialRepository(session).get(team_id)
            if row is None:
                return None
            return StoredCredential(
                row.team_id, row.ciphertext, row.connected_by, row.connected_at
            )

    def decrypt(self, credential: StoredCredential) -> Secret:
        """The token of a stored credential.

        Raises:
            UndecryptableCredentialError: no configured key opens it.
        """
        return self._cipher.decrypt(credential.ciphertext)

    def token_for(self, team_id: str) -> Secret | None:
        """The workspace's decrypted token, or ``None`` when none is connected.

        Raises:
            StoreUnavailableError: the database did not answer.
            UndecryptableCredentialError: no configured key opens it.
        """
        credential = self.stored(team_id)
        return None if credential is None else self.decrypt(credential)

    def delete(self, team_id: str) -> bool:
        """Forget the workspace's token; ``True`` when there was one.

        Raises:
            StoreUnavailableError: the database did not answer.
        """
        with session_scope(self._sessions) as session:
            removed = CredentialRepository(session).delete(team_id)
        if removed:
            logger.info("VPS.org credential deleted for workspace %s", team_id)
        return removed

    def rotate_all(self) -> RotationResult:
        """Re-encrypt every stored token with the first key.

        Each row is rewritten only if its ciphertext is still the one read, so
        a token connected meanwhile (already under the first key) is never
        overwritten with an older one.

        Raises:
            StoreUnavailableError: the database did not answer.
            UndecryptableCredentialError: a row no configured key opens;
                nothing was changed.
        """
        with session_scope(self._sessions) as session:
            rows = CredentialRepository(session).ciphertexts()
        # Decrypt everything first, so a missing key changes nothing at all.
        rotated = []
        for team_id, old in rows:
            try:
                rotated.append((team_id, old, self._cipher.rotate(old)))
            except UndecryptableCredentialError:
                raise UndecryptableCredentialError(
                    f"a stored VPS.org token (workspace {team_id}) cannot be "
                    f"decrypted with the keys of VPSBOT_SECRET_KEY; put the key it "
                    f"was stored with back in the list"
                ) from None
        done = skipped = 0
        with session_scope(self._sessions) as session:
            credentials = CredentialRepository(session)
            for team_id, old, new in rotated:
                if credentials.replace_ciphertext(team_id, old, new):
                    done += 1
                else:
                    skipped += 1
        logger.info("re-encrypted %d workspace credentials (%d skipped)", done, skipped)
        return RotationResult(done, skipped)
