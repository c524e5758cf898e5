"""Entry point of the model worker: ``python -m lwdock.runner --root DIR ...``.

lwdock starts this inside a learnware's env (see ``lwdock.check.runner``); it is
not meant to be run by hand. It can also be run by file path with ``python -I``,
in which case lwdock's own directory is appended to ``sys.path`` when lwdock is
not importable from the env.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    import importlib.util
    from pathlib import Path

    if __package__ in (None, "") and importlib.util.find_spec("lwdock") is None:
        sys.path.append(str(Path(__file__).resolve().parent.parent))
    if "--zygote" in sys.argv:  # the fork server of an environment (lwdock.check.zygote)
        from lwdock.check.zygote import main as serve_forks

        sys.exit(serve_forks(sys.argv[1:]))
    from lwdock.check.worker import main

    sys.exit(main())
