"""Shared plumbing of the ops commands: one container per invocation, who acts (``cli:<login>``), errors to stderr
naming the flag, JSON and table output, codes read without echoing them, and the report file."""

from __future__ import annotations

import getpass
import json
import os
import queue
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, cast

import attrs
import click

from domain.audit import MAX_ACTOR
from domain.campaigns import CampaignView
from domain.code_files import GENERATED_COLUMNS, GeneratedRow
from domain.errors import ConfigurationError, DomainError, ValidationError
from domain.model import Campaign, PromoCode

if TYPE_CHECKING:
    from entrypoints.container import Container

EXIT_FAILURE = 1
EXIT_USAGE = 2
ACTOR_PREFIX = "cli:"


def get_container(ctx: click.Context, *, require_pepper: bool = True) -> Container:
    """The container of this invocation: the one a caller passed as ``obj`` (tests), else built once
    from the environment and kept on the root context for the rest of the invocation. Commands that
    never hash a code (``db upgrade``) pass ``require_pepper=False``."""
    # Imported here, as every heavy module of the CLI: `starpromo --help` and a usage error load none of them.
    from dependency_injector import containers

    from entrypoints.container import build_container
    from entrypoints.settings import Settings

    root = ctx.find_root()
    # ``Container()`` returns a dynamic copy of the declarative class, hence the base-class check.
    if not isinstance(root.obj, containers.Container):
        root.obj = build_container(None if require_pepper else Settings.from_env(require_pepper=False))
    return cast("Container", root.obj)


def login_name() -> str:
    """Who runs the command: the login name (``getpass.getuser``: LOGNAME, USER, LNAME, USERNAME, then the
    password database); without any of them (a container's bare uid) ``$USER`` or ``uid<N>``."""
    try:
        name = getpass.getuser()
    except Exception:  # OSError (3.13+) or KeyError: no variable set and no passwd entry
        name = os.environ.get("USER") or f"uid{os.getuid()}"
    # The audit actor is 1..64 printable characters.
    name = "".join(ch for ch in name if ch.isprintable() and not ch.isspace()) or "unknown"
    return name[:MAX_ACTOR - len(ACTOR_PREFIX)]


def cli_actor() -> str:
    """The audit actor of every change made through the CLI (SPEC 7): ``cli:<login name>``."""
    return ACTOR_PREFIX + login_name()


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    click.echo(message, err=True)
    raise click.exceptions.Exit(code)


def field_flag(field: str, flags: Mapping[str, str] | None = None) -> str:
    """``discount_percent`` -> ``--discount-percent`` (or the name ``flags`` maps it to)."""
    if flags and field in flags:
        return flags[field]
    return "--" + field.replace("_", "-")


@contextmanager
def cli_errors(flags: Mapping[str, str] | None = None) -> Iterator[None]:
    """Domain and configuration errors -> one readable stderr line each and a non-zero exit. A field the error
    names is shown as the flag that sets it (``--`` + the field with dashes, unless ``flags`` maps it):
    bad input exits 2 (like a bad flag), a refused change 1."""
    try:
        yield
    except ConfigurationError as exc:
        fail(f"configuration error: {exc.message}", EXIT_USAGE)
    except ValidationError as exc:
        for e in exc.errors:
            click.echo(f"error: {field_flag(e['field'], flags)}: {e['message']}", err=True)
        raise click.exceptions.Exit(EXIT_USAGE) from None
    except DomainError as exc:
        field = exc.details.get("field") if isinstance(exc.details, dict) else None
        where = f"{field_flag(field, flags)}: " if isinstance(field, str) else ""
        fail(f"error: {where}{exc.code}: {exc.message}")


def iso(value: datetime) -> str:
    """UTC, ISO 8601 with ``Z`` (as the internal API writes timestamps)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def when(value: datetime | None) -> str:
    """A timestamp for a table cell (UTC, to the minute); ``-`` for none."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [json_value(v) for v in value]
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), str):
        return value.value
    return value


def _row_json(row: Campaign | PromoCode) -> dict[str, Any]:
    return {k: iso(v) if isinstance(v, datetime) else json_value(v)
            for k, v in attrs.asdict(row, recurse=False).items()}


def campaign_json(campaign: Campaign | CampaignView) -> dict[str, Any]:
    """The campaign JSON of SPEC 7: the ``promo_campaigns`` columns, plus ``codes_total`` and ``codes_by_status``
    when the codes were counted (a :class:`CampaignView`)."""
    if isinstance(campaign, CampaignView):
        return {**_row_json(campaign.campaign), "codes_total": campaign.codes_total,
                "codes_by_status": {s.value: n for s, n in campaign.codes_by_status.items()}}
    return _row_json(campaign)


def code_json(code: PromoCode) -> dict[str, Any]:
    """The code JSON of SPEC 7: the ``promo_codes`` columns (``code_hash`` included; the plaintext is never stored)."""
    return _row_json(code)


def status_text(row: Campaign | PromoCode) -> str:
    return row.status.value + (f" ({row.paused_reason.value})" if row.paused_reason is not None else "")


def cap_text(used: int, cap: int | None) -> str:
    """``used/cap``; ``-`` for no cap (unlimited)."""
    return f"{used}/{'-' if cap is None else cap}"


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=json_value))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def series_table(series: Sequence[Mapping[str, Any]]) -> str:
    """The hourly ``series`` of the dashboard and the campaign stats, one line per hour."""
    rows = [[str(h["hour"]), str(h["attempts"]), str(h["accepted"]), str(h["applied"]), str(h["stars_revenue"])]
            for h in series]
    return table(["hour", "attempts", "accepted", "applied", "stars_revenue"], rows)


def more_hint(next_cursor: int | None) -> None:
    if next_cursor is not None:
        click.echo(f"more: add --cursor {next_cursor}")


def read_code(prompt: str = "Code") -> str:
    """One code, read so that no other process sees it: the first line of standard input, or a prompt that does
    not echo when standard input is a terminal. Never from the command line, where ``ps`` shows it."""
    stdin = sys.stdin  # (CliRunner puts its input here)
    if stdin.isatty():
        value = str(click.prompt(prompt, hide_input=True, err=True, default="", show_default=False))
    else:
        value = stdin.readline()
    value = value.strip("\r\n")
    if not value.strip():
        fail("error: code: none given; type it at the prompt or pipe it on standard input "
             "(e.g. from a file or a password manager)", EXIT_USAGE)
    return value


def refuse_code_arguments(ctx: click.Context) -> None:
    """A code typed after the command would sit in the shell history and the process list: refuse it without
    echoing it (click's own error would repeat the argument)."""
    if ctx.args:
        fail(f"error: {ctx.command_path} takes no arguments: the code is read from standard input or a hidden "
             "prompt, never from the command line (where ps would show it)", EXIT_USAGE)


def _csv_cell(value: str) -> str:
    """One value as ``csv.writer`` (minimal quoting) writes it."""
    import csv
    import io

    if not value:
        return ""  # (a one-field row of "" would be written as "" to tell it from an empty line)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([value])
    return buf.getvalue()[:-1]


class ReportFile:
    """A report CSV written to a private temporary file next to ``path`` and moved into place only
    after the database commit (``publish``), so a failed run leaves no report of codes that do not
    exist. The file holds plaintext codes: it is created readable by its owner only (0600).

    Rows are formatted and written by a background thread (at most two batches queued), so the file work of
    one batch overlaps the database work of the next; ``close`` waits for it and raises what it raised (a full
    disk), and it runs before the commit."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        import csv

        self.path = path
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent or Path("."))
        self._tmp = Path(tmp)
        self._file: IO[str] = os.fdopen(fd, "w", encoding="utf-8", newline="")
        # extrasaction="ignore": the rows come from domain.batch.report_row; checking every key of a
        # million rows against the header costs more than writing them.
        self._writer = csv.DictWriter(self._file, fieldnames=list(columns), lineterminator="\n",
                                      extrasaction="ignore")
        self._writer.writeheader()
        self._columns = list(columns)
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=2)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.rows = 0

    def write(self, rows: Sequence[Mapping[str, str]]) -> None:
        rows = list(rows)
        self._submit(lambda: self._writer.writerows(rows))
        self.rows += len(rows)

    def write_generated(self, shared: Mapping[str, str], rows: Sequence[GeneratedRow]) -> None:
        self._submit(lambda: self._write_generated(shared, rows))
        self.rows += len(rows)

    def _write_generated(self, shared: Mapping[str, str], rows: Sequence[GeneratedRow]) -> None:
        """The shared columns are quoted once per batch; each line only joins its own four cells (ids are
        digits, generated codes letters and digits: quoted by the csv module only when that does not hold)."""
        cells = {k: _csv_cell(v) for k, v in shared.items()}
        slots = {name: i for i, name in enumerate(GENERATED_COLUMNS)}
        parts = [(slots[c], "") if c in slots else (-1, cells.get(c, "")) for c in self._columns]
        lines = []
        for row in rows:
            safe = [v if v.isalnum() else _csv_cell(v) for v in row]
            lines.append(",".join(safe[i] if i >= 0 else text for i, text in parts))
        if lines:
            self._file.write("\n".join(lines) + "\n")

    def _submit(self, job: Callable[[], None]) -> None:
        if self._error is not None:
            raise self._error
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="report-writer", daemon=True)
            self._thread.start()
        self._jobs.put(job)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._error is None:
                try:
                    job()
                except BaseException as exc:  # handed to the caller by the next write or by close
                    self._error = exc

    def _drain(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        self._drain()
        if self._error is not None:
            raise self._error
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def publish(self) -> None:
        self.close()
        os.replace(self._tmp, self.path)

    def discard(self) -> None:
        self._drain()
        if not self._file.closed:
            self._file.close()
        self._tmp.unlink(missing_ok=True)


def check_out_path(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        fail(f"error: --out: {path} already exists (it may hold the codes of an earlier run); "
             "choose another path or pass --overwrite", EXIT_USAGE)
    if path.is_dir():
        fail(f"error: --out: {path} is a directory", EXIT_USAGE)
    if not path.parent.exists():
        fail(f"error: --out: directory {path.parent} does not exist", EXIT_USAGE)


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[Any]:
    """A progress bar on a terminal (stderr); a silent counter otherwise."""
    if sys.stderr.isatty():
        with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
            yield bar.update
    else:
        yield lambda n: None
