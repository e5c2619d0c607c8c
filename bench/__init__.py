"""starpromo benchmarks (SPEC 12): each workload measured beside its limit in the same run.

Run everything with ``make bench`` (starts a throwaway PostgreSQL and Redis through
``scripts/with-services.sh``); ``python -m bench --help`` lists the options.
"""
