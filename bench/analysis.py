"""Hand-written reading of the measurements, per workload, shown in results.md beside the numbers.

Kept apart from the code that measures so that the report never claims what a run did not show:
each text says what the profile and the baseline point at, and is revised when the numbers move.
The figures quoted here come from the profiles and experiments named in each text (2 shared cores,
other sessions' tests running beside them); the tables above them are the run's own.
"""

from __future__ import annotations

# What every redeem row below leans on: two experiments of 2026-12-01 on this host (2 vCPUs, AMD EPYC), each
# alternating the two cases within the same minute.
HOST_AND_MODEL = """
**This host, and the campaign model, measured apart.** Two things moved since the previous report
(2,616/s, on an Intel Xeon host), and they were measured separately, each case alternated with the other
within the same minute:

- *The host.* The pre-campaign redeem's own two statements (the previous report's pgbench script,
  unchanged) on a database at revision 0002 with 10,000 codes ran at 2,477-3,543/s here (16 clients, 3 runs,
  11:40) and at 1,821-2,631/s at 11:03, against 6,293-6,607/s in the previous report: this host gives the same
  work about half the throughput. `GET /healthz` (no database) shows the same: ~2,700-3,100 requests/s in this
  run's redeem_http against 5,585.
- *The model.* On the same host and minute, the campaign model's two statements on the new schema ran at
  1,330-1,845/s against those 2,477-3,543/s; with one client 0.76 ms against 0.47 ms per redeem (the `SELECT`
  0.26 vs 0.16 ms, the `WITH` 0.50 vs 0.31 ms). `EXPLAIN (ANALYZE, BUFFERS, WAL)` of the new ones shows what
  they add: the snapshot adds the campaign row (a primary-key probe) and the user's held slots (an index-only scan of
  `uq_promo_redemptions_user_slot`); the write inserts into 8 indexes of promo_redemptions instead of 5
  (`uq_promo_redemptions_user_slot`, `ix_promo_redemptions_campaign_id_status`, `ix_promo_redemptions_user_id_id`
  are new) and 4 of promo_attempts instead of 3, runs two foreign-key checks instead of one (0.07 + 0.04 ms),
  and updates a second row, the campaign's. And promo_codes updates are no longer
  HOT: the new partial index `ix_promo_codes_used_up` has `used_total` in its predicate, so every claim writes a
  new entry into every index of promo_codes (pg_stat_user_tables: 0 of 17,441 code updates HOT; with that index
  dropped, 9,482 of the next 9,601). Dropping it did not move pgbench's rate beyond the noise (1,186-1,207/s
  against 936-1,242/s): a cost, not the main one.
"""

ANALYSIS: dict[str, str] = {
    "redeem_distinct": """
**Where it stands.** One accepted redeem is still 2 statements, each its own transaction: one `SELECT` reading
everything checks 1-7 need (now the code, its campaign and the user's slots in that campaign), one
`WITH ... INSERT ... INSERT ... UPDATE ... UPDATE` writing the redemption and the attempt and claiming a unit of
the code's cap and of the campaign's budget, whole or absent. Every code here is the only code of its campaign
(10,000 campaigns), so no two workers ever wait for the same row (the sampled lock waits are 0.0). The
throughput target is missed by the host and by the heavier model, in about equal parts:
""" + HOST_AND_MODEL + """
**Why the share of the pgbench rate stays below 0.5.** pgbench, a C client, runs the very same two statements;
the domain client costs about as much CPU per redeem as the server (psycopg's send/receive and result handling,
the pool checkout, HMAC, the attrs objects of the code, the campaign and the redemption) and shares the same 2
cores with it: with a client as costly as the server the best possible share is s / (s + c) ≈ 0.5, and the
switching of 16 threads on one GIL takes some of that (0.41 in this run, 0.40 in the previous report). Spreading the
16 workers over 2 processes (the comparison note) does not help: the second interpreter takes CPU the database
needs.

**Why p99 is far above 20 ms.** p50 is 16 workers / throughput (Little's law); the tail is the scheduling of 16
threads that share one GIL on 2 saturated cores, a worker whose answer has arrived waiting for the GIL and then
for a core. On the previous host p99 was 33 ms at 2,616/s; here the server's share of each redeem doubled too.

**What would close it**, in the order of their effect: the database on cores of its own, or a host as fast as
the previous one (the pre-campaign redeem measured 2,616/s there); then less database work per
redeem: an index predicate that does not read `used_total` (HOT updates of promo_codes again; the rollover
could find used-up codes through the redemptions just claimed instead), and a look at whether the ops console
needs both new redemption indexes on the write path; then less client CPU per call (psycopg's async connection
on an event loop instead of 16 threads on one GIL).
""",
    "redeem_giveaway": """
**What is measured.** 16 workers, distinct users, each redeeming fresh single-use codes (a code's own cap 1) of
ONE campaign whose budget equals its codes and whose `per_user_limit` is 1: every redeem updates a different
code row but the same campaign row (`used_total + 1` under `used_total < max_total_uses`). Each run follows the
redeem_distinct run it is compared with, on a fresh campaign; pgbench replays the giveaway's own statements on
a campaign of its own (each client its own run of codes), for the database's limit.

**Correctness holds.** After all runs every giveaway campaign has `used_total` equal to its live redemptions and
within its budget, every code at most 1, and no (campaign, user) holds more than `per_user_limit` live
redemptions. The race (300 units, 1,200 codes, 400 users who come back for second codes, 16 workers at once)
ends with exactly 300 accepted; the rest are `DEPLETED` (budget gone), `ALREADY_USED` (the user holds the
campaign's one slot) or `RATE_LIMITED` (a user's failures in the window).

**The one campaign row is a serialization point, measured.** Sampling pg_stat_activity every 50 ms during the
runs: in redeem_distinct no backend ever waits for a lock; in the giveaway ~2.3-2.8 of the 16 backends wait on
average, all of them queued on promo_campaigns tuples (`tuple_locks_campaigns` in the run table; none on codes):
by Little's law each giveaway redeem waits ~3.7 ms for the campaign row. redeem_hot, where every redeem updates
the same code AND the same campaign row, shows the same queue on the code row and runs at ~0.80 of the distinct
rate in this run. The database alone (pgbench) makes 0.79 of its distinct rate on the giveaway here (1,482
against 1,876/s; its `WITH` statement takes ~10 ms against ~5 ms, the wait for the row), and the one-row shape
cost as much on the faster previous host (one hot row: 4,375 against 6,376/s, 0.69).

**Why the ratio still passes here.** On this host the 16 Python workers, not the database, set the rate (~750/s
against pgbench's ~1,500/s): while some of them wait for the campaign row, the others have the GIL and the
cores, so the wait replaces time they would have spent queued for the CPU anyway. The margin belongs to the slow
client, not to the design: where the client gets faster (the previous host, or the database on cores of its own)
the giveaway approaches the one-row limit and falls below 0.8 of the distinct rate, as redeem_hot did there
(1,470 against 2,616/s, 0.56).

**The fix that removes the serialization point: budget slots.** Split a budgeted campaign's `used_total` over N
counter rows (`promo_campaign_budget_slots (campaign_id, slot, max_uses, used)`, N = 16, the budget divided
among them); a redeem claims one unit from one slot, chosen from the code id (`code_id % N`) and taken with
`FOR UPDATE SKIP LOCKED`, falling back to a waiting claim on any slot with room when its slot is busy or full,
and `DEPLETED` only when no slot has room; the campaign's `used_total` is the sum of its slots; the redemption
records its slot (as it records `user_slot`) so that expiry and refunds give the unit back to that slot.
Measured beside the runs (the "Emulated budget slots" note): the same giveaway with its budget spread over 16
rows had 0.41 backends waiting for a lock instead of ~2.8 and ran at the rate of a distinct run made right after
it (1.10 of it in this run, 0.98 in the run before).
*Its cost*: one more table (N rows per budgeted campaign; unlimited campaigns need none) and one more column on
promo_redemptions; reading `used_total` becomes a sum over N rows (campaign pages, the dashboard, the
rollover's "budget used up" test, which must see every slot full); changing a budget locks the N slots in order
and spreads the new budget so that no slot's cap falls below its `used` (refused when the sum would); and the last
~N units of a budget are claimed through the waiting fallback, one at a time, as today. A cheaper variant for the
common giveaway: skip the campaign claim when the codes' own caps already bound the budget (sum of caps <=
budget), but then `used_total` must come from another place and a code added later re-enables the claim.
""",
    "redeem_hot": """
**Zero over-redemption holds** (checked after every run: `used_total` of the code and of its campaign equal
the live redemptions, and every accepted call has exactly one row).

**Two hot rows now, one queue.** Every redeem updates the code row (its cap) and then the campaign row (the
budget), in one statement that is its own transaction. The lock samples show every waiter queued on the code
row (`tuple_locks_codes` ~1.6-1.9; none on promo_campaigns): the code row is taken first, so whoever holds it
meets no one at the campaign row.

**Why it misses 800/s here.** pgbench, replaying the same statements on a fresh row of its own, reaches
~950-1,070/s on this host (the table's baseline): the database's own limit for one row is barely above the
target. The pre-campaign redeem measured 1,470/s against pgbench's 4,375/s on the previous host with one hot
row; see redeem_distinct for the host (about half the throughput) and the heavier statement. The domain client
reaches ~0.65 of pgbench: the row lock is held only inside the statement, but on 2 cores shared with 16 Python
threads the backend holding it is descheduled now and then, and the queue waits behind it.

**What would close it**: a faster host, or the database on cores of its own; then a shorter time under the lock:
the code update is not HOT (see redeem_distinct: `ix_promo_codes_used_up` reads `used_total`), so the lock is
held while five index entries are written; a fillfactor below 100 on promo_codes and promo_campaigns keeps the
new versions on their page. Budget slots (redeem_giveaway) do not help here, the code row being the queue; the
same slots at code level would, for the few codes with a large cap (an influencer's code).
""",
    "redeem_http": """
**Saturated below the target on this host.** The closed-loop rate is below 600/s, so the paced runs at 600/s
queue without bound and their latencies (seconds) only say so; they are not the server's latency at a load it
can carry. Each request is the redeem of redeem_distinct (2 statements) plus Flask, routing, strict JSON
reading, the access log line and waitress; `starpromo serve --processes 2 --threads 8`, as docs/operations.md
recommends.

**What moved.** `GET /healthz` on the same server, which touches no database, makes ~2,700-3,100 requests/s here
against 5,585 on the previous host: the host gives the HTTP stack alone about half. The redeem behind it
costs the database about twice what it did (redeem_distinct: the campaign model's statements). The ratio of the
HTTP rate to the domain rate is no worse than it was (541 against 785/s here, 0.69; 1,148 against 2,616/s there,
0.44), so the HTTP layer did not get heavier relative to the redeem.

**What would close it**: what closes redeem_distinct (a faster host or the database on cores of its own, less
database work per redeem); the previous host made 1,148/s with p50 2.9 ms and p99 9.7 ms at 600/s with the
pre-campaign redeem. Less CPU per request in the HTTP layer (~0.5 ms of Flask, JSON and logging beside the
redeem) would add headroom.
""",
    "reservation_expiry": """
**What the job does per batch** (bounded batches of `PROMO_JOB_BATCH_SIZE` = 500, one transaction each): three
statements, no domain objects. `Redemptions.expire_due` locks the due reservations (`FOR UPDATE SKIP LOCKED`, in
the order of the partial index on `reserved_until`) and expires them with a conditional `UPDATE` (by primary key,
`status = 'RESERVED' AND purchase_id IS NULL AND reserved_until <= now` stated again), answering how many were
due and the (code, campaign) of each one it expired; then the units go back at both levels, one statement each,
`UPDATE ... FROM (SELECT ... ORDER BY id FOR UPDATE)`: the rows locked in id order before any is updated, codes
before campaigns (the order of every writer). Only rows the conditional UPDATE returned give a unit back, so
each unit comes back exactly once even with several runs at once.

**What made it miss (24.3 s on a quiet host, 29-51 s under load here): one quadratic plan and one bad generic
plan.** The due `SELECT` was ordered by `(reserved_until, id)`: no index gives that order, and under `FOR
UPDATE` the `LIMIT` sits above the row locks, so the sort was not bounded: every batch read every due row left
(a sequential scan) and sorted it, on disk at first (EXPLAIN ANALYZE: 45-160 ms per batch against ~1 ms for the
index scan now). The index entries of rows earlier batches expired are still stepped over (184 buffers at
batch 199 against 11 at batch 0, under 1 ms: not what cost). Then, with the due rows and the `UPDATE` in one
statement, the generic plan psycopg's prepared statement gets after five runs (`LIMIT` unknown) hashed every
RESERVED row to join them to the due ones: ~90 ms per batch at the start; the `UPDATE` now takes its rows by
primary key (`id = ANY(ARRAY(SELECT id FROM due))`), ~20 ms. Six statements per batch became three.

**Where it stands**: the job runs at about 1.3-1.9 times its batched floor (the floor's due rows now in the
job's order) and 3.5-4.4 times the single set-based statement, against 9-11 times before, in runs alternated on
the same loaded host (set-based statement 2.4-4.6 s there, against ~2.1 s on the quiet host of the 24.3 s). The
floor is the database's own work per batch: 500 redemptions updated (never HOT: their status is in the key or
predicate of 4 of their 8 indexes), and ~500 code rows and ~500 campaign rows (the bench spreads the
reservations over 1,000 of each), the code rows never HOT either (`ix_promo_codes_used_up`'s predicate names
`used_total`), 100 new versions per code row over a run. What the job adds to its floor is the id-order locks
on code and campaign rows (the floor takes none) and two more round trips.

**What would close it on this host**: it is within the target on a quiet host if the ratio to the set-based
statement holds (~3.9 times 2.1 s), not proven here: the floor itself is 8-16 s on this host. A long transaction
elsewhere keeps the dead versions alive: the batched floor went from 9.9 s to 33.4 s with one REPEATABLE READ
transaction held open beside it.
""",
    "codes_generate": """
**Missed by the host, not by the code: the raw COPY of the same rows takes ~26 s here.** The baseline loads the
very rows the run inserted with a bare `COPY promo_codes FROM STDIN`; on this host it alone takes ~25-31 s of
the 30 (10.9 s on the previous host). The generate run stays at ~2.4 times its COPY baseline, as before the
campaign model (26.1 against 10.9 s there). Memory is flat (~110 MB at 100,000 and at 1,000,000: the run
streams chunks of 10,000).

**What the campaign model added to the floor**: a foreign key from every code to its campaign, checked per row.
Measured (300,000 rows inserted server-side, alternated): 6.6-7.5 s with the key against 4.3-5.6 s without it,
i.e. ~6-7 s per 1,000,000 codes on this host, every check the same campaign row.

**What would close it**: a faster host (the COPY alone leaves no room here); then that per-row check: a batch
into one campaign checks the same row a million times, so loading a batch without it (the key re-checked once
for the batch) would take ~25 % off the floor; the Python work between the database calls (campaign objects and
COPY lines, ~4 s on the previous host) could move to the helper thread that already draws and hashes the next
chunk.
""",
    "codes_generate_100k": """
100,000 codes with the report in ~6 s on this host, against the published anchor of 100,000 vouchers in 60 s
(and about 10 s for 10,000 codes in the Ruby promotions engine SPEC 12 cites); ~3 times its raw COPY baseline.
""",
    "migration_1m": """
**Met with room**: ~22 s, about a third of the 60 s budget, on a host that is itself about half as fast as the
previous one (see redeem_distinct), every row verified after every run (the notes), against a limit of ~11 s for
merely rewriting the three tables and building as many indexes.

**Where the time goes** (the profile: the same migration in-process, every statement timed). The rebuild loads
(`INSERT ... SELECT` into the new promo_codes, promo_attempts and promo_redemptions, ~8.4 s together) are the
table copies of the limit plus the joins that give each row its campaign: codes to their group on all nine terms
(one hash join), attempts to codes by hash, redemptions to codes plus the window function numbering the users'
slots. The keys and indexes built after the load (~8 s) are the limit's index builds; the unique `code_hash`
index and the `(code_prefix, campaign_id)` index over 1,000,000 rows are the two largest. Grouping the codes into
campaigns (`CREATE TEMPORARY TABLE ... GROUP BY` the nine terms, window numbering for names and ids) ~2.2 s;
writing the 102,095 campaigns ~0.6 s; `ANALYZE` of the four tables ~1.2 s; the refusal checks (one of them a
sequential scan, `paused_reason IS NOT NULL AND status <> 'PAUSED'`) ~0.5 s.

**Scaling**: every step is set-based and linear in the rows but for the sorts of the index builds and the
grouping (n log n); 100,000 codes migrate in ~7 s (Python and Alembic start-up included), 1,000,000 in ~22 s.
The time is ~2 times the limit; closer to it would come from building the codes' indexes in parallel
(`max_parallel_maintenance_workers`, on hosts with more than 2 cores) and from folding the attempts' campaign
lookup into the codes' load.
""",
    "bruteforce_guard": """
Both guard queries are single aggregates over the attempts of the last 10 minutes, served by the
`ix_promo_attempts_window (attempted_at, result, ...)` index, so the 1,000,000 rows of the last 24 hours are
never read; the job takes about what its own SQL takes raw. The hash rule now pauses the attacked codes (the
campaign stays ACTIVE); the prefix rule pauses campaigns.
""",
    "dashboard": """
**Met since the hourly rollup of attempts** (migration 0008, `adapters/sql/attempt_rollup.py`; docs/decisions.md
"Ops console at scale"). Before it the dashboard read the 1,000,000 attempts of its window twice, once for the
counts by result and once for the hourly series (`date_trunc` per row, then a sort), ~750 ms raw and 1,138 ms in
the 2026-12-01 12:00 run. Now the complete hours of the window come from `promo_attempts_hourly` (a few hundred
rows) and only the partial first hour and the hour or so not folded yet from promo_attempts: the four slowest
statements above are those two spans read for the counts and for the series (~30-40 ms each, ~40,000 rows per
span). The first call of the run (the warm-up, not timed) folds the 23 complete hours once. What is left is the
application's own SQL: the runs equal the raw replay (ratio ~1.0).
""",
    "console_pages": """
**What is measured.** Each page in-process through Flask's test client, signed in as an admin, 15 requests per page
in each of 3 rounds; the check is the median of the rounds' medians. The data (first note) is 1,000,000 codes and
1,000,000 attempts as SPEC 12 says (the attempts are the dashboard row's: all in the last 24 hours, the worst case
for the default window), plus what a deployment a week after a launch holds: 220,000 redemptions and 130,000 paid
purchases over the last 7 days, one influencer code used 20,000 times, one user with 58 redeems and 36 purchases.

**What was fixed, and by how much.** Measured side by side on one copy of this data (runs of 5 requests, the old
code and the new alternated, load average 5-8): overview 1,428 and 2,023 ms -> 212 and 287 ms; campaign detail
1,955 and 2,247 ms -> 377 and 418 ms; user 537 and 79 ms -> 40 and 66 ms.
- *Attempts counted per hour once the hour is over* (migration 0008, `adapters/sql/attempt_rollup.py`): the
  overview and the campaign page read every attempt of the window twice (counts by result, then the hourly series
  with a `date_trunc` and a sort per row that spilled to disk): 1,000,000 rows, ~2.6 s of the overview's 5.3 s on
  the first measurement (load ~10). Now the complete hours come from `promo_attempts_hourly` and only the partial
  first hour and the last hour from promo_attempts (~15-40 ms). The first request of a window folds its hours once
  (the "first request" note: ~3 s for 1,000,000 attempts); later ones fold at most the hour that just ended.
- *Purchases to redemptions per purchase, without JIT*: the campaign's paid purchases, its Stars per hour and the
  discounts applied per hour joined the window's purchases to promo_redemptions, which PostgreSQL answered by
  hashing all 220,000 redemptions for each of the three (~200 ms each under load). They now look each purchase's
  redemption up by primary key (a scalar subquery), and those statements run with `SET LOCAL jit = off`: compiling
  them cost 20-100 ms, more than running them (~40 ms for 16,000 purchases). The overview's discounts per hour
  went from ~250 to ~45 ms.
- *Grant days from the redemptions already counted by status*: the campaign page no longer runs
  `given_in_campaign`, a fourth join of the same purchases for a Stars figure it already had.
- *The user page*: its codes in one query (`PromoCodes.get_many`: 10 statements instead of 57) and an index
  `(user_id, created_at)` on purchases (migration 0009; the only index naming `user_id` led with `status`, so the
  page read every purchase's entry).

**Why the campaign page still misses.** Its SQL (the limit column) is ~300-400 ms of the ~380-520, spread over
several statements that each grow with the campaign: its codes counted by status (700,000 index entries of
`(campaign_id, status)`, ~100 ms, also ~95 ms of "campaigns, search and filter", whose list shows each campaign's
code total), the discounts applied per hour (~80 ms) and the Stars per hour and paid totals (~60-70 ms each, the
same purchases read twice), the attempts of the window's first partial hour (~30 ms, twice). The rest, about a
fifth in a pyinstrument profile of the page, is its Python (the forms, three SVG charts, 50 code rows).

**What would close it**, largest first: codes by status kept as counters per campaign and status (changed in the
same statements that insert codes or change their status, or by a trigger on `UPDATE OF status` that the
redeem's `used_total` update does not fire) instead of counting 700,000 entries per view; the campaign's payment
figures (paid count, Stars, discount Stars, Stars per hour) from one statement instead of two, or from a rollup of
payments folded like the attempts' (a purchase's `paid_at` and amounts do not change once PAID); reading the
window's first partial hour as the folded hour minus its earlier part when that part is the smaller.

**The 7-day overview** (not a check: every seeded redemption and purchase is in its window) takes ~1.2 s: 130,000
purchases looked up one by one, and 220,000 redemptions counted twice; a hash join of all redemptions was as
slow (~0.8-2.0 s in earlier runs). A payments rollup would serve it as the attempts' does.

**Load.** Other sessions ran their tests beside this run (load average 2-4). An earlier run under load 10-12, with
the rollup but before the last two fixes, took 507 ms for the overview and 1,511 ms for the campaign page; one
under load 2-4 with the same code, 319 and 768 ms.
""",
}
