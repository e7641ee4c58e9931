#!/usr/bin/env python3
"""NFE-accuracy table of the one-step and few-step generators on kinflow's 2D toys.

For each toy (builtin:checkerboard, eight_gaussians, ring_ellipse) trains, with one network,
batch and optimizer (inputs/train_fm_gaussian_mixture.ini with --hidden/--layers/--batch/--steps),
fm, meanflow, flowmap, reflow (teacher: that fm model), reflow distilled to one step
(train.reflow_distill, teacher: that reflow model), w2map, and w2map as a corrector of the
meanflow model (train.corrector) (--models selects a subset; --args adds deck overrides per
model); samples each at every NFE of --nfe (fm, reflow: Euler; meanflow, flowmap:
average-velocity jumps; w2map and the distilled student: 1 only; the corrector: 2, the first
stage's jump and the correction) and compares with a fresh draw of the true law by
kinflow-compare (exact W2, all points).

Replicates: every model is trained once per --seeds entry (run.seed: initialisation, minibatches,
noise and the builtin training rows), and each trained model is evaluated on --draws independent
(sample seed, true-law draw) pairs; a seed's W2 is the mean over its draws. Each cell is the mean
over seeds with its standard error over seeds (training and sampling variability together; with
one seed the SE over draws, sampling only). The floor is the W2 between --repeats further
independent draws of the true law and each reference draw, same point count: its mean and SE over
all those values. Cells are W2 / mean floor; the SE columns are the cells' SE in the same units.

The acceptance check of issue 14: at 1 NFE the best one-step model (lowest mean) against 1.2x
fm's W2 at the largest NFE and against w2map's W2: each margin is given with its combined SE
(unpaired: sqrt(SE_a^2 + SE_b^2)) and the paired SE (per-seed differences, same seed's truth
draws); "holds" when the margin exceeds 2 combined SE, "fails" when it is below -2 combined SE,
otherwise "inconclusive". With one seed and one draw the noise is the floor's SD, as before.
Also prints each objective's training cost per step relative to fm (kinflow-train's own timing).

Usage: /usr/bin/python3 tests/bench/nfe_table.py [--build build] [--out out/nfe_table] [--ranks 1]
       [--points 2000] [--steps 3000] [--batch 512] [--hidden 128] [--layers 3] [--repeats 4]
       [--seeds 1] [--draws 1] [--toys checkerboard,eight_gaussians,ring_ellipse]
       [--nfe 1,2,4,8,100] [--models fm,meanflow,...] [--args 'flowmap=--train.ema=0.9999 ...']
       [--variant 'NAME=MODEL:OPTIONS'] [--json FILE]
       /usr/bin/python3 tests/bench/nfe_table.py --merge A.json,B.json   (replicates run in parallel)
"""
import argparse
import json
import sys
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toys import SRC, TOYS, floors, mpi, run, train_time, w2, write_points  # noqa: E402

ONE_STEP = ("meanflow", "flowmap", "reflow_distill", "w2map")
MODELS = ("fm", "meanflow", "flowmap", "reflow", "reflow_distill", "w2map", "w2map_corrector")
NEEDS = {"reflow": "fm", "reflow_distill": "reflow", "w2map_corrector": "meanflow"}


def mean_se(values):
    """Mean and standard error of a list (SE nan for one value)."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()), (float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan"))


def merged(options):
    """kinflow-train options with later ones replacing earlier ones of the same key (it refuses repeats)."""
    keep = {}
    for o in options:
        keep.pop(o.partition("=")[0], None)
        keep[o.partition("=")[0]] = o
    return list(keep.values())


def verdict(margin, se):
    return "holds" if margin > 2 * se else ("fails" if margin < -2 * se else "inconclusive")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default=str(SRC / "build"))
    p.add_argument("--out", default=str(SRC / "out" / "nfe_table"))
    p.add_argument("--ranks", type=int, default=1)
    p.add_argument("--points", type=int, default=2000)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=512, help="global batch")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--repeats", type=int, default=4, help="floor draws per reference draw")
    p.add_argument("--seeds", default="1", help="training seeds (run.seed), comma list: one replicate each")
    p.add_argument("--draws", type=int, default=1, help="(sample seed, true-law draw) pairs per trained model")
    p.add_argument("--reflow-pairs", type=int, default=20000)
    p.add_argument("--toys", default="checkerboard,eight_gaussians,ring_ellipse")
    p.add_argument("--nfe", default="1,2,4,8,100")
    p.add_argument("--models", default=",".join(MODELS), help="subset of " + ",".join(MODELS))
    p.add_argument("--args", action="append", default=[],
                   help="MODEL=OPTIONS (or all=OPTIONS): extra kinflow-train options, space separated; repeatable")
    p.add_argument("--variant", action="append", default=[],
                   help="NAME=MODEL:OPTIONS: one more model NAME, trained as MODEL with these extra options (space "
                        "separated) and sampled and judged like it (e.g. 'mf12k=meanflow:--train.steps=12000'); repeatable")
    p.add_argument("--json", help="write every W2 value (per seed and draw) to this file")
    p.add_argument("--merge", help="comma list of --json files of one configuration (e.g. one seed each, run in "
                                   "parallel): print their combined table, train nothing")
    args = p.parse_args()
    if args.merge:
        summarise(merge(args.merge.split(",")))
        return
    build, out = Path(args.build), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n = args.points
    nfes = [int(k) for k in args.nfe.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    chosen = [m for m in MODELS if m in args.models.split(",")]
    for m in args.models.split(","):
        if m not in MODELS:
            raise SystemExit(f"--models: unknown model '{m}'")
    for m in chosen:
        if m in NEEDS and NEEDS[m] not in chosen:
            raise SystemExit(f"--models: {m} needs {NEEDS[m]}")
    base = {m: m for m in MODELS}
    extra = {}
    for v in args.variant:
        name, _, rest = v.partition("=")
        model, _, opts = rest.partition(":")
        if not name or name in base or model not in MODELS:
            raise SystemExit(f"--variant: '{v}' is not NAME=MODEL:OPTIONS with a new NAME and MODEL one of {MODELS}")
        base[name] = model
        chosen.append(name)
        extra[name] = opts.split()
    for a in args.args:
        name, _, opts = a.partition("=")
        if name != "all" and name not in base:
            raise SystemExit(f"--args: unknown model '{name}'")
        extra.setdefault(name, []).extend(opts.split())
    launch = mpi(args.ranks)
    common = [f"--train.steps={args.steps}", f"--train.batch_size={args.batch // args.ranks}",
              f"--train.hidden={args.hidden}", f"--train.layers={args.layers}", "--train.checkpoint_every=0"]
    fm_deck = SRC / "inputs" / "train_fm_gaussian_mixture.ini"
    mf_deck = SRC / "inputs" / "train_meanflow_gaussian_mixture.ini"
    sample_deck = SRC / "inputs" / "sample_fm_gaussian_mixture.ini"
    recipe = {"fm": (fm_deck, []), "meanflow": (mf_deck, []),
              "flowmap": (mf_deck, ["--train.objective=flowmap", "--train.meanflow_fraction=0.25"]),
              "reflow": (fm_deck, ["--train.objective=reflow", "TEACHER:fm", f"--train.reflow_pairs={args.reflow_pairs}"]),
              "reflow_distill": (fm_deck, ["--train.objective=reflow", "TEACHER:reflow",
                                           f"--train.reflow_pairs={args.reflow_pairs}", "--train.reflow_distill=true"]),
              "w2map": (fm_deck, ["--train.objective=w2map"]),
              "w2map_corrector": (fm_deck, ["--train.objective=w2map", "CORRECTOR:meanflow"])}
    cost, toys = {}, {}
    for toy in args.toys.split(","):
        law = TOYS[toy]
        fl = []  # every floor value, all seeds and draws
        per_seed = {}  # (model, nfe) -> [mean W2 over draws, one per seed]
        per_draw = {}  # (model, nfe) -> [every W2]
        for seed in seeds:
            d = out / toy if len(seeds) == 1 else out / toy / f"seed{seed}"
            d.mkdir(parents=True, exist_ok=True)
            models = {}
            for name in chosen:
                deck, opts = recipe[base[name]]
                opts = [f"--train.teacher={models[o[8:]]}" if o.startswith("TEACHER:") else
                        f"--train.corrector={models[o[10:]]}" if o.startswith("CORRECTOR:") else o for o in opts]
                model = d / f"{name}.pt"
                text = run(launch + [build / "drivers" / "kinflow-train", deck, f"--train.data=builtin:{toy}",
                                     *merged([f"--train.model_file={model}", f"--run.seed={seed}", *common, *opts,
                                              *extra.get("all", []), *extra.get(name, [])])])
                t = train_time(text)
                if t:
                    cost.setdefault(name, []).append(1e3 * t[1] / t[0])
                models[name] = model
                print(f"{toy} seed {seed}: trained {name} ({t[0] if t else '?'} steps, "
                      f"{t[1] if t else float('nan'):.1f} s)", flush=True)
            seed_w2 = {}
            for k in range(args.draws):
                # Independent draws for every (seed, draw); seed 1, draw 0 keeps the single-run seeds (truth 1,
                # floors 2.., samples 2), and separate invocations with one seed each draw no common points.
                j = args.draws * (seed - 1) + k
                truth = d / (f"truth{k}.h5" if args.draws > 1 else "truth.h5")
                write_points(truth, law(n, 1 + 1000 * j))
                fl += floors(build, law, n, d, truth, repeats=args.repeats, seed=2 + 1000 * j)
                for name, model in models.items():
                    for nfe in (nfes if base[name] not in ("w2map", "reflow_distill", "w2map_corrector") else [1]):
                        samples = d / f"{name}_nfe{nfe}.h5"
                        run(launch + [build / "drivers" / "kinflow-sample", sample_deck, f"--sample.model_file={model}",
                                      "--sample.method=euler", f"--sample.nfe={nfe}", f"--sample.count={n}",
                                      f"--run.seed={2 + 1000 * j}", f"--output.file={samples}", "--quiet"])
                        with h5py.File(samples, "r") as f:
                            made = int(f.attrs["nfe"])  # the corrector: 2 (first stage + correction)
                            assert made == (2 if base[name] == "w2map_corrector" else nfe), (name, nfe, made)
                        v = w2(build, samples, truth, n, d)
                        seed_w2.setdefault((name, made), []).append(v)
                        per_draw.setdefault((name, made), []).append(v)
            for key, vals in seed_w2.items():
                per_seed.setdefault(key, []).append(float(np.mean(vals)))
            print(f"{toy} seed {seed}: " + ", ".join(f"{m}@{k} {np.mean(v):.4f}" for (m, k), v in seed_w2.items()),
                  flush=True)
        toys[toy] = {"floor": fl, "seeds": seeds, "draws": args.draws,
                     "per_seed": {f"{m}@{k}": v for (m, k), v in per_seed.items()},
                     "per_draw": {f"{m}@{k}": v for (m, k), v in per_draw.items()}}
    result = {"toys": toys, "models": {m: base[m] for m in chosen}, "nfe": nfes, "cost": cost,
              "header": f"{n} points; steps {args.steps}, global batch {args.batch}, {args.layers} x {args.hidden}; "
                        f"floor: {args.repeats} draws per reference draw" +
                        ("; extra options: " + "; ".join(args.args + args.variant) if args.args or args.variant else "")}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    summarise(result)


def merge(paths):
    """One result from several --json files of the same configuration (e.g. one seed each, run in parallel)."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    result = parts[0]
    for part in parts[1:]:
        if part["models"] != result["models"] or part["nfe"] != result["nfe"] or part["header"] != result["header"]:
            raise SystemExit(f"--merge: {paths[0]} and another file differ in models, NFE or configuration")
        for toy, r in part["toys"].items():
            mine = result["toys"].setdefault(toy, {"floor": [], "seeds": [], "draws": r["draws"], "per_seed": {},
                                                   "per_draw": {}})
            mine["floor"] += r["floor"]
            mine["seeds"] += r["seeds"]
            for key in ("per_seed", "per_draw"):
                for cell, v in r[key].items():
                    mine[key].setdefault(cell, []).extend(v)
        for name, ms in part["cost"].items():
            result["cost"].setdefault(name, []).extend(ms)
    for toy, r in result["toys"].items():
        if len(set(r["seeds"])) != len(r["seeds"]):
            raise SystemExit(f"--merge: {toy}: seed given twice ({r['seeds']})")
    return result


def summarise(result):
    """The W2 / floor table with SE columns, the acceptance verdicts and the training cost per step."""
    nfes, base = result["nfe"], result["models"]
    top = max(nfes)
    print()
    print(f"W2 / floor ({result['header']})")
    print()
    print("| toy | model | " + " | ".join(f"NFE {k}" for k in nfes) + " | " + " | ".join(f"SE {k}" for k in nfes) + " |")
    print("|---|---|" + "---|" * (2 * len(nfes)))
    verdicts = []
    for toy, r in result["toys"].items():
        fl, seeds, per_seed, per_draw = r["floor"], r["seeds"], r["per_seed"], r["per_draw"]
        floor, floor_se = mean_se(fl)
        floor_sd = float(np.std(fl, ddof=1))
        # Each cell: mean over seeds and its SE (over seeds; one seed: over draws; one of each: the floor SD).
        cells = {key: (float(np.mean(v)), mean_se(v)[1] if len(seeds) > 1 else
                       mean_se(per_draw[key])[1] if r["draws"] > 1 else floor_sd) for key, v in per_seed.items()}
        for name in base:
            mean = [f"{cells[f'{name}@{k}'][0] / floor:.2f}" if f"{name}@{k}" in cells else "-" for k in nfes]
            se = [f"{cells[f'{name}@{k}'][1] / floor:.2f}" if f"{name}@{k}" in cells else "-" for k in nfes]
            print(f"| {toy} | {name} | " + " | ".join(mean) + " | " + " | ".join(se) + " |")
        print(f"| {toy} | floor W2 | {floor:.4f} ± {floor_se:.4f} (SE; SD {floor_sd:.4f}; {len(fl)} draws) |"
              + " |" * (2 * len(nfes) - 1))
        print(f"| {toy} | seeds | {', '.join(map(str, seeds))} ({r['draws']} draw(s) each; "
              f"SE over {'seeds' if len(seeds) > 1 else 'draws' if r['draws'] > 1 else 'floor draws (SD)'}) |"
              + " |" * (2 * len(nfes) - 1))
        # Acceptance (issue 14): the best one-step model at 1 NFE against fm at the largest NFE and w2map.
        cand = [(cells[f"{m}@1"][0], m) for m in base
                if base[m] in ONE_STEP and base[m] != "w2map" and f"{m}@1" in cells]
        if f"fm@{top}" not in cells or "w2map@1" not in cells or not cand:
            continue
        best = min(cand)[1]
        (b, b_se), (ref, ref_se), (wm, wm_se) = cells[f"{best}@1"], cells[f"fm@{top}"], cells["w2map@1"]

        def paired(other, scale):
            """Margin scale * other - best per seed (the models of a seed share its truth draws): SE over seeds."""
            if len(seeds) < 2:
                return ""
            mm, se = mean_se([scale * y - x for x, y in zip(per_seed[f"{best}@1"], per_seed[other])])
            return f"; paired SE {se:.4f}, {mm / se:+.1f} SE"

        m1, s1 = 1.2 * ref - b, float(np.hypot(b_se, 1.2 * ref_se))
        m2, s2 = wm - b, float(np.hypot(b_se, wm_se))
        verdicts.append(
            f"{toy}: best 1-NFE {best} W2 {b:.4f} ± {b_se:.4f} ({b / floor:.2f} floor) vs 1.2 x fm@{top} = "
            f"{1.2 * ref:.4f} ± {1.2 * ref_se:.4f}: margin {m1:+.4f}, combined SE {s1:.4f} ({m1 / s1:+.1f} SE"
            f"{paired(f'fm@{top}', 1.2)}): **{verdict(m1, s1)}**; vs w2map {wm:.4f} ± {wm_se:.4f}: margin {m2:+.4f}, "
            f"combined SE {s2:.4f} ({m2 / s2:+.1f} SE{paired('w2map@1', 1.0)}): **{verdict(m2, s2)}**")
    print()
    for v in verdicts:
        print("acceptance:", v)
    print()
    cost = result["cost"]
    fm_ms = np.mean(cost.get("fm", [float("nan")]))
    print("| objective | ms/step | / fm |")
    print("|---|---|---|")
    for name, ms in cost.items():
        print(f"| {name} | {np.mean(ms):.2f} | {np.mean(ms) / fm_ms:.2f} |")


if __name__ == "__main__":
    main()
