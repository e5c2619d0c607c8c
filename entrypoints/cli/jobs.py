"""``starpromo worker``, ``starpromo scheduler`` and ``starpromo jobs run NAME`` (SPEC 6, 10)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import click

from adapters.jsonlog import configure_json_logging, json_default
from entrypoints.cli._ops import EXIT_USAGE, cli_errors, fail, get_container

if TYPE_CHECKING:
    from entrypoints.container import Container


def register(cli: click.Group) -> None:
    cli.add_command(worker)
    cli.add_command(scheduler)
    cli.add_command(jobs)


def _started(ctx: click.Context) -> Container:
    """Build the container and everything start-up must validate (settings, alert policy, channels, products):
    a bad value stops here with a message naming the variable, before any job runs."""
    from entrypoints.worker.process import use_container

    with cli_errors():
        container = get_container(ctx)
        container.settings()
        container.alert_policy()
        container.notifier()
        container.products()  # a products file Telegram's sendInvoice would refuse stops here, naming the product
    use_container(container)
    return container


@click.command()
@click.option("--burst", is_flag=True, help="Exit once the queue is empty (RQ) instead of waiting for work.")
@click.pass_context
def worker(ctx: click.Context, burst: bool) -> None:
    """Run the maintenance and alert-delivery jobs.

    With REDIS_URL: an RQ worker on the ``starpromo`` queue (fed by ``starpromo scheduler``).
    Without it: the periodic jobs on an in-process timer, in the foreground.
    """
    from adapters.prometheus import multiprocess_dir, one_file_per_forking_parent, use_multiprocess_dir
    from entrypoints.worker.jobs import periodic_jobs, run_job

    configure_json_logging(force=False)
    metrics_dir = multiprocess_dir()
    if metrics_dir is not None:
        # RQ forks a work-horse per job, one at a time: they share one set of metric files (not one per job).
        use_multiprocess_dir(metrics_dir, one_file_per_forking_parent(os.getpid()))
    container = _started(ctx)
    redis_url = container.settings().redis_url
    if redis_url:
        from adapters.rq.queue import redis_connection, run_worker

        run_worker(redis_connection(redis_url), burst=burst)
        return
    from entrypoints.worker.timer import InProcessTimer

    timer = InProcessTimer(periodic_jobs(), lambda name: run_job(name, container))
    if burst:
        timer.run_all_once()
        return
    from entrypoints.bot.process import start_outbox_worker

    # The bot's replies are delivered continuously here (with Redis: by `serve` and run_telegram_outbox).
    start_outbox_worker(container)
    try:
        timer.loop()
    except KeyboardInterrupt:
        timer.stop()


@click.command()
@click.option("--burst", is_flag=True, help="Register, enqueue what is due once, and exit.")
@click.option("--interval", default=10, show_default=True, type=click.IntRange(1, 60),
              help="Seconds between checks for due jobs.")
@click.pass_context
def scheduler(ctx: click.Context, burst: bool, interval: int) -> None:
    """Register the periodic jobs (fixed ids: starting twice never duplicates) and run the scheduler loop.

    Needs REDIS_URL; without Redis, ``starpromo worker`` runs the jobs on an in-process timer.
    """
    from entrypoints.worker.jobs import periodic_jobs

    configure_json_logging(force=False)
    container = _started(ctx)
    redis_url = container.settings().redis_url
    if not redis_url:
        fail("error: REDIS_URL: the scheduler needs Redis; without it run `starpromo worker`, "
             "which runs the periodic jobs on an in-process timer", EXIT_USAGE)
    from adapters.rq.queue import redis_connection
    from adapters.rq.schedule import register_schedule, run_scheduler

    connection = redis_connection(redis_url)
    outcome = register_schedule(connection, periodic_jobs())
    click.echo(json.dumps({"event": "schedule_registered", "jobs": outcome}))
    run_scheduler(connection, interval=interval, burst=burst)


@click.group()
def jobs() -> None:
    """Run a maintenance job now, in-process."""


@jobs.command("list")
def list_() -> None:
    """Print the job names and their schedule."""
    from entrypoints.worker.jobs import periodic_jobs

    for job in periodic_jobs():
        click.echo(f"{job.name}  every {job.every_minutes} min  ({job.cron})")


@jobs.command("run")
@click.argument("name")
@click.pass_context
def run(ctx: click.Context, name: str) -> None:
    """Run job NAME once now and print its JSON summary line (counts, duration_ms)."""
    from entrypoints.worker.jobs import JOBS, run_job

    if name not in JOBS:
        fail(f"error: NAME: unknown job {name!r}; known jobs: {', '.join(JOBS)}", EXIT_USAGE)
    configure_json_logging(force=False)
    container = _started(ctx)
    with cli_errors():
        summary = run_job(name, container)
    click.echo(json.dumps(summary, default=json_default))
