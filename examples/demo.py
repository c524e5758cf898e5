"""The learnware story end to end, on the bundled sample learnwares.

    python examples/demo.py [--dock DIR] [--labels N]

A user has 400 unlabelled handwritten digits (mostly 2s and 3s, some 0, 1, 4, 5)
and no model. The demo:

1. creates a dock (a temporary one unless --dock is given);
2. builds the sample learnwares if they are missing, and submits them with the
   full usability checks (each model runs in its sandbox);
3. describes the user's data by an RKME specification, made locally;
4. searches the dock: the best single learnwares and the best mixture;
5. reuses the mixture two ways without labels (job selector, average) and one
   way with a few labels (feature augmentation);
6. scores everything on the user's rows (the demo knows their labels; the
   data-free steps never see them) next to the naive choices: the mean and the
   best learnware in the market, and a model trained on the few labels alone.

Every step is one call into the lwdock Python API; the same step from the shell
is printed under it. Output is rich on a terminal and plain when piped.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_learnwares"
sys.path.insert(0, str(SAMPLES))


class Out:
    """Rich tables on a terminal, plain aligned text when piped (stdout is data)."""

    def __init__(self) -> None:
        self.rich = sys.stdout.isatty()
        if self.rich:
            from rich.console import Console

            self.console = Console()

    def step(self, title: str, shell: str | None = None) -> None:
        if self.rich:
            self.console.rule(f"[bold]{title}")
            if shell:
                self.console.print(f"[dim]$ {shell}", highlight=False, soft_wrap=True)
        else:
            print(f"\n== {title}" + (f"\n$ {shell}" if shell else ""), flush=True)

    def line(self, text: str) -> None:
        if self.rich:
            self.console.print(text, highlight=False)
        else:
            print(text, flush=True)

    def table(self, columns: list[str], rows: list[list[object]], title: str | None = None) -> None:
        cells = [[_cell(v) for v in r] for r in rows]
        if self.rich:
            from rich.table import Table

            t = Table(title=title, title_justify="left")
            for c in columns:
                t.add_column(c, justify="right" if cells and _numeric(cells[0][columns.index(c)]) else "left")
            for r in cells:
                t.add_row(*r)
            self.console.print(t)
            return
        if title:
            print(title)
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
        print("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
        for r in cells:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip(), flush=True)


def _cell(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def _numeric(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def label(item: dict) -> str:
    """A learnware's alias, else its short id (a dock made elsewhere may have no aliases)."""
    return item.get("alias") or item["id"][:12]


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def ensure_samples(out: Out) -> list[Path]:
    """The sample zips; built from scikit-learn's bundled data when missing."""
    zips = sorted(SAMPLES.glob("*.zip"))
    if not zips:
        out.line("no sample learnwares yet: building them (make samples)")
        import build

        build.main()
        zips = sorted(SAMPLES.glob("*.zip"))
    return zips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dock", type=Path, help="dock directory (default: a temporary one)")
    parser.add_argument("--labels", type=int, default=50, help="labelled user rows for feature augmentation (default 50)")
    args = parser.parse_args(argv)

    import market

    from lwdock import Dock, RKMETableSpec
    from lwdock.reuse.api import reuse
    from lwdock.reuse.baseline import BaselineModel
    from lwdock.search.api import search

    out = Out()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lwdock-demo-") as tmp:
        work = Path(tmp)
        path = args.dock or work / "dock"
        # 1. a dock: no kernel parameter (it picks its search kernel per feature space)
        out.step(f"1. create a dock at {path}", f"lwdock --dock {path} init")
        dock = Dock.init(path)

        # 2. submit: each zip is checked (environment, model loads, predicts, output shape) then stored
        zips = ensure_samples(out)
        out.step(f"2. submit {len(zips)} sample learnwares with usability checks",
                 f'for z in sample_learnwares/*.zip; do lwdock --dock {path} submit "$z" --alias "$(basename "$z" .zip)"; done')
        rows = []
        for z in zips:
            entry = dock.submit(z, alias=z.stem, exist_ok=True)
            checks = entry.check.checks
            rows.append([entry.alias or z.stem, entry.short_id, entry.semantic.task,
                         f"{sum(1 for c in checks if c['ok'])}/{len(checks)}", entry.status])
        out.table(["learnware", "id", "task", "checks passed", "status"], rows)

        # 3. the user's data: 400 held-out digits; a few of them get labels
        X, y = market.digits_user()
        rng = np.random.default_rng(0)
        order = rng.permutation(len(X))
        lab, ev = order[: args.labels], order[args.labels:]
        X_lab, y_lab, X_ev, y_ev = X[lab], y[lab], X[ev], y[ev]
        np.savetxt(work / "user.csv", X, delimiter=",", fmt="%g")
        np.savetxt(work / "labeled.csv", np.column_stack([X_lab, y_lab]), delimiter=",", fmt="%g")
        np.savetxt(work / "scoring.csv", np.column_stack([X_ev, y_ev]), delimiter=",", fmt="%g")
        shares = ", ".join(f"{c}: {np.mean(y == c):.0%}" for c in np.unique(y))
        out.step("3. describe the user's data by an RKME spec (made locally; no rows leave)",
                 "lwdock spec table user.csv -o user_spec.json")
        out.line(f"files for the shell commands: {work}")
        out.line(f"user data: {X.shape[0]} rows x {X.shape[1]} pixels; classes {shares} (labels unknown to search)")
        spec = RKMETableSpec(K=100, random_state=0).fit(X)
        spec.save(work / "user_spec.json")
        out.line(f"spec: {spec.z_.shape[0]} weighted points stand for {spec.num_points_} rows")

        # 4. search: semantic filter (Classification) + MMD ranking + the best mixture
        out.step("4. search the dock",
                 f"lwdock --dock {path} search --spec user_spec.json --task Classification -k 5 --json > result.json")
        res = search(dock, work / "user_spec.json", task="Classification", k=5, max_mixture=3)
        singles = res.to_dict()["singles"]  # the rows `--json` prints
        out.table(["rank", "learnware", "score", "MMD²"],
                  [[s["rank"], label(s), s["score"], s["mmd2"]] for s in singles],
                  title="best single learnwares")
        if res.mixture:
            m = res.mixture.to_dict()
            out.table(["learnware", "weight"], [[a or i[:12], w] for a, i, w in zip(m["aliases"], m["ids"], m["weights"])],
                      title=f"best mixture (MMD² {m['mmd2']:.4f}, score {m['score']:.4f})")
        else:
            out.line("no mixture beats the best single learnware")
        found = res.to_dict() if res.mixture else res.ids[:1]  # no mixture: reuse the top single
        top1 = label(singles[0])

        # 5a. job selector: route each row to the mixture learnware whose spec explains it
        out.step("5a. reuse the mixture: job selector (no labels)",
                 f"lwdock --dock {path} reuse --from-search result.json --method job-selector --data user.csv --preds js.csv")
        with reuse(dock, found, "job-selector", data=X) as ens:
            acc_js = accuracy(y_ev, ens.predict(X_ev))
            routed = np.bincount(ens.reuser.route(X_ev), minlength=len(ens.learnwares))
        out.line("rows routed: " + ", ".join(f"{label(lw)} {n}" for lw, n in zip(ens.learnwares, routed)))

        # 5b. average: every mixture learnware on every row, weighted by the mixture weights
        out.step("5b. reuse the mixture: weighted average of probabilities (no labels)",
                 f"lwdock --dock {path} reuse --from-search result.json --method average --data user.csv --preds avg.csv")
        with reuse(dock, found, "average", data=X) as ens:
            acc_avg = accuracy(y_ev, ens.predict(X_ev))
        out.line(f"{len(ens.learnwares)} learnwares averaged")

        # 5c. feature augmentation: a linear head on [pixels, learnware outputs], from a few labels
        all_ids = [e.alias or e.short_id for e in dock.list(task="Classification") if e.semantic.input_dim == 64]
        top_ids = res.ids[:3]
        out.step(f"5c. reuse with {args.labels} labels: feature augmentation on the top 3 learnwares",
                 f"lwdock --dock {path} reuse --id {','.join(label(s) for s in singles[:3])} "
                 "--method feature-augment --labeled labeled.csv -o fa.lwe")
        with reuse(dock, top_ids, "feature-augment", labeled=(X_lab, y_lab)) as ens:
            acc_fa = accuracy(y_ev, ens.predict(X_ev))
            ens.save(work / "fa.lwe")
        out.line(f"saved the ensemble as fa.lwe ({(work / 'fa.lwe').stat().st_size // 1024} KiB); "
                 "apply it later with `lwdock predict fa.lwe new.csv -o preds.csv`")
        self_trained = BaselineModel(task="classification", n_classes=10).fit(X_lab, y_lab)
        acc_self = accuracy(y_ev, self_trained.predict(X_ev))

        # 6. the naive choices: every digits learnware on the user's rows (scored with the true labels)
        out.step("6. baselines: each market learnware alone on the user's rows",
                 f"lwdock --dock {path} reuse --id {','.join(all_ids)} --method average --labeled scoring.csv")
        with reuse(dock, all_ids, "average", labeled=(X_ev, y_ev)) as ens:
            single = dict(zip([label(lw) for lw in ens.learnwares], ens.report["single"]))
        best_name = max(single, key=single.get)
        out.table(["learnware", "accuracy"], [[a, v] for a, v in sorted(single.items(), key=lambda kv: -kv[1])])

        n_ev = len(y_ev)
        results = [
            ["Mean in market", "none", float(np.mean(list(single.values())))],
            [f"Best in market ({best_name})", "all (oracle)", single[best_name]],
            [f"Top-1 search hit ({top1})", "none", single[top1]],
            ["Job selector (mixture)", "none", acc_js],
            ["Average ensemble (mixture)", "none", acc_avg],
            [f"Self-trained on {args.labels} labels", f"{args.labels}", acc_self],
            [f"Feature augmentation, {args.labels} labels", f"{args.labels}", acc_fa],
        ]
        out.step(f"7. results: accuracy on the user's {n_ev} rows without labels")
        out.table(["method", "labels used", "accuracy"], results)
        gain = acc_js - results[0][2]
        out.line(f"job selector vs mean in market: {gain:+.3f}; feature augmentation vs self-trained: {acc_fa - acc_self:+.3f}")
    out.line(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
