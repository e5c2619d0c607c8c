"""Interfaces (typing.Protocol) the core needs from the outside world. Imports only ``domain``."""
