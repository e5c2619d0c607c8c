"""Payments reliability (issue 10) end to end: the jobs read Telegram's Star transactions over real HTTP from
the fake Bot API (tests/fakes/bot_api.py) through the real telebot adapter, compare them with purchases on
the in-memory family and on PostgreSQL, and deliver their alerts over real HTTP to local receivers.

Each difference raises exactly one routed alert with its figures (a second run raises none); matching books
raise none; recovery settles a stuck purchase once even when four runs race, and files unsafe ones for review.

The fixtures (one fake Bot API and one PostgreSQL database for the package, a ``world`` per family) are in
conftest.py, the ``World`` the tests drive in world.py.
"""
