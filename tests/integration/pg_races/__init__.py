"""SPEC 4 and 13 on real PostgreSQL: racing redeems resolve through the database's constraints into the SPEC
results with exact counts and no error, at both levels of the model (a code's cap, its campaign's budget and
per-user limit), and ``used_total`` always equals the live redemptions of every code and every campaign
(checked in SQL, ``tests.sql.live_units_mismatch``).

Every race runs the real services on real SQL units of work, one thread per caller, released together. The
fixtures (one PostgreSQL database for the package, emptied before each test) are in conftest.py, the race
harness and the SQL checks in races.py.
"""
