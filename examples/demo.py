"""The learnware story end to end, on the bundled sample learnwares.

    python examples/demo.py [--dock DIR]

1. create a dock (a temporary one unless --dock is given);
2. submit the sample learnwares, with the full usability checks;
3. list the dock.
Every step is a call into the lwdock Python API; the same steps from the shell
are printed beside each one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_learnwares"
sys.path.insert(0, str(SAMPLES))


def say(text: str) -> None:
    print(text, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dock", type=Path, help="dock directory (default: a temporary one)")
    args = parser.parse_args(argv)

    import market

    from lwdock import Dock

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lwdock-demo-") as tmp:
        path = args.dock or Path(tmp) / "dock"
        say(f"== 1. dock at {path}   ($ lwdock --dock {path} init --gamma {market.GAMMA})")
        dock = Dock.init(path, gamma=market.GAMMA)

        zips = sorted(SAMPLES.glob("*.zip"))
        if not zips:
            say("no sample learnwares; run `make samples` first")
            return 1
        say(f"== 2. submit {len(zips)} sample learnwares with usability checks   ($ lwdock submit sample_learnwares/*.zip)")
        for z in zips:
            entry = dock.submit(z, exist_ok=True)
            say(f"   {z.name:<20} {entry['id'][:12]}  {entry['status']}")

        say("== 3. the dock   ($ lwdock list)")
        for e in dock.list():
            sem = e["semantic"]
            say(f"   {e['id'][:12]}  {sem['Name']['Values']:<14} {sem['Task']['Values'][0]:<15} {e['status']}")
    say(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
