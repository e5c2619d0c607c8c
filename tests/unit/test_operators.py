"""Operators of the ops console (SPEC 10 `ops ...`, 13, 14): adding, password and role changes, removal, audit rows,
and sign-in throttled per name and per address."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock
from adapters.passwords import Argon2Passwords
from domain import audit
from domain.errors import NotFound, ValidationError
from domain.model import AuditEntry, AuditFilter
from domain.operators import (
    OperatorExists,
    OperatorRole,
    OperatorService,
    SignInPolicy,
    SignInRefused,
    validate_operator_name,
    validate_password,
)

PASSWORD = "correct horse battery"
OTHER = "wrong horse battery!"
ACTOR = "cli:root"


class FakeHasher:
    """A transparent "hash" that says which parameter version made it, and counts verifications."""

    def __init__(self, version: int = 1) -> None:
        self.version = version
        self.verified: list[str] = []

    def hash(self, password: str) -> str:
        return f"fake$v{self.version}${password[::-1]}"

    def verify(self, password_hash: str, password: str) -> bool:
        self.verified.append(password_hash)
        return password_hash.split("$", 2)[2] == password[::-1]

    def needs_rehash(self, password_hash: str) -> bool:
        return not password_hash.startswith(f"fake$v{self.version}$")


@pytest.fixture
def passwords() -> FakeHasher:
    return FakeHasher()


@pytest.fixture
def operators(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, passwords: FakeHasher) -> OperatorService:
    return OperatorService(uow_factory, clock, passwords)


def audit_rows(uow_factory: InMemoryUnitOfWorkFactory) -> list[AuditEntry]:
    with uow_factory() as uow:
        return list(reversed(uow.audit.search(AuditFilter(target_type=audit.OPERATOR), 100, None)))


def refused(operators: OperatorService, name: str, password: str, address: str | None) -> SignInRefused:
    with pytest.raises(SignInRefused) as caught:
        operators.sign_in(name, password, address)
    return caught.value


# names and passwords

@pytest.mark.parametrize("name", ["a", "ann.lee@ops-team", "A_1", "x" * 64])
def test_operator_names_of_letters_digits_and_dot_underscore_at_dash_are_valid(name: str) -> None:
    assert validate_operator_name(name) == name


@pytest.mark.parametrize("name", ["", "x" * 65, "ann lee", "ann/lee", "änn", " ann", 7, None])
def test_other_operator_names_are_refused_naming_the_field(name: object) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_operator_name(name)
    assert caught.value.errors[0]["field"] == "name"


@pytest.mark.parametrize("password", ["x" * 11, "x" * 257, "", None])
def test_passwords_outside_12_to_256_characters_are_refused(password: object) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_password(password)
    assert caught.value.errors[0]["field"] == "password"


def test_passwords_of_12_and_256_characters_are_valid() -> None:
    assert validate_password("p" * 12) == "p" * 12
    assert validate_password("p" * 256) == "p" * 256


# adding, changing, removing

def test_add_stores_a_hash_not_the_password_and_audits_without_it(
        operators: OperatorService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> None:
    ann = operators.add("Ann", "admin", PASSWORD, actor=ACTOR)
    assert (ann.name, ann.role, ann.session_epoch, ann.created_at, ann.updated_at) == (
        "Ann", OperatorRole.ADMIN, 0, clock.now(), clock.now())
    assert ann.password_hash == FakeHasher().hash(PASSWORD) and PASSWORD not in ann.password_hash
    assert PASSWORD not in repr(ann) and ann.password_hash not in repr(ann)
    assert operators.get("ann") == ann and operators.get_by_id(ann.id or 0) == ann
    [row] = audit_rows(uow_factory)
    assert (row.actor, row.action, row.target_type, row.target_id) == (ACTOR, "operator.added", "operator",
                                                                       str(ann.id))
    assert row.details == {"name": "Ann", "role": "admin"}


def test_a_name_taken_in_any_case_is_refused_naming_the_name(operators: OperatorService) -> None:
    operators.add("ann", OperatorRole.VIEWER, PASSWORD, actor=ACTOR)
    with pytest.raises(OperatorExists) as caught:
        operators.add("ANN", OperatorRole.ADMIN, PASSWORD, actor=ACTOR)
    assert caught.value.details == {"field": "name"}
    assert [o.role for o in operators.list()] == [OperatorRole.VIEWER]


@pytest.mark.parametrize(("name", "role", "password", "field"), [
    ("ann lee", "admin", PASSWORD, "name"), ("ann", "root", PASSWORD, "role"), ("ann", "admin", "short", "password"),
])
def test_bad_input_to_add_names_the_field_and_adds_nothing(
        operators: OperatorService, uow_factory: InMemoryUnitOfWorkFactory, name: str, role: str, password: str,
        field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        operators.add(name, role, password, actor=ACTOR)
    assert caught.value.errors[0]["field"] == field
    assert operators.list() == [] and audit_rows(uow_factory) == []


def test_list_is_by_name_case_insensitively(operators: OperatorService) -> None:
    for name in ("carol", "Bob", "alice"):
        operators.add(name, "viewer", PASSWORD, actor=ACTOR)
    assert [o.name for o in operators.list()] == ["alice", "Bob", "carol"]


def test_set_password_changes_the_hash_and_moves_the_session_epoch(
        operators: OperatorService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> None:
    ann = operators.add("ann", "admin", PASSWORD, actor=ACTOR)
    clock.advance(minutes=5)
    changed = operators.set_password("ANN", OTHER, actor="cli:bob")
    assert changed.session_epoch == ann.session_epoch + 1 == 1
    assert changed.updated_at == clock.now() and changed.created_at == ann.created_at
    assert operators.sign_in("ann", OTHER, None) == changed
    refused(operators, "ann", PASSWORD, None)
    row = audit_rows(uow_factory)[-1]
    assert (row.actor, row.action, row.target_id, row.details) == (
        "cli:bob", "operator.password_set", str(ann.id), {"name": "ann", "session_epoch": 1})
    assert all(PASSWORD not in str(r.details) and OTHER not in str(r.details) and "fake$" not in str(r.details)
               for r in audit_rows(uow_factory))


def test_set_password_of_an_unknown_operator_is_not_found_naming_the_name(operators: OperatorService) -> None:
    with pytest.raises(NotFound) as caught:
        operators.set_password("nobody", OTHER, actor=ACTOR)
    assert caught.value.details == {"field": "name"}


def test_a_too_short_new_password_is_refused_and_nothing_changes(operators: OperatorService) -> None:
    ann = operators.add("ann", "admin", PASSWORD, actor=ACTOR)
    with pytest.raises(ValidationError):
        operators.set_password("ann", "short", actor=ACTOR)
    assert operators.get("ann") == ann


def test_set_role_moves_the_session_epoch_and_the_same_role_changes_nothing(
        operators: OperatorService, uow_factory: InMemoryUnitOfWorkFactory) -> None:
    ann = operators.add("ann", "admin", PASSWORD, actor=ACTOR)
    viewer = operators.set_role("ann", "viewer", actor=ACTOR)
    assert (viewer.role, viewer.session_epoch) == (OperatorRole.VIEWER, 1)
    assert operators.set_role("ann", OperatorRole.VIEWER, actor=ACTOR) == viewer
    assert [r.action for r in audit_rows(uow_factory)] == ["operator.added", "operator.role_set"]
    assert audit_rows(uow_factory)[-1].details["role"] == {"from": "admin", "to": "viewer"}
    assert ann.session_epoch == 0


def test_remove_deletes_the_operator_audits_it_and_frees_the_name(
        operators: OperatorService, uow_factory: InMemoryUnitOfWorkFactory) -> None:
    ann = operators.add("ann", "admin", PASSWORD, actor=ACTOR)
    operators.remove("Ann", actor="cli:bob")
    assert operators.get("ann") is None and operators.get_by_id(ann.id or 0) is None
    refused(operators, "ann", PASSWORD, None)
    row = audit_rows(uow_factory)[-1]
    assert (row.actor, row.action, row.target_id, row.details) == (
        "cli:bob", "operator.removed", str(ann.id), {"name": "ann", "role": "admin"})
    assert operators.add("ann", "viewer", PASSWORD, actor=ACTOR).id != ann.id


def test_removing_an_unknown_operator_is_not_found_and_audits_nothing(
        operators: OperatorService, uow_factory: InMemoryUnitOfWorkFactory) -> None:
    with pytest.raises(NotFound):
        operators.remove("nobody", actor=ACTOR)
    assert audit_rows(uow_factory) == []


# signing in

def test_sign_in_with_the_right_password_returns_the_operator_in_any_case_of_the_name(
        operators: OperatorService) -> None:
    ann = operators.add("Ann", "viewer", PASSWORD, actor=ACTOR)
    assert operators.sign_in("aNN", PASSWORD, "10.0.0.1") == ann


def test_a_wrong_password_and_an_unknown_name_are_refused_alike_and_both_verify_a_hash(
        operators: OperatorService, passwords: FakeHasher) -> None:
    operators.add("ann", "admin", PASSWORD, actor=ACTOR)
    wrong = refused(operators, "ann", OTHER, "10.0.0.1")
    unknown = refused(operators, "nobody", PASSWORD, "10.0.0.1")
    assert (wrong.message, wrong.retry_after_seconds) == (unknown.message, unknown.retry_after_seconds) == (
        "wrong name or password", None)
    assert len(passwords.verified) == 2  # the unknown name was checked against a dummy hash too


def test_the_fifth_failure_of_a_name_throttles_it_without_checking_the_password(
        operators: OperatorService, passwords: FakeHasher, clock: ManualClock) -> None:
    operators.add("ann", "admin", PASSWORD, actor=ACTOR)
    for i in range(5):
        refused(operators, "ann", OTHER, f"10.0.0.{i}")  # from a new address each time: the name counts
        clock.advance(seconds=10)
    checked = len(passwords.verified)
    throttled = refused(operators, "ANN", PASSWORD, "10.9.9.9")  # the right password changes nothing
    assert throttled.retry_after_seconds == 15 * 60 - 10
    assert len(passwords.verified) == checked
    refused(operators, "bob", PASSWORD, "10.9.9.9")  # another name from any address is not throttled: checked
    assert len(passwords.verified) == checked + 1


def test_a_throttled_name_opens_again_when_its_last_failure_leaves_the_window(
        operators: OperatorService, clock: ManualClock) -> None:
    ann = operators.add("ann", "admin", PASSWORD, actor=ACTOR)
    for _ in range(5):
        refused(operators, "ann", OTHER, None)
    clock.advance(minutes=14, seconds=59)
    assert refused(operators, "ann", PASSWORD, None).retry_after_seconds == 1
    clock.advance(seconds=1)
    assert operators.sign_in("ann", PASSWORD, None) == ann


def test_refusals_while_throttled_do_not_extend_the_lock(operators: OperatorService, clock: ManualClock) -> None:
    ann = operators.add("ann", "admin", PASSWORD, actor=ACTOR)
    for _ in range(5):
        refused(operators, "ann", OTHER, None)
    for _ in range(10):
        clock.advance(minutes=1)
        refused(operators, "ann", OTHER, None)
    clock.advance(minutes=5)
    assert operators.sign_in("ann", PASSWORD, None) == ann


def test_four_failures_leave_the_right_password_working_and_a_success_resets_nothing(
        operators: OperatorService) -> None:
    ann = operators.add("ann", "admin", PASSWORD, actor=ACTOR)
    for _ in range(4):
        refused(operators, "ann", OTHER, None)
    assert operators.sign_in("ann", PASSWORD, None) == ann
    assert refused(operators, "ann", OTHER, None).retry_after_seconds is None  # the fifth failure
    assert refused(operators, "ann", PASSWORD, None).retry_after_seconds is not None


def test_failures_of_unknown_names_count_against_that_name(operators: OperatorService) -> None:
    for _ in range(5):
        refused(operators, "ghost", OTHER, None)
    assert refused(operators, "GHOST", OTHER, None).retry_after_seconds == 15 * 60
    operators.add("ghost", "viewer", PASSWORD, actor=ACTOR)
    assert refused(operators, "ghost", PASSWORD, None).retry_after_seconds == 15 * 60


def test_twenty_failures_from_one_address_throttle_that_address_for_every_name(
        operators: OperatorService, clock: ManualClock) -> None:
    ann = operators.add("ann", "admin", PASSWORD, actor=ACTOR)
    for i in range(20):
        refused(operators, f"guess{i}", OTHER, "203.0.113.7")
    clock.advance(minutes=1)
    assert refused(operators, "ann", PASSWORD, "203.0.113.7").retry_after_seconds == 14 * 60
    assert operators.sign_in("ann", PASSWORD, "198.51.100.1") == ann  # another address
    assert operators.sign_in("ann", PASSWORD, None) == ann  # no address known: the name alone counts
    clock.advance(minutes=14)
    assert operators.sign_in("ann", PASSWORD, "203.0.113.7") == ann


def test_the_policy_sets_the_limits_and_the_window(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
                                                   passwords: FakeHasher) -> None:
    operators = OperatorService(uow_factory, clock, passwords,
                                SignInPolicy(name_failures=2, address_failures=3, window=timedelta(minutes=1)))
    refused(operators, "ann", OTHER, "10.0.0.1")
    refused(operators, "ann", OTHER, "10.0.0.1")
    assert refused(operators, "ann", OTHER, "10.0.0.1").retry_after_seconds == 60
    refused(operators, "bob", OTHER, "10.0.0.1")
    assert refused(operators, "carol", OTHER, "10.0.0.1").retry_after_seconds == 60
    clock.advance(minutes=1)
    assert refused(operators, "ann", OTHER, "10.0.0.1").retry_after_seconds is None


def test_old_failures_are_pruned_when_a_new_one_is_recorded(
        operators: OperatorService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> None:
    for _ in range(3):
        refused(operators, "ann", OTHER, "10.0.0.1")
    clock.advance(minutes=16)
    refused(operators, "bob", OTHER, "10.0.0.2")
    assert len(uow_factory.store.sign_in_failures) == 1
    clock.advance(minutes=16)
    assert operators.prune_sign_in_failures() == 1


def test_an_over_long_name_or_password_is_refused_like_a_wrong_one(operators: OperatorService) -> None:
    operators.add("ann", "admin", PASSWORD, actor=ACTOR)
    assert refused(operators, "a" * 10_000, PASSWORD, "x" * 500).retry_after_seconds is None
    assert refused(operators, "ann", "p" * 10_000, None).retry_after_seconds is None


def test_a_hash_made_with_old_parameters_is_replaced_on_sign_in_without_ending_sessions(
        uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> None:
    ann = OperatorService(uow_factory, clock, FakeHasher(version=1)).add("ann", "admin", PASSWORD, actor=ACTOR)
    operators = OperatorService(uow_factory, clock, FakeHasher(version=2))
    signed_in = operators.sign_in("ann", PASSWORD, None)
    assert signed_in.password_hash == FakeHasher(version=2).hash(PASSWORD) != ann.password_hash
    assert signed_in.session_epoch == ann.session_epoch
    assert operators.get("ann") == signed_in


def test_argon2_hashes_verify_and_need_a_rehash_when_the_costs_change(
        uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> None:
    cheap = Argon2Passwords(time_cost=1, memory_cost=8, parallelism=1)
    operators = OperatorService(uow_factory, clock, cheap)
    ann = operators.add("ann", "admin", PASSWORD, actor=ACTOR)
    assert ann.password_hash.startswith("$argon2id$") and PASSWORD not in ann.password_hash
    assert operators.sign_in("ann", PASSWORD, None) == ann
    refused(operators, "ann", OTHER, None)
    assert not cheap.verify("not a hash", PASSWORD)
    assert cheap.needs_rehash("not a hash")
    dearer = Argon2Passwords(time_cost=2, memory_cost=16, parallelism=1)
    assert dearer.needs_rehash(ann.password_hash)
    rehashed = OperatorService(uow_factory, clock, dearer).sign_in("ann", PASSWORD, None)
    assert rehashed.password_hash.startswith("$argon2id$v=19$m=16,t=2,p=1$")


def test_a_missing_name_or_password_is_refused_like_a_wrong_one(operators: OperatorService) -> None:
    operators.add("ann", "admin", PASSWORD, actor=ACTOR)
    none: Any = None
    assert refused(operators, none, PASSWORD, None).retry_after_seconds is None
    assert refused(operators, "ann", none, None).retry_after_seconds is None
