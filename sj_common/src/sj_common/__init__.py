"""sj_common: data sets, metrics and the one training engine shared by the sj-plugins packages.

Submodules are imported on demand (``sj_common.data``, ``sj_common.engine``, ``sj_common.metrics``,
``sj_common.compat``) so that importing one piece never pulls in tonic or plotting libraries.
"""

# Lockstep versioning: sj-common, sj-calib, sj-bkd and sj-transfer share this one version and are released
# together; each plugin requires sj-common >= this version and < the next minor (0.x) / major release.
# Change it only with `python scripts/set_version.py X.Y.Z` (all four packages and the bounds);
# tests/test_release.py checks that they agree.
__version__ = "0.1.0"
