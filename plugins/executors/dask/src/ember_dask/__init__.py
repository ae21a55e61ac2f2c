"""ember-dask: run ember's stages on a Dask distributed cluster.

``master="dask://HOST:PORT"`` connects to a running Dask scheduler; ``master="dask-local[N]"``
(or ``"dask"``) starts N local Dask workers for development. See ``docs/dask.md``.
"""

from __future__ import annotations

from ember_dask._cluster import LocalDaskCluster, shutdown_local_clusters
from ember_dask._executor import DaskExecutor, DaskSchedulerLostError

__all__ = ["DaskExecutor", "DaskSchedulerLostError", "LocalDaskCluster",
           "shutdown_local_clusters"]
__version__ = "0.1.0"
