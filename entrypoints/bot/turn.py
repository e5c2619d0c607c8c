"""One update's handling: its ``update_id`` marked taken and the replies it owes, written in ONE transaction with
the state change that caused them (SPEC 9).

A handler collects replies on its :class:`Turn` (``say``, ``invoice``) and hands a use case a recorder
(``turn.recorder(render)``): the use case calls ``begin`` first in its transaction (the ``processed_updates``
row: a second delivery of the same update stops there) and ``record`` right before its commit (the replies,
into ``telegram_outbox``). A handler whose use case changed nothing ends with ``finish``: the mark and the
replies in a transaction of their own. Whatever fails before a commit leaves neither, so the update is handled
again and nothing is lost or sent twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import attrs

from adapters.telegram import Button
from domain.outbox import SEND_INVOICE, SEND_MESSAGE, OutboxMessage
from ports.clock import Clock
from ports.repositories import UnitOfWork, UnitOfWorkFactory

T = TypeVar("T")


class UpdateAlreadyTaken(Exception):
    """Another delivery of this ``update_id`` was handled (or is being handled and committed first)."""

    def __init__(self, update_id: int) -> None:
        super().__init__(f"update {update_id} was taken already")
        self.update_id = update_id


@attrs.frozen
class Reply:
    chat_id: int
    method: str
    payload: dict[str, Any]


def message_payload(text: str, buttons: Sequence[Sequence[Button]] = ()) -> dict[str, Any]:
    payload: dict[str, Any] = {"text": text}
    if buttons:
        payload["buttons"] = [[{"text": b.text, "callback_data": b.callback_data} for b in row] for row in buttons]
    return payload


class Turn:
    """The handling of one update (see the module docstring). Not shared between threads."""

    def __init__(self, update_id: int | None, clock: Clock) -> None:
        self.update_id = update_id
        self._clock = clock
        # Without an update id (a direct call), replies still need distinct keys.
        self._key = f"update:{update_id}" if update_id is not None else f"direct:{uuid.uuid4().hex}"
        self._pending: list[Reply] = []
        self._written = 0
        self.recorded = False  # the mark (and the replies so far) were written in a transaction that committed
        self.chats: list[int] = []  # the chat of each reply written, in order

    # --- what the handler owes ----------------------------------------------------------------------------

    def say(self, chat_id: int, text: str, buttons: Sequence[Sequence[Button]] = ()) -> None:
        self._pending.append(Reply(chat_id, SEND_MESSAGE, message_payload(text, buttons)))

    def invoice(self, chat_id: int, title: str, description: str, payload: str, label: str, amount: int) -> None:
        self._pending.append(Reply(chat_id, SEND_INVOICE, {
            "title": title, "description": description, "payload": payload, "label": label, "amount": amount}))

    def reset(self) -> None:
        """Forget the replies not written yet and what was recorded (a handler that failed answers with its error
        text instead, in a transaction of its own)."""
        self._pending.clear()
        self.recorded = False

    # --- the transaction -------------------------------------------------------------------------------------

    def begin(self, uow: UnitOfWork) -> None:
        if self.update_id is not None and not uow.processed_updates.add(self.update_id, self._clock.now()):
            raise UpdateAlreadyTaken(self.update_id)

    def write(self, uow: UnitOfWork) -> None:
        """The pending replies into the outbox; the caller commits right after."""
        now = self._clock.now()
        for reply in self._pending:
            uow.telegram_outbox.add(OutboxMessage.owed(reply.chat_id, f"{self._key}:{self._written}", reply.method,
                                                       reply.payload, now))
            self._written += 1
            self.chats.append(reply.chat_id)
        self._pending.clear()
        self.recorded = True

    def recorder(self, render: Callable[[T], None]) -> TurnRecorder[T]:
        """A recorder for a use case: ``render(outcome)`` says what to answer, inside its transaction."""
        return TurnRecorder(self, render)

    def finish(self, uow_factory: UnitOfWorkFactory) -> None:
        """Mark the update (unless a use case's transaction did) and write what is still owed."""
        if self.recorded and not self._pending:
            return
        with uow_factory() as uow:
            if not self.recorded:
                self.begin(uow)
            self.write(uow)
            uow.commit()


class TurnRecorder(Generic[T]):
    """``domain.outbox.OutcomeRecorder`` for one use-case call of a turn."""

    def __init__(self, turn: Turn, render: Callable[[T], None]) -> None:
        self._turn = turn
        self._render = render
        self.recorded = False

    def begin(self, uow: UnitOfWork) -> None:
        self._turn.begin(uow)

    def record(self, uow: UnitOfWork, outcome: T) -> None:
        self._render(outcome)
        self._turn.write(uow)
        self.recorded = True
