"""Client side: `batchyard run` and the `batchyard batches` commands, over any Anthropic-compatible
batch API.

``run`` (and ``run_async``) is ``batchyard run`` as a library call: a table of rows in, the
same table with each row's answer out (:mod:`batchyard.client.runner`).
"""

from batchyard.client.runner import RunOptions, RunResult, Summary, run, run_async
from batchyard.client.tables import Table

__all__ = ["RunOptions", "RunResult", "Summary", "Table", "run", "run_async"]
