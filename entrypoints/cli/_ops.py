"""Shared plumbing of the ops commands: one container per invocation, errors to stderr, JSON output."""

from __future__ import annotations

import json
import os
import queue
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any, NoReturn, cast

import click
from dependency_injector import containers

from domain.batch import GENERATED_COLUMNS, GeneratedRow
from domain.errors import ConfigurationError, DomainError, ValidationError
from domain.model import Campaign
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings

EXIT_FAILURE = 1
EXIT_USAGE = 2


def get_container(ctx: click.Context, *, require_pepper: bool = True) -> Container:
    """The container of this invocation: the one a caller passed as ``obj`` (tests), else built once
    from the environment and kept on the root context for the rest of the invocation. Commands that
    never hash a code (``db upgrade``) pass ``require_pepper=False``."""
    root = ctx.find_root()
    # ``Container()`` returns a dynamic copy of the declarative class, hence the base-class check.
    if not isinstance(root.obj, containers.Container):
        root.obj = build_container(None if require_pepper else Settings.from_env(require_pepper=False))
    return cast(Container, root.obj)


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
    """Domain and configuration errors -> one readable stderr line each and a non-zero exit."""
    try:
        yield
    except ConfigurationError as exc:
        fail(f"configuration error: {exc.message}", EXIT_USAGE)
    except ValidationError as exc:
        for e in exc.errors:
            name = field_flag(e["field"], flags) if flags is not None else e["field"]
            click.echo(f"error: {name}: {e['message']}", err=True)
        raise click.exceptions.Exit(EXIT_USAGE if flags is not None else EXIT_FAILURE) from None
    except DomainError as exc:
        fail(f"error: {exc.code}: {exc.message}")


def json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [json_value(v) for v in value]
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), str):
        return value.value
    return value


def campaign_json(campaign: Campaign) -> dict[str, Any]:
    """The SPEC 3 columns (``code_hash`` included; the plaintext is never stored), exactly as the
    internal API shows a campaign."""
    from entrypoints.http.schemas import campaign_json as api_campaign_json

    return {k: json_value(v) for k, v in api_campaign_json(campaign).items()}


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=json_value))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


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
