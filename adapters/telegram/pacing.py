"""Pacing below Telegram's flood limits (SPEC 9): at most ``TELEGRAM_MAX_MESSAGES_PER_SECOND`` messages per second
across every process of the bot, and at most one per second per chat (``TELEGRAM_CHAT_INTERVAL_SECONDS``, default 1).

With Redis the global rate is a sliding-window log kept by pyrate-limiter's ``RedisBucket`` (its Lua script checks
and records a send atomically, so several processes share one budget), and a chat's turn is one key set with
``SET NX PX``: whoever sets it may send, the key's remaining life is everyone else's wait. Without Redis, or while
Redis does not answer, the same rules hold per process (pyrate-limiter's ``InMemoryBucket`` and a dict); several
processes then may together exceed the limit, and Telegram's 429 answers (honoured) slow them down.
``answerPreCheckoutQuery`` and ``answerCallbackQuery`` are no messages and are never paced.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate, RedisBucket, SingleBucketFactory
from redis import Redis
from redis.exceptions import RedisError

from adapters.jsonlog import log_event
from adapters.telegram.limits import CHAT_INTERVAL_SECONDS, DEFAULT_MESSAGES_PER_SECOND

log = logging.getLogger("starpromo.telegram.pacing")

KEY_PREFIX = "starpromo:telegram:pace"
# After Redis failed, pace in-process this long before asking Redis again.
REDIS_RETRY_SECONDS = 5.0
_LEAK_EVERY_SECONDS = 1.0
_PRUNE_CHATS_AT = 10_000


def _limiter(bucket: Any) -> Limiter:
    # No background leak thread: ``_leak`` drops old entries on the caller's thread (a thread would not survive
    # RQ's fork, and would die on the first Redis error).
    return Limiter(SingleBucketFactory(bucket, schedule_leak=False), buffer_ms=5)


class MessagePacer:
    """``chat_wait(chat_id)`` takes a chat's turn (or says how long until it comes); ``take(timeout)`` takes one
    message of the global budget, waiting at most ``timeout`` seconds. Thread-safe."""

    def __init__(self, per_second: int = DEFAULT_MESSAGES_PER_SECOND, redis: Redis | None = None,
                 chat_interval: float = CHAT_INTERVAL_SECONDS, key_prefix: str = KEY_PREFIX) -> None:
        if per_second < 1:
            raise ValueError("per_second must be >= 1")
        self.per_second = per_second
        self.chat_interval = chat_interval
        self._redis = redis
        self._prefix = key_prefix
        self._rates = [Rate(per_second, Duration.SECOND)]
        self._local_bucket = InMemoryBucket(self._rates)
        self._local = _limiter(self._local_bucket)
        self._shared_bucket: RedisBucket | None = None
        self._shared: Limiter | None = None
        self._lock = threading.Lock()
        self._chat_turns: dict[int, float] = {}
        self._redis_down_until = 0.0
        self._leaked_at = 0.0

    @property
    def shared(self) -> bool:
        """Pacing through Redis right now (False: in-process, no Redis configured or Redis not answering)."""
        return self._redis is not None and time.monotonic() >= self._redis_down_until

    # --- the global budget -----------------------------------------------------------------------------

    def take(self, timeout: float) -> bool:
        """One message of the global budget; False when none was free within ``timeout`` seconds (0: no wait)."""
        limiter = self._shared_limiter()
        if limiter is not None:
            try:
                granted = self._acquire(limiter, timeout)
                self._leak(self._shared_bucket)
                return granted
            except RedisError as exc:
                self._redis_failed(exc)
        granted = self._acquire(self._local, timeout)
        self._leak(self._local_bucket)
        return granted

    @staticmethod
    def _acquire(limiter: Limiter, timeout: float) -> bool:
        if timeout <= 0:
            return bool(limiter.try_acquire("messages", blocking=False))
        return bool(limiter.try_acquire("messages", timeout=timeout))

    def _shared_limiter(self) -> Limiter | None:
        if self._redis is None or time.monotonic() < self._redis_down_until:
            return None
        with self._lock:
            if self._shared is None:
                try:
                    self._shared_bucket = RedisBucket.init(self._rates, self._redis, f"{self._prefix}:global")
                except RedisError as exc:
                    self._redis_failed(exc)
                    return None
                self._shared = _limiter(self._shared_bucket)
            return self._shared

    def _leak(self, bucket: Any) -> None:
        now = time.monotonic()
        if bucket is None or now - self._leaked_at < _LEAK_EVERY_SECONDS:
            return
        self._leaked_at = now
        try:
            bucket.leak(bucket.now())
        except RedisError as exc:
            self._redis_failed(exc)

    # --- a chat's turn ---------------------------------------------------------------------------------

    def chat_wait(self, chat_id: int) -> float:
        """0.0 when a message to ``chat_id`` may go now (its turn is taken: the next one waits ``chat_interval``);
        otherwise the seconds until it may."""
        if self.chat_interval <= 0:
            return 0.0
        if self.shared:
            assert self._redis is not None
            key = f"{self._prefix}:chat:{chat_id}"
            try:
                if self._redis.set(key, b"1", nx=True, px=max(1, int(self.chat_interval * 1000))):
                    return 0.0
                left_ms = self._redis.pttl(key)
                return max(int(left_ms), 1) / 1000 if isinstance(left_ms, int) and left_ms > 0 else 0.001
            except RedisError as exc:
                self._redis_failed(exc)
        return self._local_chat_wait(chat_id)

    def _local_chat_wait(self, chat_id: int) -> float:
        now = time.monotonic()
        with self._lock:
            next_turn = self._chat_turns.get(chat_id, 0.0)
            if next_turn > now:
                return next_turn - now
            if len(self._chat_turns) >= _PRUNE_CHATS_AT:
                self._chat_turns = {c: t for c, t in self._chat_turns.items() if t > now}
            self._chat_turns[chat_id] = now + self.chat_interval
            return 0.0

    def _redis_failed(self, exc: Exception) -> None:
        first = time.monotonic() >= self._redis_down_until
        self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
        if first:
            log_event(log, "telegram_pacing_degraded", level=logging.WARNING, error=type(exc).__name__,
                      retry_in_s=REDIS_RETRY_SECONDS, pacing="in-process")


def message_pacer(per_second: int, redis_url: str | None,
                  chat_interval: float = CHAT_INTERVAL_SECONDS) -> MessagePacer:
    """The pacer of a process: shared through Redis when ``redis_url`` is set. Short socket timeouts: a Redis
    that does not answer costs a message one second, then pacing goes on in-process (see the module docstring)."""
    redis = Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1) if redis_url else None
    return MessagePacer(per_second, redis, chat_interval)
