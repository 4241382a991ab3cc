"""sj_bkd."""

__version__ = "0.1.0"
