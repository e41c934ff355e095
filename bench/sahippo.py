"""SA-HiPPO's open questions 1-3 (docs/sahippo.md), measured (``python -m bench.sahippo [--quick]``).

1. Drift of the structured ``taylor2`` / ``zoh`` forms from the dense ``expm`` reference as a
   function of the warped step ``g`` and the order ``N``; plus what the per-channel ``alpha``
   (decision 'One decay rate per channel') loses against a general ``alpha_ij``.
2. Where the plain Taylor-2 step diverges, and what contractive sub-stepping costs.
3. Memory retention: the label is the sign of the first event of a stream of 16 events whose
   intervals follow several distributions; a linear readout of the final state, SA-HiPPO
   against a fixed-timestep HiPPO of the same order (and, as a control, a HiPPO that takes
   one fixed step per event and ignores time altogether).

Writes ``build/bench/sahippo_q{1,2,3}.json`` and PNG plots beside them (a full run also
copies the plots to ``docs/img/``). Seeded; a few minutes in full, about a minute with ``--quick``.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402

from bench.common import BENCH_DIR, write_results  # noqa: E402
from golden.cli import run_main  # noqa: E402
from golden.files import save_figure  # noqa: E402
from golden.hippo import legs_matrices, nplr  # noqa: E402
from golden.sahippo import (  # noqa: E402
    contractive_step,
    run_dense,
    run_structured,
    structured_step,
    taylor2_substeps,
    warped_step,
)

DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
FORMS = {
    "taylor2": ("taylor2", 1.0),
    "taylor2_f0.25": ("taylor2", 0.25),
    "taylor2_plain": ("taylor2", None),
    "zoh": ("zoh", 1.0),
}


def _save(fig, name: str, quick: bool) -> Path:
    """Write the plot under build/bench/; a full run also copies it to docs/img/ when small."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / name
    save_figure(fig, path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    if not quick and path.stat().st_size < 200_000:
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_IMG / name)
    return path


def _rel(a, b) -> float:
    with np.errstate(all="ignore"):
        err = float(np.linalg.norm(a - b) / np.linalg.norm(b))
    return err if np.isfinite(err) else float("inf")


# --- question 1 ----------------------------------------------------------------------------
def question1(quick: bool) -> list[dict]:
    orders = (8, 16, 32) if quick else (8, 16, 32, 64)
    steps = (1e-3, 1e-2, 1e-1) if quick else (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
    n_events = 32
    rng = np.random.default_rng(1)
    weights = rng.standard_normal(n_events)
    rows = []
    for n in orders:
        system = nplr(n)
        for g in steps:
            # alpha = 0 and interval g: every event advances the state by exactly A g.
            ref = run_dense(n, 0.0, np.full(n_events, g), weights, "expm")
            row = {"N": n, "g": g, "substeps": int(taylor2_substeps(g, n))}
            for name, (method, fraction) in FORMS.items():
                with np.errstate(all="ignore"):
                    z = run_structured(n, 0.0, np.full(n_events, g), weights, method, 1.0, fraction)
                row[name] = _rel(system.to_dense(z), ref)
            rows.append(row)
    # What one alpha per channel loses against a general alpha_ij (dense, expm both).
    spread_rows = []
    n = 16
    intervals = rng.integers(1, 11, n_events).astype(float)
    a, b, _ = legs_matrices(n)
    for spread in (0.0, 0.1, 0.3, 1.0):
        alpha_ij = 1.0 * (1 + spread * rng.uniform(-1, 1, (n, n)))
        x_general, x_scalar = np.zeros(n), np.zeros(n)
        out_g, out_s = [], []
        for dt, w in zip(intervals * 0.05, weights):
            x_general = scipy.linalg.expm(a * np.exp(-alpha_ij * dt) * dt) @ x_general + b * w
            x_scalar = scipy.linalg.expm(a * np.exp(-1.0 * dt) * dt) @ x_scalar + b * w
            out_g.append(x_general)
            out_s.append(x_scalar)
        spread_rows.append({"N": n, "alpha_spread": spread, "rel_err_scalar_alpha": _rel(np.array(out_s), np.array(out_g))})
    write_results("sahippo_q1", rows, {"n_events": n_events, "reference": "dense expm(A g)", "alpha_spread": spread_rows})
    print()
    from bench.common import format_table

    print(format_table(spread_rows))

    fig, axes = plt.subplots(1, len(FORMS), figsize=(4 * len(FORMS), 3.4), sharey=True)
    for ax, name in zip(axes, FORMS):
        for n in orders:
            sel = [r for r in rows if r["N"] == n]
            vals = [min(r[name], 1e12) for r in sel]
            ax.loglog([r["g"] for r in sel], vals, marker="o", label=f"N={n}")
        ax.set_title(name)
        ax.set_xlabel("warped step g per event")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("relative state error vs dense expm")
    axes[0].legend()
    _save(fig, "sahippo_q1_drift.png", quick)
    return rows


# --- question 2 ----------------------------------------------------------------------------
def question2(quick: bool) -> list[dict]:
    orders = (8, 16, 32) if quick else (8, 16, 32, 64)
    rows = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for n in orders:
        a, _, _ = legs_matrices(n)
        eye = np.eye(n)
        hs = np.geomspace(1e-3, 3.0, 60) / n
        norms, growth = [], []
        for h in hs:
            t = eye + h * a + 0.5 * h * h * a @ a
            norms.append(np.linalg.norm(t, 2))
            growth.append(np.linalg.norm(np.linalg.matrix_power(t, 100), 2))
        growth = np.array(growth)
        diverge = hs[np.argmax(growth > 10.0)] if np.any(growth > 10.0) else float("nan")
        h_max = contractive_step(n)
        system = nplr(n)
        z = system.b_t.copy()
        t0 = time.perf_counter()
        reps = 200
        for _ in range(reps):
            structured_step(z, h_max, "taylor2", system)
        t_sub = (time.perf_counter() - t0) / reps
        row = {
            "N": n,
            "norm_A": float(np.linalg.norm(a, 2)),
            "g_spectral_limit": 2.0 / n,
            "g_growth100_x10": float(diverge),
            "h_max_contractive": h_max,
            "h_max_x_norm_A": h_max * float(np.linalg.norm(a, 2)),
        }
        for alpha in (0.1, 1.0, 10.0):
            g_peak = 1.0 / (np.e * alpha)
            k = int(taylor2_substeps(g_peak, n))
            row[f"K_at_gpeak_alpha{alpha:g}"] = k
        row["mults_per_substep"] = 10 * n
        row["mults_zoh_event"] = 2 * n
        row["us_per_substep_numpy"] = t_sub * 1e6
        rows.append(row)
        axes[0].loglog(hs * n, norms, label=f"N={n}")
        axes[1].loglog(hs * n, np.minimum(growth, 1e30), label=f"N={n}")
    for ax, title in zip(axes, ("||I + hA + (hA)^2/2||_2", "||T(h)^100||_2")):
        ax.axhline(1.0, color="k", lw=0.8)
        ax.axvline(2.0, color="r", lw=0.8, ls="--")
        ax.set_xlabel("h N  (spectral stability limit: 2, dashed)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    _save(fig, "sahippo_q2_stability.png", quick)
    write_results("sahippo_q2", rows, {"mults": "real multiplies: taylor2 ~10N per sub-step, zoh 2N per event (4 per mode)"})
    return rows


# --- question 3 ----------------------------------------------------------------------------
def _intervals(dist: str, rng, shape) -> np.ndarray:
    if dist == "regular":
        return np.full(shape, 10)
    if dist == "uniform":
        return rng.integers(1, 20, shape)
    if dist == "poisson":
        return rng.geometric(0.1, shape)
    if dist == "bursty":  # Pareto tail: most gaps short, a few very long
        return np.minimum(np.ceil(rng.pareto(1.1, shape) * 3), 5000).astype(np.int64)
    raise ValueError(dist)


def _features(n: int, intervals: np.ndarray, weights: np.ndarray, model: str, alpha: float, scale: float) -> np.ndarray:
    system = nplr(n)
    a, b, _ = legs_matrices(n)
    if model == "hippo_event_clock":  # fixed-step HiPPO that ignores time: one step per event
        return _features(n, np.ones_like(intervals), weights, "hippo_fixed", alpha, scale)
    if model == "hippo_fixed":
        # Exact LTI flow over each gap: one batched expm per distinct interval, then a gather.
        gaps, index = np.unique(intervals, return_inverse=True)
        transitions = scipy.linalg.expm(a[None] * (gaps * scale)[:, None, None])
        index = index.reshape(intervals.shape)
        x = np.zeros((intervals.shape[0], n))
        for k in range(intervals.shape[1]):
            x = np.einsum("bij,bj->bi", transitions[index[:, k]], x) + b * weights[:, k, None]
        return x
    method = "taylor2" if model == "sahippo_taylor2" else "zoh"
    z = np.zeros((intervals.shape[0], system.n_modes), dtype=np.complex128)
    for k in range(intervals.shape[1]):
        z = structured_step(z, warped_step(intervals[:, k].astype(np.float64), alpha, scale), method, system)
        z = z + system.b_t * weights[:, k, None]
    return np.concatenate([z.real, z.imag], -1)


def _ridge_accuracy(f_train, y_train, f_eval, y_eval, lam=1e-3) -> float:
    mu, sd = f_train.mean(0), f_train.std(0) + 1e-12
    xt = np.c_[(f_train - mu) / sd, np.ones(len(f_train))]
    xe = np.c_[(f_eval - mu) / sd, np.ones(len(f_eval))]
    w = np.linalg.solve(xt.T @ xt + lam * len(xt) * np.eye(xt.shape[1]), xt.T @ y_train)
    return float(np.mean(np.sign(xe @ w) == y_eval))


def question3(quick: bool) -> list[dict]:
    n, n_events = 16, 16
    n_train, n_val, n_test = (600, 200, 400) if quick else (2000, 500, 1000)
    scales = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3)
    alphas = (1.0, 3.0, 10.0) if quick else (1.0, 3.0, 10.0, 30.0)
    models = ("hippo_fixed", "sahippo_taylor2", "sahippo_zoh", "hippo_event_clock")
    rows = []
    for di, dist in enumerate(("regular", "uniform", "poisson", "bursty")):
        rng = np.random.default_rng(100 + di)
        total = n_train + n_val + n_test
        intervals = _intervals(dist, rng, (total, n_events))
        weights = rng.choice([-1.0, 1.0], (total, n_events))
        labels = weights[:, 0]
        tr, va, te = slice(0, n_train), slice(n_train, n_train + n_val), slice(n_train + n_val, total)
        row = {"intervals": dist, "mean_gap": float(intervals[:, 1:].mean()), "max_gap": int(intervals[:, 1:].max())}
        for model in models:
            best = (-1.0, None)
            for scale in scales:
                for alpha in (0.0,) if model.startswith("hippo") else alphas:
                    feats = _features(n, intervals, weights, model, alpha, scale)
                    acc = _ridge_accuracy(feats[tr], labels[tr], feats[va], labels[va])
                    if acc > best[0]:
                        best = (acc, (scale, alpha, feats))
            scale, alpha, feats = best[1]
            row[model] = _ridge_accuracy(feats[tr], labels[tr], feats[te], labels[te])
            row[f"{model}_scale"] = scale
            if not model.startswith("hippo"):
                row[f"{model}_alpha"] = alpha
        rows.append(row)
    write_results(
        "sahippo_q3",
        rows,
        {"N": n, "events": n_events, "splits": [n_train, n_val, n_test], "readout": "ridge on standardised final state"},
        columns=["intervals", "mean_gap", "max_gap", *models, "hippo_fixed_scale", "sahippo_taylor2_scale", "sahippo_taylor2_alpha"],
    )
    fig, ax = plt.subplots(figsize=(6, 3.4))
    xs = np.arange(len(rows))
    for i, model in enumerate(models):
        ax.bar(xs + (i - 1.5) * 0.2, [r[model] for r in rows], 0.2, label=model)
    ax.set_xticks(xs, [r["intervals"] for r in rows])
    ax.axhline(0.5, color="k", lw=0.8, ls="--")
    ax.set_ylim(0.4, 1.02)
    ax.set_ylabel("test accuracy (first-event sign)")
    ax.legend(fontsize=8, loc="lower left")
    _save(fig, "sahippo_q3_retention.png", quick)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller grids (under a minute)")
    parser.add_argument("--only", choices=["1", "2", "3"], help="run one question")
    args = parser.parse_args(argv)
    for q, fn in (("1", question1), ("2", question2), ("3", question3)):
        if args.only in (None, q):
            print(f"\n=== SA-HiPPO question {q} ===")
            t0 = time.perf_counter()
            fn(args.quick)
            print(f"(question {q}: {time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    raise SystemExit(run_main(main))
