"""Train a spiking network on the Free Spoken Digit Dataset, on CPU.

``python -m golden.train --neuron csilif`` trains the two-hidden-layer network

    32 cochlea channels -> SNNLayer(H) -> SNNLayer(H) -> SNNLayer(10, LIReadout)

(:class:`~golden.layers.SNNLayer`: ``Linear(no bias) -> BatchNorm1d -> neuron -> Dropout``) of
any neuron type in the library on the official FSDD train split (index 5-49), evaluates it on
the test split (index 0-4) after every epoch, and writes to the output folder (default
``build/train/<neuron>/``):

* ``checkpoint.pt`` - the model's ``state_dict``, the :class:`TrainConfig` and the history;
* ``history.json`` - per epoch: loss, train and test accuracy, learning rate, seconds;
* ``curves.png`` - learning curves (loss; train and test accuracy).

With ``--export FILE`` the trained network is also quantised with :func:`golden.export.export_network`
(batch norm folded, formats calibrated on training recordings) and written as a model file
(:func:`golden.model_file.save_model`); float and integer test accuracies are reported side by
side and kept in ``export.json``.

Input
-----
The cached cochlea encoding (:func:`golden.data.cochlea.encode_fsdd`: 32 channels, 1 ms ticks)
binned into steps of ``bin_ms`` milliseconds with :func:`golden.data.events.bin_events` over a
fixed window of ``window_ms`` from the recording's start (events after the window are left
out; shorter recordings are padded with empty steps), exactly the input semantics of the
integer network (:mod:`golden.network`): layer 0 receives integer spike counts per step and
channel. The cochlea emits at most one spike per channel and tick, so a step carries at most
``32 * bin_ms`` events: that bound sizes the hardware accumulators (``max_events_per_step``).

Training
--------
Adam with a cosine learning-rate schedule; the loss is the cross entropy of the readout
membrane averaged over time (``--loss membrane_mean``: the deployed decision, is the argmax
of its sum) or the reference's sum of softmaxes (``--loss softmax_sum``). Both decisions are
reported. Runs are reproducible: ``torch.manual_seed(seed)`` before the model is built, a
seeded generator for the batch order, a fixed number of threads (``--threads``, default 2),
so the same command on the same machine gives bit-identical weights.

Neuron types (``--neuron``, the ``train_choices`` of the registered kinds, :mod:`golden.kinds`):
``csilif`` (:class:`~golden.csilif.CSiLIF`), ``silif`` (:class:`~golden.silif.SiLIF`),
``cadlif`` (:class:`~golden.silif.CAdLIF`, float baseline), ``rlif``
(:class:`~golden.refractory_lif.RefractoryLIF`, sequential mode) and ``lif``
(:class:`~golden.lif.LIF`).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .cli import fraction, non_negative_int, output_dir, output_file, positive_float, positive_int, run_main
from .data import REPO_ROOT
from .data.cochlea import CochleaParams, encode_fsdd
from .data.augment import DEFAULT_AUGMENT
from .data.events import bin_events
from .data.fsdd import FSDD_SPEAKERS, TEST_INDEX_LIMIT
from .errors import SpikestreamError
from .export import float_trace
from .files import atomic_write, check_output, save_figure, write_text
from .kinds import network_kinds
from .layers import LIReadout, SNNLayer, readout_scores
from .refractory_lif import RefractoryLIFNeuron

__all__ = [
    "NEURON_CHOICES",
    "TrainConfig",
    "SpeechData",
    "SpeechNetwork",
    "RefractoryLIFNeuron",
    "load_speech_data",
    "spread_indices",
    "build_network",
    "evaluate",
    "train",
    "export_trained",
    "folded_float_run",
    "load_checkpoint",
    "main",
]

N_CLASSES = 10
#: Cochlea tick in microseconds (``CochleaParams.tick_us``) and channels.
TICK_US = 1000
N_CHANNELS = 32
#: What a checkpoint saved without these settings was trained with (the official split, no augmentation).
PRE_SPLIT_SETTINGS = {"split": "official", "augment": 0}
#: :attr:`TrainConfig.split` values other than a speaker's name.
SPLIT_KEYWORDS = ("official", "all")


#: ``--neuron`` choice -> (float neuron module class, kind name in the integer network), from
#: the kinds' ``train_choices`` (:mod:`golden.kinds`).
NEURON_CHOICES = {
    choice: (module, kind.name)
    for kind in network_kinds().values() if not kind.readout
    for choice, module in kind.train_choices.items()
}


@dataclass
class TrainConfig:
    """Everything that determines a training run (kept in the checkpoint and history).

    Parameters
    ----------
    neuron : str
        One of :data:`NEURON_CHOICES`.
    hidden : int
        Neurons in each of the two hidden layers.
    bin_ms : int
        Step width in milliseconds (cochlea ticks); the network's ``bin_ticks`` is ``1000 * bin_ms`` us.
    window_ms : int
        Fixed sample window; the network runs ``window_ms // bin_ms`` steps per recording.
    epochs, batch_size, lr, dropout, seed, threads
        Optimisation: Adam at ``lr`` with a cosine decay to zero over ``epochs``.
    loss : str
        ``"membrane_mean"`` or ``"softmax_sum"`` (see the module docstring).
    train_limit, test_limit : int or None
        Use only this many recordings of each split, spread evenly over the sorted list (for
        quick checks); ``None`` uses the whole split.
    split : str
        Which recordings train and which test (:func:`split_mask`): ``"official"`` (index 5-49
        train, 0-4 test), a speaker's name (leave-one-speaker-out fold: the other four speakers'
        recordings train, all of that speaker's test) or ``"all"`` (every recording trains; the
        test figures are then on the official test split, which training has seen).
    augment : int
        Augmented copies of each training recording (:mod:`golden.data.augment`, cached
        encodings); every epoch each recording is drawn at random from its clean encoding and
        these copies. 0: clean encodings only.
    """

    neuron: str = "csilif"
    hidden: int = 176
    bin_ms: int = 20
    window_ms: int = 800
    epochs: int = 12
    batch_size: int = 64
    lr: float = 5e-3
    dropout: float = 0.1
    loss: str = "membrane_mean"
    seed: int = 0
    threads: int = 2
    train_limit: int | None = None
    test_limit: int | None = None
    split: str = "official"
    augment: int = 2

    def __post_init__(self):
        if self.neuron not in NEURON_CHOICES:
            raise ValueError(f"neuron must be one of {sorted(NEURON_CHOICES)}, not {self.neuron!r}")
        for name in ("hidden", "bin_ms", "window_ms", "epochs", "batch_size", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        if self.window_ms % self.bin_ms:
            raise ValueError(f"window_ms={self.window_ms} must be a multiple of bin_ms={self.bin_ms}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, not {self.lr}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), not {self.dropout}")
        if self.loss not in ("membrane_mean", "softmax_sum"):
            raise ValueError(f"loss must be 'membrane_mean' or 'softmax_sum', not {self.loss!r}")
        for name in ("train_limit", "test_limit"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < N_CLASSES):
                raise ValueError(f"{name} must be None or an int >= {N_CLASSES}, not {value!r}")
        if self.split not in SPLIT_KEYWORDS and self.split not in FSDD_SPEAKERS:
            raise ValueError(f"split must be one of {list(SPLIT_KEYWORDS)} or a speaker {list(FSDD_SPEAKERS)}, "
                             f"not {self.split!r}")
        if isinstance(self.augment, bool) or not isinstance(self.augment, int) or self.augment < 0:
            raise ValueError(f"augment must be a non-negative int, not {self.augment!r}")

    @property
    def n_steps(self) -> int:
        return self.window_ms // self.bin_ms

    @property
    def bin_ticks(self) -> int:
        """Step width in the events' microsecond ticks."""
        return self.bin_ms * TICK_US

    @property
    def max_events_per_step(self) -> int:
        """At most one cochlea spike per channel and tick: ``32 * bin_ms`` events per step."""
        return N_CHANNELS * self.bin_ms


@dataclass
class SpeechData:
    """One split as dense counts: ``counts`` int64 ``(N, T, 32)``, ``labels`` int64 ``(N,)``, ``names``;
    ``augmented`` int64 ``(K, N, T, 32)``: K augmented encodings of the same recordings, or ``None``."""

    counts: torch.Tensor
    labels: torch.Tensor
    names: list = field(default_factory=list)
    events_cut: int = 0
    augmented: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def spread_indices(n: int, limit: int | None) -> np.ndarray:
    """``limit`` indices spread evenly over ``range(n)`` (all of them when ``limit`` is None or >= n)."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def split_mask(speakers: np.ndarray, indices: np.ndarray, split: str, part: str) -> np.ndarray:
    """Boolean mask of the recordings (given by speaker and index) that are ``part`` (``"train"``
    or ``"test"``) of ``split`` (:attr:`TrainConfig.split`)."""
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test', not {part!r}")
    if split in SPLIT_KEYWORDS:
        test = indices < TEST_INDEX_LIMIT
        return np.ones_like(test) if (split == "all" and part == "train") else (test if part == "test" else ~test)
    if split not in FSDD_SPEAKERS:
        raise ValueError(f"split must be one of {list(SPLIT_KEYWORDS)} or a speaker {list(FSDD_SPEAKERS)}, "
                         f"not {split!r}")
    test = speakers == split
    return test if part == "test" else ~test


def load_speech_data(part: str, bin_ms: int, window_ms: int, limit: int | None = None, *,
                     split: str = "official", augment: int = 0, cochlea: CochleaParams | None = None) -> SpeechData:
    """Recordings of ``part`` (``"train"`` or ``"test"``) of ``split`` from the cached cochlea
    encoding (``cochlea``, default ``CochleaParams()``), binned to ``(window_ms // bin_ms)``
    steps; with ``augment`` > 0 also that many augmented encodings of each
    (:data:`golden.data.augment.DEFAULT_AUGMENT`, copies 0 to ``augment - 1``,
    :func:`golden.data.cochlea.encode_fsdd`) in ``augmented``.

    ``events_cut`` counts the events of the clean encodings that fall after the window (left
    out, as the hardware's time-bin controller would after the last step).
    """
    encoded = encode_fsdd("all", cochlea)
    n_steps = window_ms // bin_ms
    keep = np.flatnonzero(split_mask(encoded.speakers, encoded.indices, split, part))
    keep = keep[spread_indices(len(keep), limit)]

    def binned(source) -> tuple[np.ndarray, int]:
        counts = np.zeros((len(keep), n_steps, N_CHANNELS), dtype=np.int64)
        cut = 0
        for row, i in enumerate(keep):
            events = source.events_of(int(i))
            counts[row] = bin_events(events, N_CHANNELS, bin_ms * TICK_US, t_start=0, n_bins=n_steps)
            cut += len(events) - int(counts[row].sum())
        return counts, cut

    counts, cut = binned(encoded)
    augmented = None
    if augment:
        augmented = torch.from_numpy(np.stack([binned(encode_fsdd("all", cochlea, augment=DEFAULT_AUGMENT, copy=copy))[0] for copy in range(augment)]))
    return SpeechData(
        counts=torch.from_numpy(counts),
        labels=torch.as_tensor(encoded.digits[keep], dtype=torch.int64),
        names=[str(n) for n in encoded.names[keep]],
        events_cut=cut,
        augmented=augmented,
    )


class SpeechNetwork(nn.Module):
    """Two spiking :class:`~golden.layers.SNNLayer` blocks and the leaky-integrator readout block.

    ``forward(counts)`` maps float counts ``(B, T, n_inputs)`` to the readout membrane
    ``(B, T, 10)``. :meth:`float_network` gives the same modules as a
    :class:`golden.export.FloatNetwork` for export.
    """

    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def float_network(self):
        """The same modules as a :class:`golden.export.FloatNetwork` (ValueError if unsupported)."""
        from .export import FloatNetwork

        return FloatNetwork(list(self.layers))


def build_network(neuron: str, hidden: int, n_inputs: int = N_CHANNELS, n_classes: int = N_CLASSES,
                  dropout: float = 0.1) -> SpeechNetwork:
    """``n_inputs -> hidden -> hidden -> n_classes`` with ``neuron`` in both hidden layers.

    Draws its initial values from torch's global generator (seed it first).
    """
    if neuron not in NEURON_CHOICES:
        raise ValueError(f"neuron must be one of {sorted(NEURON_CHOICES)}, not {neuron!r}")
    cls = NEURON_CHOICES[neuron][0]
    return SpeechNetwork([
        SNNLayer(n_inputs, cls(hidden), dropout=dropout),
        SNNLayer(hidden, cls(hidden), dropout=dropout),
        SNNLayer(hidden, LIReadout(n_classes)),
    ])


def _logits(membrane: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "membrane_mean":
        return membrane.mean(dim=1)
    return torch.log(readout_scores(membrane, "softmax_sum") / membrane.shape[1] + 1e-12)


@torch.no_grad()
def evaluate(model: SpeechNetwork, data: SpeechData, batch_size: int = 125, loss: str = "membrane_mean") -> dict:
    """Eval-mode loss and accuracy of both decisions (``membrane_sum``, deployed; ``softmax_sum``)
    and the hidden layers' spike rates (spikes per neuron per step)."""
    model.eval()
    total_loss, hits_membrane, hits_softmax = 0.0, 0, 0
    spike_sums = None
    for start in range(0, len(data), batch_size):
        x = data.counts[start:start + batch_size].to(torch.get_default_dtype())
        y = data.labels[start:start + batch_size]
        h = x
        sums = []
        for layer in model.layers[:-1]:
            h = layer(h)
            sums.append(float(h.sum()))
        membrane = model.layers[-1](h)
        total_loss += float(nn.functional.cross_entropy(_logits(membrane, loss), y, reduction="sum"))
        hits_membrane += int((readout_scores(membrane, "membrane_sum").argmax(-1) == y).sum())
        hits_softmax += int((readout_scores(membrane, "softmax_sum").argmax(-1) == y).sum())
        spike_sums = sums if spike_sums is None else [a + b for a, b in zip(spike_sums, sums)]
    n = len(data)
    steps = data.counts.shape[1]
    return {
        "loss": total_loss / n,
        "acc": hits_membrane / n,
        "acc_softmax_sum": hits_softmax / n,
        "spike_rate": [s / (n * steps * layer.neuron.n_neurons) for s, layer in zip(spike_sums, model.layers[:-1])],
    }


def _default_out(neuron: str) -> Path:
    return REPO_ROOT / "build" / "train" / neuron


def _plot(history: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax_loss.plot(epochs, [h["test_loss"] for h in history], label="test")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross entropy")
    ax_loss.legend()
    ax_acc.plot(epochs, [100 * h["train_acc"] for h in history], label="train (running, dropout on)")
    ax_acc.plot(epochs, [100 * h["test_acc"] for h in history], label="test")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.legend()
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


@dataclass
class TrainResult:
    """What :func:`train` returns: the model (eval mode), its history and where things went."""

    model: SpeechNetwork
    config: TrainConfig
    history: list
    out_dir: Path
    train_data: SpeechData
    test_data: SpeechData

    @property
    def checkpoint(self) -> Path:
        return self.out_dir / "checkpoint.pt"


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters (batch-norm running statistics excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train_epochs(model: nn.Module, train_data: SpeechData, *, epochs: int, batch_size: int, lr: float, seed: int,
                 dtype: torch.dtype, forward, evaluate, log=print, on_epoch=None) -> list[dict]:
    """The training loop of every FSDD network here (:func:`train`, :func:`golden.flames.train_flames`).

    Adam at ``lr`` over the trainable parameters with a cosine decay to zero over ``epochs``,
    cross entropy, batches of ``batch_size`` in an order drawn from a generator seeded with
    ``seed`` (the caller seeds the model's initialisation), counts cast to ``dtype``. When
    ``train_data.augmented`` holds K copies, the same generator draws each epoch which of the
    K + 1 encodings (clean or a copy) each recording trains with.
    ``forward(model, x)`` returns ``(logits, scores)``: the loss takes ``logits``, the running
    train accuracy the argmax of ``scores``. ``evaluate(model)`` returns the test figures after
    each epoch (``loss``, ``acc``, ``spike_rate`` and any others, which the history row keeps as
    ``test_<name>``); ``on_epoch(history)`` runs after each epoch (saving). Returns the history,
    one row per epoch, with the model in eval mode.
    """
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs)
    order = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        lr_now = optimiser.param_groups[0]["lr"]
        perm = torch.randperm(len(train_data), generator=order)
        views = None
        if train_data.augmented is not None:
            views = torch.randint(0, len(train_data.augmented) + 1, (len(train_data),), generator=order)
        total_loss, hits = 0.0, 0
        for first in range(0, len(perm), batch_size):
            idx = perm[first:first + batch_size]
            x, y = train_data.counts[idx], train_data.labels[idx]
            if views is not None:
                copy = views[idx] - 1
                mixed = copy >= 0
                x = x.clone()
                x[mixed] = train_data.augmented[copy[mixed], idx[mixed]]
            x = x.to(dtype)
            logits, scores = forward(model, x)
            loss = nn.functional.cross_entropy(logits, y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total_loss += float(loss.detach()) * len(idx)
            hits += int((scores.argmax(-1) == y).sum())
        schedule.step()
        test = evaluate(model)
        row = {"epoch": epoch, "lr": lr_now, "train_loss": total_loss / len(train_data), "train_acc": hits / len(train_data),
               **{name if name == "spike_rate" else f"test_{name}": value for name, value in test.items()},
               "seconds": time.perf_counter() - start}
        history.append(row)
        softmax = f" (softmax-sum {100 * row['test_acc_softmax_sum']:5.1f} %)" if "test_acc_softmax_sum" in row else ""
        rates = ", ".join(f"{rate:.3f}" for rate in np.atleast_1d(row["spike_rate"]))
        log(f"epoch {epoch:3d}/{epochs}  loss {row['train_loss']:.4f}  train {100 * row['train_acc']:5.1f} %  "
            f"test {100 * row['test_acc']:5.1f} %{softmax}  spikes/neuron/step {rates}  {row['seconds']:.1f} s")
        if on_epoch is not None:
            on_epoch(history)
    model.eval()
    return history


def _logits_and_scores(membrane: torch.Tensor, loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The readout membrane's loss logits and its summed decision scores (``membrane_sum``)."""
    return _logits(membrane, loss), membrane.sum(dim=1)


def config_data(config: TrainConfig) -> tuple[SpeechData, SpeechData]:
    """The training (with its augmented copies) and test recordings of ``config``."""
    train_data = load_speech_data("train", config.bin_ms, config.window_ms, config.train_limit,
                                  split=config.split, augment=config.augment)
    test_data = load_speech_data("test", config.bin_ms, config.window_ms, config.test_limit, split=config.split)
    return train_data, test_data


def train(config: TrainConfig, out_dir=None, log=print) -> TrainResult:
    """Train, evaluate every epoch, and save checkpoint, history and curves in ``out_dir``."""
    out_dir = Path(out_dir) if out_dir is not None else _default_out(config.neuron)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.threads)
    train_data, test_data = config_data(config)
    torch.manual_seed(config.seed)
    model = build_network(config.neuron, config.hidden, dropout=config.dropout)
    n_params = parameter_count(model)
    log(f"{config.neuron}: 32 -> {config.hidden} -> {config.hidden} -> 10, {n_params} parameters; split {config.split}, "
        f"{len(train_data)} train (+ {config.augment} augmented copies each) / {len(test_data)} test recordings, {config.n_steps} steps of {config.bin_ms} ms "
        f"({train_data.events_cut + test_data.events_cut} events after the window left out)")
    history = train_epochs(
        model, train_data, epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, seed=config.seed,
        dtype=torch.get_default_dtype(),
        forward=lambda model, x: _logits_and_scores(model(x), config.loss),
        evaluate=lambda model: evaluate(model, test_data, loss=config.loss),
        log=log, on_epoch=lambda history: _save(model, config, history, out_dir, n_params),
    )
    return TrainResult(model, config, history, out_dir, train_data, test_data)


def save_checkpoint(model: nn.Module, config, history: list, out_dir: Path, n_params: int) -> None:
    """Write ``checkpoint.pt`` (configuration, weights, history) and ``history.json`` into ``out_dir``."""
    with atomic_write(out_dir / "checkpoint.pt") as handle:
        torch.save({"config": asdict(config), "state_dict": model.state_dict(), "history": history}, handle)
    doc = {"config": asdict(config), "parameters": n_params, "history": history}
    write_text(out_dir / "history.json", json.dumps(doc, indent=2))


def _save(model, config, history, out_dir: Path, n_params: int) -> None:
    save_checkpoint(model, config, history, out_dir, n_params)
    _plot(history, out_dir / "curves.png", f"FSDD, {config.neuron}, hidden {config.hidden}, {config.bin_ms} ms steps")


def load_checkpoint(path) -> tuple[SpeechNetwork, TrainConfig, list]:
    """Rebuild the model (eval mode), its :class:`TrainConfig` and history from ``checkpoint.pt``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: train first (python -m golden.train --out {path.parent})")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    config = TrainConfig(**{**PRE_SPLIT_SETTINGS, **saved["config"]})
    model = build_network(config.neuron, config.hidden, dropout=config.dropout)
    model.load_state_dict(saved["state_dict"])
    model.eval()
    return model, config, saved["history"]


@torch.no_grad()
def folded_float_run(model: SpeechNetwork, counts: torch.Tensor) -> list[dict]:
    """The network as the integer model computes it, in float64: per layer ``W' x + bias'``
    (batch norm folded; dropout off) and the neuron's output and states.

    Returns per layer ``{"currents", "output", <states>}`` (each kind's ``float_trace``: ``re``/``im`` for C-SiLIF,
    ``u``/``w`` for SiLIF and cAdLIF, ``v``/``refr``/``u`` for refractory LIF, ``u`` for the
    readout). Works on a float64 copy; ``model`` is left as it is.
    """
    work = copy.deepcopy(model).double().eval()
    x = counts.to(torch.float64)
    out = []
    for layer in work.layers:
        weight, bias = layer.folded()
        currents = x @ weight.T + bias
        entry = float_trace(layer.neuron, currents)
        entry["currents"] = currents
        out.append(entry)
        x = entry["output"]
    return out


def export_trained(model: SpeechNetwork, config: TrainConfig, train_data: SpeechData, test_data: SpeechData,
                   path=None, calibration: int = 256, headroom: float = 2.0, log=print) -> dict:
    """Quantise the trained network, run the integer model on the test split, optionally save.

    Calibration uses ``calibration`` training recordings spread over the split; every neuron
    type goes through :func:`golden.export.export_network`. Returns a dict with float and integer test
    accuracies, how often the integer decision equals the folded float64 one, per-layer
    saturations on the test split, the formats, the :class:`~golden.network.NetworkParams`
    (``"params"``) and the integer trace on the test split (``"trace"``).
    """
    from .export import export_network
    from .model_file import save_model
    from .network import run_network

    calib = train_data.counts[torch.as_tensor(spread_indices(len(train_data), calibration))]
    provenance = {"trained_by": "golden.train", "dataset": "FSDD (cochlea encoding)",
                  "config": asdict(config), "n_steps": config.n_steps}
    params, report = export_network(
        model.float_network(), calib, bin_ticks=config.bin_ticks,
        max_events_per_step=config.max_events_per_step, headroom=headroom, provenance=provenance)
    formats, report_text = [layer["formats"] for layer in report.layers], str(report)
    trace = run_network(params, test_data.counts)
    int_pred = trace.prediction
    float_pred = folded_float_run(model, test_data.counts)[-1]["u"].sum(dim=1).argmax(-1)
    result = {
        "float_acc": evaluate(model, test_data)["acc"],
        "float64_folded_acc": float((float_pred == test_data.labels).double().mean()),
        "int_acc": float((int_pred == test_data.labels).double().mean()),
        "agreement": float((int_pred == float_pred).double().mean()),
        "saturations": trace.saturation_counts(),
        "spike_rate_int": [float(layer.spikes.double().mean()) for layer in trace.layers[:-1]],
        "formats": formats,
        "calibration_report": report_text,
        "params": params,
        "trace": trace,
    }
    log(report_text)
    log(f"test accuracy: float {100 * result['float_acc']:.1f} %, integer {100 * result['int_acc']:.1f} % "
        f"(integer == float64 folded decision on {100 * result['agreement']:.1f} % of recordings)")
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_model(path, params)
        result["model_file"] = str(path)
        log(f"wrote {path}")
    return result


def _parser() -> argparse.ArgumentParser:
    defaults = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m golden.train",
        description="Train a two-hidden-layer spiking network on FSDD spoken digits (cochlea spikes), "
                    "on CPU; save checkpoint, history and learning curves; optionally export the "
                    "quantised integer network as a model file.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--neuron", choices=sorted(NEURON_CHOICES), default=defaults.neuron,
                   help="neuron type of both hidden layers")
    p.add_argument("--hidden", type=positive_int, default=defaults.hidden, help="neurons per hidden layer")
    p.add_argument("--bin-ms", type=positive_int, default=defaults.bin_ms, help="network step in ms (cochlea ticks)")
    p.add_argument("--window-ms", type=positive_int, default=defaults.window_ms,
                   help="fixed sample window in ms (later events are left out)")
    p.add_argument("--epochs", type=positive_int, default=defaults.epochs)
    p.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    p.add_argument("--lr", type=positive_float, default=defaults.lr, help="Adam learning rate (cosine decay to 0)")
    p.add_argument("--dropout", type=fraction, default=defaults.dropout)
    p.add_argument("--loss", choices=("membrane_mean", "softmax_sum"), default=defaults.loss)
    p.add_argument("--seed", type=non_negative_int, default=defaults.seed)
    p.add_argument("--threads", type=positive_int, default=defaults.threads, help="torch CPU threads")
    p.add_argument("--train-limit", type=positive_int, default=None, help="use only N training recordings (quick check)")
    p.add_argument("--test-limit", type=positive_int, default=None, help="use only N test recordings (quick check)")
    p.add_argument("--split", default=defaults.split, choices=[*SPLIT_KEYWORDS, *FSDD_SPEAKERS],
                   help="official: index 5-49 train, 0-4 test; a speaker: leave-one-speaker-out fold (the other "
                        "four train, this one tests); all: every recording trains (test figures on the official "
                        "test split, seen in training)")
    p.add_argument("--augment", type=non_negative_int, default=defaults.augment, metavar="K",
                   help="augmented copies of each training recording (golden.data.augment), drawn at random per epoch")
    p.add_argument("--out", type=output_dir, default=None, help="output folder (default build/train/<neuron>)")
    p.add_argument("--export", type=output_file, default=None, metavar="FILE",
                   help="also write the quantised integer network to this model file")
    p.add_argument("--force", action="store_true", help="overwrite an existing --export file")
    return p


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.export is not None:
        try:
            check_output(args.export, force=args.force, what="--export")
        except SpikestreamError as exc:
            parser.error(str(exc))
    try:
        config = TrainConfig(
            neuron=args.neuron, hidden=args.hidden, bin_ms=args.bin_ms, window_ms=args.window_ms,
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, dropout=args.dropout, loss=args.loss,
            seed=args.seed, threads=args.threads, train_limit=args.train_limit, test_limit=args.test_limit,
            split=args.split, augment=args.augment,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log = _flush_print
    result = train(config, args.out, log=log)
    log(f"wrote {result.checkpoint}, {result.out_dir / 'history.json'}, {result.out_dir / 'curves.png'}")
    if args.export is not None:
        exported = export_trained(result.model, config, result.train_data, result.test_data, args.export, log=log)
        doc = {k: v for k, v in exported.items() if k not in ("params", "trace")}
        write_text(result.out_dir / "export.json", json.dumps(doc, indent=2))
    return 0


def _flush_print(*args, **kwargs):
    print(*args, **kwargs, flush=True)  # noqa: T201 - the CLI's progress display


if __name__ == "__main__":
    sys.exit(run_main(main))
