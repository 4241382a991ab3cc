"""sj_calib."""

__version__ = "0.1.0"
