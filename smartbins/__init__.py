"""smartbins: what several parts share (codes, wire protocol, settings, registry, servers, CLI)."""

__version__ = "0.1.0"
