"""The internal HTTP API (SPEC 7): Flask, wired through the container."""

from entrypoints.http.app import create_app

__all__ = ["create_app"]
