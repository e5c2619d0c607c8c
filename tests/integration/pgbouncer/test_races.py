"""SPEC 13: redeem, checkout and jobs behave through PgBouncer in transaction mode exactly as on a direct
connection. These are the direct-connection tests themselves (imported, so the two can never drift apart), run here
on this package's ``engines``: a database reached through PgBouncer with ``DATABASE_POOL_MODE=transaction``, up to
100 client connections sharing PgBouncer's 20 server connections, each client running the same statements again
and again (what turned over a third of the racing redeems into 5xx before the pool mode existed)."""

from __future__ import annotations

from tests.contract.test_services_on_every_backend import (
    test_a_discount_is_reserved_bought_paid_refunded_and_revoked,
    test_expiry_rollover_and_guard_jobs,
)
from tests.integration.payments_reliability.test_recovery import (
    test_stuck_purchases_are_settled_exactly_once_by_four_racing_recoveries,
)
from tests.integration.pg_races.test_job_and_admin_races import (
    test_jobs_running_alongside_redemptions_keep_used_total_equal_to_the_live_redemptions,
    test_racing_checkouts_of_one_product_make_one_open_purchase,
    test_two_expiry_jobs_at_once_give_each_unit_back_exactly_once_at_both_levels,
)
from tests.integration.pg_races.test_redeem_races import (
    test_160_users_racing_for_25_uses_of_one_code_get_exactly_25_accepted_and_the_rest_depleted,
)

# Racing redeems on a capped code (its own cap, or its campaign's budget); checkout (racing checkouts, reserve ->
# buy -> pay -> refund -> revoke, and payments settled once by racing recoveries); jobs (expiry, rollover and the
# guard; expiry racing itself; jobs racing redeems and checkouts).
__all__ = [
    "test_160_users_racing_for_25_uses_of_one_code_get_exactly_25_accepted_and_the_rest_depleted",
    "test_a_discount_is_reserved_bought_paid_refunded_and_revoked",
    "test_expiry_rollover_and_guard_jobs",
    "test_jobs_running_alongside_redemptions_keep_used_total_equal_to_the_live_redemptions",
    "test_racing_checkouts_of_one_product_make_one_open_purchase",
    "test_stuck_purchases_are_settled_exactly_once_by_four_racing_recoveries",
    "test_two_expiry_jobs_at_once_give_each_unit_back_exactly_once_at_both_levels",
]
