"""Settings of the test session.

The suite's networks are small on purpose, and a test asking for ``-j 2`` is checking the local
pool (workers, task files, signals, merging). By default small work runs in one process
(``regress.shard.pool_pays``: the pool's start would cost more than it saves), so the session
sets the pool's start cost to 0 for every test and its subprocesses; ``tests/test_shard.py``
checks the default rule with the variable removed.
"""

import os

os.environ.setdefault("T2C_POOL_START_S", "0")

import pytest  # noqa: E402
import torch  # noqa: E402  (most modules use it; imported once here to read its default)


@pytest.fixture(autouse=True, scope="module")
def _torch_threads_stay_in_their_module():
    """A module that pins torch's thread count (``test_crosscheck``, ``test_frontend``: repeatable
    float sums) leaves it as it found it. Float reductions, and so the weights a recipe trains,
    depend on it: before this fixture every module after those two trained the zoo with one
    thread in the full run, and with all cores when run alone, and one model's LSB share against
    fake-quant differed between the two (inception_mini, one 1x1 conv: 5.88 % vs within the
    zoo test's 1 % bound)."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
