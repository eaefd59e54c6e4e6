"""No heap allocation per call in steady state at levels 0, 1, 3 and 5 (issue 2's benchmark target): the number
of allocations valgrind counts is the same for 21 calls and for 2100."""

import re
import shutil

import pytest

from conftest import FIXDIR, MODULE_DIR, require, run


def allocs(level, calls):
    proc = run(["valgrind", require(FIXDIR / "tvm_driver"), "bench", MODULE_DIR, calls], level=level, dest="/dev/null",
               timeout=300)
    m = re.search(r"total heap usage: ([\d,]+) allocs", proc.stderr)
    assert m, proc.stderr[-2000:]
    return int(m.group(1).replace(",", ""))


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.parametrize("level", ["0", "1", "3", "5"])
def test_no_allocation_per_call(level):
    assert allocs(level, 21) == allocs(level, 2100)
