"""Password hashing for the ops console's operators (SPEC 13: a memory-hard hash, scrypt or argon2)."""

from __future__ import annotations

from typing import Protocol


class PasswordHasher(Protocol):
    """Makes and checks password hashes. A hash is self-describing text (algorithm, parameters, salt): what
    ``hash`` returns is all ``verify`` needs."""

    def hash(self, password: str) -> str:
        """A new hash of ``password`` with a fresh random salt."""
        ...

    def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``password_hash`` (False, never an error, for a malformed hash)."""
        ...

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether ``password_hash`` was made with other parameters than this hasher's current ones (re-hash the
        password on the next successful sign-in)."""
        ...
