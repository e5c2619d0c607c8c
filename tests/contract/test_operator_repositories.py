"""The ``Operators`` and ``SignInFailures`` contract (ops console, SPEC 13-14) on memory, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import attrs
import pytest

from domain.operators import DuplicateOperatorName, Operator, OperatorRole
from ports.repositories import UnitOfWork
from tests.conftest import T0
from tests.contract.conftest import LATER

UowFactory = Callable[[], UnitOfWork]


def operator(name: str = "ann", role: OperatorRole = OperatorRole.ADMIN) -> Operator:
    return Operator(id=None, name=name, role=role, password_hash=f"$argon2id$hash-of-{name}", created_at=T0,
                    updated_at=T0, session_epoch=0)


def add(uow_factory: UowFactory, *operators: Operator) -> list[Operator]:
    with uow_factory() as uow:
        added = [uow.operators.add(o) for o in operators]
        uow.commit()
    return added


def test_add_assigns_an_id_and_reads_back_every_field(uow_factory: UowFactory) -> None:
    [added] = add(uow_factory, operator("Ann.Lee@ops", OperatorRole.VIEWER))
    assert added.id is not None
    assert added == attrs.evolve(operator("Ann.Lee@ops", OperatorRole.VIEWER), id=added.id)
    with uow_factory() as uow:
        assert uow.operators.get(added.id) == added
        assert uow.operators.get_by_name("Ann.Lee@ops") == added


def test_names_are_found_and_unique_case_insensitively(uow_factory: UowFactory) -> None:
    [ann] = add(uow_factory, operator("Ann"))
    with uow_factory() as uow:
        assert uow.operators.get_by_name("ANN") == ann
        assert uow.operators.get_by_name("ann") == ann
        with pytest.raises(DuplicateOperatorName):
            uow.operators.add(operator("aNN"))
    with uow_factory() as uow:
        assert uow.operators.list() == [ann]


def test_an_uncommitted_add_is_rolled_back(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        uow.operators.add(operator("bob"))
    with uow_factory() as uow:
        assert uow.operators.get_by_name("bob") is None
        assert uow.operators.list() == []
    add(uow_factory, operator("bob"))  # the name is free again


def test_missing_operators_are_none(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        assert uow.operators.get(404) is None
        assert uow.operators.get_by_name("nobody") is None


def test_list_is_by_name(uow_factory: UowFactory) -> None:
    add(uow_factory, operator("carol"), operator("Bob"), operator("alice"))
    with uow_factory() as uow:
        assert [o.name for o in uow.operators.list()] == ["alice", "Bob", "carol"]


def test_update_replaces_role_hash_epoch_and_updated_at(uow_factory: UowFactory) -> None:
    [ann] = add(uow_factory, operator("ann"))
    changed = attrs.evolve(ann, role=OperatorRole.VIEWER, password_hash="$argon2id$new", session_epoch=3,
                           updated_at=LATER)
    with uow_factory() as uow:
        assert uow.operators.update(changed) == changed
        uow.commit()
    with uow_factory() as uow:
        assert uow.operators.get_by_name("ann") == changed


def test_remove_deletes_the_row_and_frees_the_name(uow_factory: UowFactory) -> None:
    ann, bob = add(uow_factory, operator("ann"), operator("bob"))
    assert ann.id is not None
    with uow_factory() as uow:
        uow.operators.remove(ann.id)
        uow.commit()
    with uow_factory() as uow:
        assert uow.operators.get(ann.id) is None
        assert uow.operators.list() == [bob]
        uow.operators.remove(ann.id)  # gone already: nothing happens
    [again] = add(uow_factory, operator("ANN"))
    assert again.id != ann.id


def test_failures_are_counted_per_name_and_per_address_since_a_moment(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        uow.sign_in_failures.record("ann", "10.0.0.1", T0)
        uow.sign_in_failures.record("ann", "10.0.0.2", T0 + timedelta(minutes=5))
        uow.sign_in_failures.record("bob", "10.0.0.1", T0 + timedelta(minutes=9))
        uow.sign_in_failures.record("bob", None, T0 + timedelta(minutes=10))
        uow.commit()
    with uow_factory() as uow:
        failures = uow.sign_in_failures
        assert failures.count_for_name("ann", T0) == (2, T0 + timedelta(minutes=5))
        assert failures.count_for_name("ann", T0 + timedelta(minutes=1)) == (1, T0 + timedelta(minutes=5))
        assert failures.count_for_name("bob", T0) == (2, T0 + timedelta(minutes=10))
        assert failures.count_for_name("carol", T0) == (0, None)
        assert failures.count_for_address("10.0.0.1", T0) == (2, T0 + timedelta(minutes=9))
        assert failures.count_for_address("10.0.0.1", T0 + timedelta(minutes=9)) == (1, T0 + timedelta(minutes=9))
        assert failures.count_for_address("10.0.0.3", T0) == (0, None)


def test_prune_deletes_only_failures_before_the_moment(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        for minute in (0, 1, 2, 30):
            uow.sign_in_failures.record("ann", "10.0.0.1", T0 + timedelta(minutes=minute))
        uow.commit()
    with uow_factory() as uow:
        assert uow.sign_in_failures.prune(T0 + timedelta(minutes=2)) == 2
        uow.commit()
    with uow_factory() as uow:
        assert uow.sign_in_failures.count_for_name("ann", T0) == (2, T0 + timedelta(minutes=30))
        assert uow.sign_in_failures.prune(T0) == 0


def test_an_uncommitted_failure_is_rolled_back(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        uow.sign_in_failures.record("ann", "10.0.0.1", T0)
    with uow_factory() as uow:
        assert uow.sign_in_failures.count_for_name("ann", T0) == (0, None)
