"""The report CSV of generated codes (SPEC 10 columns), built in memory and answered once.

Why in memory rather than streamed: the codes are committed only after the last row is written
(``BatchService`` commits after ``ReportSink.close``); a streamed answer would have sent codes of a batch that
could still roll back, under a 201 already sent. 100,000 codes make about 20 MB; nothing touches the disk, so
no copy of the plaintext outlives the response.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from flask import Response

from domain.code_files import GENERATED_COLUMNS, REPORT_COLUMNS, GeneratedRow, ReportRow


class CsvReport:
    """A ``ReportSink`` writing the report rows to a string buffer."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")
        self._writer.writerow(REPORT_COLUMNS)
        self.rows = 0

    def write(self, rows: Sequence[ReportRow]) -> None:
        self._writer.writerows([row[c] for c in REPORT_COLUMNS] for row in rows)
        self.rows += len(rows)

    def write_generated(self, shared: ReportRow, rows: Sequence[GeneratedRow]) -> None:
        template = [shared[c] for c in REPORT_COLUMNS]
        slots = [REPORT_COLUMNS.index(c) for c in GENERATED_COLUMNS]
        for row in rows:
            line = list(template)
            for slot, value in zip(slots, row, strict=True):
                line[slot] = value
            self._writer.writerow(line)
        self.rows += len(rows)

    def close(self) -> None:
        """Nothing to flush: the buffer is answered after the commit."""

    def response(self, filename: str) -> Response:
        body = self._buffer.getvalue().encode("utf-8")
        self._buffer = io.StringIO()
        response = Response(body, status=201, mimetype="text/csv")
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        # The only copy of the plaintext codes: no cache, proxy or browser may keep it.
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Codes-Generated"] = str(self.rows)
        return response
