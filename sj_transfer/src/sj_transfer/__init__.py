"""sj_transfer."""

__version__ = "0.1.0"
