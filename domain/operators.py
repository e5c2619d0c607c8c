"""Operators of the ops console (SPEC 14): named people with a role, a password and sign-in throttling (SPEC 13).

An operator is ``admin`` (may change things) or ``viewer`` (reads only). Names are unique case-insensitively: the
stored ``name_key`` is the name case-folded. The password is kept only as a memory-hard hash (port
``PasswordHasher``). ``session_epoch`` moves on every password or role change; a console session remembers the
epoch it was signed in under and ends when the two differ.

Sign-in is throttled per name and per address over a trailing window: once the window holds
``SignInPolicy.name_failures`` refused sign-ins for a name, or ``address_failures`` from an address, further
sign-ins are refused with a ``retry_after_seconds`` *without* checking the password (so guessing gains nothing),
and not recorded (so a flood does not keep the lock shut forever: it opens ``window`` after the last counted
failure). An unknown name costs the same hash verification as a known one and counts as a failure, so timing
and the throttle tell nothing about which names exist.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import re
import weakref
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from domain import audit
from domain.errors import ConstraintViolation, DomainError, NotFound, ValidationError

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.passwords import PasswordHasher
    from ports.repositories import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger("starpromo.ops")

MAX_NAME = 64
MIN_PASSWORD = 12
MAX_PASSWORD = 256
MAX_ADDRESS = 64
_RESOLUTION = timedelta(microseconds=1)
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_DUMMY_HASHES: weakref.WeakKeyDictionary[PasswordHasher, str] = weakref.WeakKeyDictionary()


class OperatorRole(enum.StrEnum):
    ADMIN = "admin"
    VIEWER = "viewer"


@attrs.frozen
class Operator:
    """A row of ``ops_operators``."""

    id: int | None
    name: str
    role: OperatorRole
    password_hash: str = attrs.field(repr=False)
    created_at: datetime
    updated_at: datetime
    # Moves on every password or role change: console sessions signed in under another epoch are over.
    session_epoch: int

    @property
    def name_key(self) -> str:
        return name_key(self.name)

    @property
    def is_admin(self) -> bool:
        return self.role is OperatorRole.ADMIN


@attrs.frozen
class SignInFailure:
    """A row of ``ops_sign_in_failures``: a refused sign-in of ``name_key`` from ``address`` at ``at``."""

    name_key: str
    address: str | None
    at: datetime


class OperatorExists(DomainError):
    """An operator of that name (compared case-insensitively) exists already."""

    code = "OPERATOR_EXISTS"


class SignInRefused(DomainError):
    """A refused sign-in. ``retry_after_seconds`` is None for a wrong name or password (the two are not told
    apart), and the seconds to wait when the name or the address is throttled."""

    code = "SIGN_IN_REFUSED"

    def __init__(self, message: str, retry_after_seconds: int | None = None) -> None:
        super().__init__(message, {"retry_after_seconds": retry_after_seconds})
        self.retry_after_seconds = retry_after_seconds


class DuplicateOperatorName(ConstraintViolation):
    """Raised by ``Operators.add`` when the unique ``name_key`` refuses the row."""


@attrs.frozen
class SignInPolicy:
    """How many refused sign-ins of one name, or from one address, the trailing ``window`` may hold."""

    name_failures: int = 5
    address_failures: int = 20
    window: timedelta = timedelta(minutes=15)


def name_key(name: str) -> str:
    """What names are compared by (unique, looked up, throttled): the name case-folded, at most 64 characters."""
    return name.casefold()[:MAX_NAME]


def validate_operator_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValidationError.single("name", f"must be 1..{MAX_NAME} characters of letters, digits and . _ @ -")
    return name


def validate_password(password: object) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValidationError.single("password", f"must be {MIN_PASSWORD}..{MAX_PASSWORD} characters")
    return password


def validate_role(role: object) -> OperatorRole:
    if isinstance(role, OperatorRole):
        return role
    if isinstance(role, str) and role in {r.value for r in OperatorRole}:
        return OperatorRole(role)
    raise ValidationError.single("role", "must be admin or viewer")


def _address(address: str | None) -> str | None:
    return address[:MAX_ADDRESS] if address else None


class OperatorService:
    """Adds, changes and removes operators (each change audited), and signs them in."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock, hasher: PasswordHasher,
                 policy: SignInPolicy = SignInPolicy()) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._hasher = hasher
        self._policy = policy
        self._dummy_hash: str | None = None

    # reading

    def list(self) -> list[Operator]:
        """Every operator, by name."""
        with self._uow() as uow:
            return uow.operators.list()

    def get(self, name: str) -> Operator | None:
        with self._uow() as uow:
            return uow.operators.get_by_name(name)

    def get_by_id(self, operator_id: int) -> Operator | None:
        with self._uow() as uow:
            return uow.operators.get(operator_id)

    # changing

    def add(self, name: str, role: OperatorRole | str, password: str, *, actor: str) -> Operator:
        name = validate_operator_name(name)
        role = validate_role(role)
        password = validate_password(password)
        password_hash = self._hasher.hash(password)  # outside the transaction: it takes a while on purpose
        with self._uow() as uow:
            if uow.operators.get_by_name(name) is not None:
                raise _exists(name)
            now = self._clock.now()
            try:
                added = uow.operators.add(Operator(id=None, name=name, role=role, password_hash=password_hash,
                                                   created_at=now, updated_at=now, session_epoch=0))
            except DuplicateOperatorName:  # another writer added it after our look-up
                raise _exists(name) from None
            assert added.id is not None
            audit.record(uow, now, actor, audit.OPERATOR_ADDED, audit.OPERATOR, added.id,
                         {"name": added.name, "role": added.role.value})
            uow.commit()
        log.info("operator added", extra={"event": "operator_added", "operator": added.name,
                                          "role": added.role.value})
        return added

    def set_password(self, name: str, password: str, *, actor: str) -> Operator:
        """A new password; the operator's console sessions end."""
        password = validate_password(password)
        password_hash = self._hasher.hash(password)
        with self._uow() as uow:
            current = self._existing(uow, name)
            now = self._clock.now()
            changed = uow.operators.update(attrs.evolve(current, password_hash=password_hash, updated_at=now,
                                                        session_epoch=current.session_epoch + 1))
            assert changed.id is not None
            audit.record(uow, now, actor, audit.OPERATOR_PASSWORD_SET, audit.OPERATOR, changed.id,
                         {"name": changed.name, "session_epoch": changed.session_epoch})
            uow.commit()
        log.info("operator password set", extra={"event": "operator_password_set", "operator": changed.name})
        return changed

    def set_role(self, name: str, role: OperatorRole | str, *, actor: str) -> Operator:
        """A new role; the operator's console sessions end (a no-op when the role is the same)."""
        role = validate_role(role)
        with self._uow() as uow:
            current = self._existing(uow, name)
            if current.role is role:
                return current
            now = self._clock.now()
            changed = uow.operators.update(attrs.evolve(current, role=role, updated_at=now,
                                                        session_epoch=current.session_epoch + 1))
            assert changed.id is not None
            audit.record(uow, now, actor, audit.OPERATOR_ROLE_SET, audit.OPERATOR, changed.id,
                         {"name": changed.name, "role": {"from": current.role.value, "to": role.value},
                          "session_epoch": changed.session_epoch})
            uow.commit()
        log.info("operator role set", extra={"event": "operator_role_set", "operator": changed.name,
                                             "role": role.value})
        return changed

    def remove(self, name: str, *, actor: str) -> None:
        with self._uow() as uow:
            current = self._existing(uow, name)
            assert current.id is not None
            uow.operators.remove(current.id)
            audit.record(uow, self._clock.now(), actor, audit.OPERATOR_REMOVED, audit.OPERATOR, current.id,
                         {"name": current.name, "role": current.role.value})
            uow.commit()
        log.info("operator removed", extra={"event": "operator_removed", "operator": current.name})

    # signing in

    def sign_in(self, name: str, password: str, address: str | None) -> Operator:
        """The operator of ``name`` when ``password`` is theirs; else :class:`SignInRefused`."""
        # A form field left out arrives as None: refused like any wrong name or password.
        name = name if isinstance(name, str) else ""
        password = password if isinstance(password, str) else ""
        key, address = name_key(name), _address(address)
        policy = self._policy
        with self._uow() as uow:
            now = self._clock.now()
            # A failure counts while ``now < at + window``: timestamps are microseconds everywhere (Python, SQLite
            # text, PostgreSQL), so "after now - window" is "at or after" one microsecond later.
            since = now - policy.window + _RESOLUTION
            waits = [self._wait(now, *uow.sign_in_failures.count_for_name(key, since), policy.name_failures)]
            if address is not None:
                waits.append(self._wait(now, *uow.sign_in_failures.count_for_address(address, since),
                                        policy.address_failures))
            operator = uow.operators.get_by_name(name) if _NAME.fullmatch(name) else None
        wait = max((w for w in waits if w is not None), default=None)
        if wait is not None:
            log.warning("sign-in throttled", extra={"event": "ops_sign_in_throttled", "address": address,
                                                    "retry_after_seconds": wait})
            raise SignInRefused(f"too many failed sign-ins; try again in {wait} seconds", wait)
        # Slow on purpose, so outside the transaction. An unknown name (or an over-long password) is checked
        # against a dummy hash: the answer takes as long as for a known name.
        if operator is not None and len(password) <= MAX_PASSWORD:
            accepted = self._hasher.verify(operator.password_hash, password)
        else:
            self._hasher.verify(self._dummy(), password[:MAX_PASSWORD])
            accepted = False
        if not accepted or operator is None:
            self._record_failure(key, address)
            raise SignInRefused("wrong name or password")
        if self._hasher.needs_rehash(operator.password_hash):
            operator = self._rehash(operator, password)
        log.info("operator signed in", extra={"event": "ops_signed_in", "operator": operator.name,
                                              "address": address})
        return operator

    def prune_sign_in_failures(self) -> int:
        """Forget refused sign-ins older than the window (they no longer count); how many were removed."""
        with self._uow() as uow:
            removed = uow.sign_in_failures.prune(self._clock.now() - self._policy.window)
            uow.commit()
        return removed

    # helpers

    def _existing(self, uow: UnitOfWork, name: str) -> Operator:
        current = uow.operators.get_by_name(name) if isinstance(name, str) and _NAME.fullmatch(name) else None
        if current is None:
            raise NotFound(f"no operator named {name!r}", {"field": "name"})
        return current

    def _wait(self, now: datetime, count: int, latest: datetime | None, limit: int) -> int | None:
        """Seconds until the window no longer holds ``limit`` failures (conservatively: until its latest one has
        left it); None when it holds fewer."""
        if count < limit:
            return None
        if latest is None:
            return math.ceil(self._policy.window.total_seconds())
        return max(1, math.ceil((latest + self._policy.window - now).total_seconds()))

    def _record_failure(self, key: str, address: str | None) -> None:
        with self._uow() as uow:
            now = self._clock.now()
            uow.sign_in_failures.record(key, address, now)
            # Failures older than the window count no more: keep the table as small as the window.
            uow.sign_in_failures.prune(now - self._policy.window)
            uow.commit()
        log.warning("sign-in refused", extra={"event": "ops_sign_in_refused", "address": address})

    def _rehash(self, operator: Operator, password: str) -> Operator:
        """The stored hash re-made with the hasher's current parameters (no session ends: same password)."""
        new_hash = self._hasher.hash(password)
        with self._uow() as uow:
            current = uow.operators.get(operator.id) if operator.id is not None else None
            if current is None or current.password_hash != operator.password_hash:
                return operator  # removed or changed meanwhile: leave it
            operator = uow.operators.update(attrs.evolve(current, password_hash=new_hash))
            uow.commit()
        return operator

    def _dummy(self) -> str:
        """A hash to verify unknown names against, made once per hasher (not per service: the console builds a
        service per request, and an extra hash on an unknown name's first try would tell it apart by time)."""
        if self._dummy_hash is None:
            with contextlib.suppress(TypeError):  # a hasher that takes no weak reference: one per service then
                self._dummy_hash = _DUMMY_HASHES.get(self._hasher)
            if self._dummy_hash is None:
                self._dummy_hash = self._hasher.hash("not the password of anyone")
                with contextlib.suppress(TypeError):
                    _DUMMY_HASHES[self._hasher] = self._dummy_hash
        return self._dummy_hash


def _exists(name: str) -> OperatorExists:
    return OperatorExists(f"an operator named {name!r} exists already", {"field": "name"})
