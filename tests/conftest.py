"""Settings of the test session.

The suite's networks are small on purpose, and a test asking for ``-j 2`` is checking the local
pool (workers, task files, signals, merging). By default small work runs in one process
(``regress.shard.pool_pays``: the pool's start would cost more than it saves), so the session
sets the pool's start cost to 0 for every test and its subprocesses; ``tests/test_shard.py``
checks the default rule with the variable removed.
"""

import os

os.environ.setdefault("T2C_POOL_START_S", "0")
