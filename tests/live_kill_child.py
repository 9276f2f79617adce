"""A live process that is killed with SIGKILL between the two legs of a hedge.

Run by tests/test_live_legrisk.py::test_kill_9_between_the_legs: opens the carry
hedge on the fault-injecting Binance, whose state is saved to a file after every
order; right after the perp order is on the exchange this process kills itself
with SIGKILL (the spot order is still on its way), so nothing after that runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from live_fakes import FakeBinance  # noqa: E402
from test_live_legrisk import make, open_carry  # noqa: E402

if __name__ == "__main__":
    tmp = Path(sys.argv[1])
    server = FakeBinance(state_file=str(tmp / "exchange.json"), kill_after="perp", spot_delay_s=2.0)
    ex, *_ = make(tmp, server)
    open_carry(ex)
    print("not killed")  # the test fails if this is reached
