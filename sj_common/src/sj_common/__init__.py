"""sj_common: data sets, metrics and the one training engine shared by the sj-plugins packages.

Submodules are imported on demand (``sj_common.data``, ``sj_common.engine``, ``sj_common.metrics``,
``sj_common.compat``) so that importing one piece never pulls in tonic or plotting libraries.
"""

__version__ = "0.1.0"
