"""A bounded run of the stateful server fuzzer (fuzz_server.py): a fixed seed and two random
ones, about 25 s in all. `make fuzz-server` runs it for longer (FUZZ_SECONDS). The fixed
seed must also reach the campaign rules: at least one WIN with a code, checked against the
fuzzer's model of the codes handed out."""
import os
import random

import pytest

import fuzz_server as F

FIXED_SEED = 20240601


@pytest.mark.parametrize("which", ["fixed", "random-1", "random-2"])
def test_fuzz_server(which, tmp_path):
    seed = FIXED_SEED if which == "fixed" else random.SystemRandom().randrange(1, 2 ** 32)
    seconds = 11 if which == "fixed" else 7
    rc = F.run(seed, seconds=seconds, batches=None, batch_size=150, out_dir=str(tmp_path),
               minimize_s=0, slow_ms=2000, heavy_every=3)
    assert rc == 0, (f"fuzz_server, seed {seed}: {F.LAST_FAILURE} (the output has the last "
                     f"commands and the logs; replay: python-tests/fuzz_server.py --seed {seed} "
                     f"--seconds {seconds})")
    if which == "fixed":
        # the campaign rules are exercised: code prizes got codes and handed them out
        assert F.LAST_CODE_WINS > 0, "no WIN with a code in the fixed seed's run"
