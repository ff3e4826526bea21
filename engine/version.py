"""The engine's version, written into every checkpoint it saves (``chorus_version``)."""

__version__ = "0.1.0"
