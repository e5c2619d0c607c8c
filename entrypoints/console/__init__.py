"""The ops console (SPEC 14): server-rendered pages under ``/ops/`` over the same domain services as the API.

``register_console(app, container)`` adds it to the app when ``OPS_SESSION_SECRET`` is set. Everything it
shows (styles, the one small script, the charts — SVG drawn on the server) ships inside this package.
"""

from entrypoints.console.app import console_enabled, register_console

__all__ = ["console_enabled", "register_console"]
