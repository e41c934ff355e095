"""A FLAMES-style network for the spoken digits: DH-LIF dendrites feeding SA-HiPPO memories.

The stack (``docs/fsdd_flames.md`` documents the choices and the deviations from FLAMES)::

    cochlea counts (T steps, 32 channels)
      -> DH-LIF layer, H neurons, D dendritic branches     (golden.dhlif.DHLIF / DHLIFParams)
      -> one SA-HiPPO memory per neuron (zoh, order N),     (golden.sahippo.SAHiPPOLayer / SAHiPPOParams)
         updated only when its neuron spikes, decayed over the inter-spike interval
      -> event pooling: each memory's state summed over its own events (H x N/2 complex)
      -> linear readout (batch normalisation folded in)  -> 10 class scores

**Events.** A spike of neuron ``h`` at step ``t`` (0-based) is the SA-HiPPO event
``(tick t + 1, channel h, weight 1)``: ticks count steps from 1, as in
:meth:`golden.sahippo.SAHiPPOLayer.forward_grid`, so the first event of a channel at step ``t``
sees the interval ``t + 1`` from the zero start. The interval ``dt`` is clipped to
``dt_max`` in both the float and the integer model (``dt_max`` defaults to the number of
steps, so no interval is ever clipped).

**Float memory (training path).** :func:`event_memory` runs the event-driven ``zoh`` recurrence
of :meth:`golden.sahippo.SAHiPPOLayer.forward_events` on the step grid, gated by the spikes
(``z <- exp(Lambda g(dt)) z + B_t w`` where a spike arrives, ``z`` held elsewhere) for a whole
batch at once, and sums the post-event state per channel. It is the event path itself (the
FFT path of ``forward_grid`` would put an event on every step and so lose the inter-spike
interval); ``tests/test_flames.py`` checks it against ``forward_events``. The gradient reaches
the spikes through the input jump ``B_t w`` (the surrogate of :class:`golden.dhlif.DHLIF`) and
the memories' ``alpha`` and ``dt_scale`` through ``g``.

**Readout.** ``features = view_as_real(sum over events of z)`` (``H * N`` reals) ->
``BatchNorm1d`` (no affine part) -> ``Linear(H * N, 10)``; the decision is the argmax. On export
the normalisation folds into the linear layer and the integer decision is
``argmax(W_q f_q + b_q)`` with ``f_q`` the exact integer sum of the core's state words
(``state_fmt``), ``W_q`` in :attr:`FlamesInt.readout_fmt` and ``b_q`` at the product's
fractional bits: a plain integer dot product, no rounding.

**As a network.** :func:`flames_network` writes the integer network as a
:class:`golden.network.NetworkParams` of three layer kinds (``dhlif``, ``sahippo``,
``event_pool``), which a model file stores and :func:`golden.network.run_network` runs bit for
bit as :func:`run_flames_int`.

The SA-HiPPO soma (``C``, ``D``, threshold) is not used: the readout takes the state stream.
The integer layer gets ``C = 0``, ``D = 0``, threshold 0, so ``y = 0`` and no soma spike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data.cochlea import CochleaParams
from .data.fsdd import FSDD_SPEAKERS
from .dhlif import DHLIF, DHLIFParams
from .dhlif import run_int as dhlif_run_int
from .event_pool import EventPoolParams
from .fixed import QFormat
from .network import LayerParams, NetworkParams, signed_bits
from .sahippo import SAHiPPOLayer, SAHiPPOParams, SAHiPPOTrace, warped_step
from .sahippo import run_int as sahippo_run_int
from .train import SPLIT_KEYWORDS, load_speech_data, parameter_count, save_checkpoint, train_epochs

__all__ = [
    "FlamesConfig",
    "FlamesFSDD",
    "flames_data",
    "event_memory",
    "spike_events",
    "FlamesInt",
    "FlamesIntResult",
    "export_flames",
    "run_flames_int",
    "flames_network",
    "train_flames",
    "parameter_count",
    "load_flames",
]

N_CLASSES = 10
N_INPUTS = 32


@dataclass
class FlamesConfig:
    """Network size and training settings (defaults: the row of docs/fsdd_flames.md; 90 s to 6 min per epoch on
    2 threads of the shared 2-core machine, depending on what else runs).

    ``dt_scale_range``: the memories' initial ``dt_scale`` (time units per step), log-spaced over
    the ``H`` channels so the memories start with different time scales; ``alpha`` the initial
    spike-aware decay rate (both trained, log form).

    Data (:func:`flames_data`): ``split`` as :attr:`golden.train.TrainConfig.split` (``"official"``
    or a held-out speaker), ``augment`` augmented copies of each training recording (0: clean
    encodings only, the recipe of the shipped model), ``channel_norm`` the cochlea's per-channel
    gain normalisation (:attr:`golden.data.cochlea.CochleaParams.channel_norm`; 0: off, the
    encoding of the shipped model).
    """

    hidden: int = 64
    n_branches: int = 4
    n_state: int = 32
    bin_ms: int = 20
    window_ms: int = 800
    epochs: int = 6
    batch_size: int = 64
    lr: float = 0.005
    seed: int = 0
    threads: int = 2
    alpha: float = 1.0
    dt_scale_range: tuple = (0.005, 0.1)
    train_limit: int | None = None
    test_limit: int | None = None
    split: str = "official"
    augment: int = 0
    channel_norm: float = 0.0

    def __post_init__(self):
        if self.split not in SPLIT_KEYWORDS and self.split not in FSDD_SPEAKERS:
            raise ValueError(f"split must be one of {list(SPLIT_KEYWORDS)} or a speaker {list(FSDD_SPEAKERS)}, "
                             f"not {self.split!r}")
        if isinstance(self.augment, bool) or not isinstance(self.augment, int) or self.augment < 0:
            raise ValueError(f"augment must be a non-negative int, not {self.augment!r}")
        CochleaParams(channel_norm=self.channel_norm)  # refuses values outside [0, 1]
        if self.hidden < 1 or self.n_branches < 1 or self.n_branches > N_INPUTS:
            raise ValueError(f"need hidden >= 1 and 1 <= n_branches <= {N_INPUTS}; got {self.hidden}, {self.n_branches}")
        if self.n_state < 2 or self.n_state % 2:
            raise ValueError(f"n_state must be an even order >= 2, not {self.n_state}")
        if self.bin_ms < 1 or self.window_ms < self.bin_ms:
            raise ValueError(f"need 1 <= bin_ms <= window_ms, got {self.bin_ms}, {self.window_ms}")
        if self.epochs < 1 or self.batch_size < 1 or self.threads < 1:
            raise ValueError("epochs, batch_size and threads must be >= 1")

    @property
    def n_steps(self) -> int:
        return self.window_ms // self.bin_ms

    @property
    def cochlea(self) -> CochleaParams:
        """The encoder the network's input comes from."""
        return CochleaParams(channel_norm=self.channel_norm)


def flames_data(config: FlamesConfig):
    """``(train, test)`` :class:`golden.train.SpeechData` of ``config``: its split, limits,
    augmented copies (training part only) and cochlea."""
    train = load_speech_data("train", config.bin_ms, config.window_ms, config.train_limit, split=config.split,
                             augment=config.augment, cochlea=config.cochlea)
    test = load_speech_data("test", config.bin_ms, config.window_ms, config.test_limit, split=config.split,
                            cochlea=config.cochlea)
    return train, test


def event_memory(spikes: torch.Tensor, memory: SAHiPPOLayer, dt_max: int) -> torch.Tensor:
    """Per channel, the sum over its events of the ``zoh`` state right after each event.

    ``spikes`` (B, T, H), values 0 or 1 (surrogate gradients pass through). A spike of channel
    ``h`` at step ``t`` is the event ``(tick t + 1, h, weight spikes[b, t, h])`` of
    :meth:`golden.sahippo.SAHiPPOLayer.forward_events`, with ``dt`` clipped to ``dt_max``.
    Returns complex (B, H, N/2).
    """
    if memory.method != "zoh":
        raise ValueError("event_memory runs the zoh discretisation only (the Taylor-2 core is not used here)")
    if spikes.ndim != 3 or spikes.shape[2] != memory.n_channels:
        raise ValueError(f"spikes must be (batch, steps, {memory.n_channels}), got {tuple(spikes.shape)}")
    batch, steps, channels = spikes.shape
    fired = spikes.detach() > 0
    # Intervals first (integers, no gradient): ticks since each channel's previous event.
    dts = torch.zeros(batch, steps, channels, dtype=torch.float64)
    last = torch.zeros(batch, channels, dtype=torch.float64)
    for t in range(steps):
        dts[:, t] = (t + 1.0 - last).clamp(max=float(dt_max))
        last = torch.where(fired[:, t], torch.full_like(last, t + 1.0), last)
    g = warped_step(dts, memory.alpha, memory.dt_scale)[..., None]  # (B, T, H, 1)
    # Real arithmetic (faster under autograd than complex): decay = exp(lam g) = a (cos, sin).
    lam_re, lam_im = memory.lam.real, memory.lam.imag
    mag = torch.exp(lam_re * g)
    d_re, d_im = mag * torch.cos(lam_im * g), mag * torch.sin(lam_im * g)
    s = spikes.to(torch.float64)[..., None]
    j_re, j_im = memory.b_t.real * s, memory.b_t.imag * s
    gate = fired[..., None].to(torch.float64)
    z_re = torch.zeros(batch, channels, memory.system.n_modes, dtype=torch.float64)
    z_im = torch.zeros_like(z_re)
    total_re, total_im = torch.zeros_like(z_re), torch.zeros_like(z_re)
    # unbind, not [:, t]: a slice's backward would allocate the whole (B, T, ...) tensor per step.
    steps_of = [x.unbind(1) for x in (gate, d_re, d_im, j_re, j_im)]
    for k, dr, di, jr, ji in zip(*steps_of):
        new_re = dr * z_re - di * z_im + jr
        new_im = dr * z_im + di * z_re + ji
        z_re = z_re + k * (new_re - z_re)
        z_im = z_im + k * (new_im - z_im)
        total_re = total_re + k * new_re
        total_im = total_im + k * new_im
    total = torch.complex(total_re, total_im)
    return total


class FlamesFSDD(nn.Module):
    """Float network: DH-LIF -> SA-HiPPO memories (event pooling) -> normalised linear readout.

    ``forward(counts (B, T, 32))`` -> logits (B, 10). :meth:`features` also returns the
    DH-LIF spikes. Float64 throughout (the DH-LIF and SA-HiPPO layers are float64).
    """

    def __init__(self, config: FlamesConfig):
        super().__init__()
        self.config = config
        self.dendrites = DHLIF(N_INPUTS, config.hidden, config.n_branches, seed=config.seed)
        scales = np.geomspace(config.dt_scale_range[0], config.dt_scale_range[1], config.hidden)
        self.memory = SAHiPPOLayer(config.hidden, config.n_state, "zoh", alpha=config.alpha, dt_scale=scales,
                                   seed=config.seed)
        # The soma (C, D) of the SA-HiPPO layer is not used: the readout takes the state.
        self.memory.c.requires_grad_(False)
        self.memory.d.requires_grad_(False)
        n_features = config.hidden * config.n_state
        self.norm = nn.BatchNorm1d(n_features, affine=False, dtype=torch.float64)
        self.readout = nn.Linear(n_features, N_CLASSES, dtype=torch.float64)

    @property
    def dt_max(self) -> int:
        return self.config.n_steps

    def features(self, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features (B, H*N), spikes (B, T, H))``; features ordered ``[h, mode, re/im]``."""
        spikes = self.dendrites(counts)
        total = event_memory(spikes, self.memory, self.dt_max)
        return torch.view_as_real(total).reshape(counts.shape[0], -1), spikes

    def forward(self, counts: torch.Tensor) -> torch.Tensor:
        features, _ = self.features(counts)
        return self.readout(self.norm(features))


# --- integer model ------------------------------------------------------------------------
def spike_events(spikes) -> tuple[np.ndarray, np.ndarray]:
    """``(ticks, channels)`` int64 of a (T, H) spike raster, ordered by tick then channel; tick = step + 1."""
    steps, channels = np.nonzero(np.asarray(spikes))
    return (steps + 1).astype(np.int64), channels.astype(np.int64)


@dataclass
class FlamesIntResult:
    """One recording through :func:`run_flames_int`: every intermediate the hardware produces.

    ``counts`` (T, 32) input; ``dhlif`` the DH-LIF trace; ``ticks``, ``channels``, ``weights_q``
    the SA-HiPPO events; ``sahippo`` its trace; ``features_q`` (H * N,) the summed state words;
    ``scores`` (10,) exact integers; ``decision``.
    """

    counts: np.ndarray
    dhlif: object
    ticks: np.ndarray
    channels: np.ndarray
    weights_q: np.ndarray
    sahippo: SAHiPPOTrace
    features_q: np.ndarray
    scores: np.ndarray
    decision: int


@dataclass
class FlamesInt:
    """The integer network: the bit-exact DH-LIF and SA-HiPPO layers and an integer readout.

    ``readout_weight_q`` (10, H*N) in ``readout_fmt``; ``readout_bias_q`` (10,) at
    ``readout_fmt.frac_bits + sahippo.state_fmt.frac_bits`` fractional bits (exact integers,
    not a QFormat: they are added to the full-width dot product).
    """

    dhlif: DHLIFParams
    sahippo: SAHiPPOParams
    readout_weight_q: np.ndarray
    readout_bias_q: np.ndarray
    readout_fmt: QFormat
    n_steps: int

    def __post_init__(self):
        h, m = self.dhlif.n_neurons, self.sahippo.n_modes
        if self.sahippo.n_channels != h:
            raise ValueError(f"one SA-HiPPO channel per DH-LIF neuron: {self.sahippo.n_channels} channels, {h} neurons")
        self.readout_weight_q = np.asarray(self.readout_weight_q, dtype=np.int64)
        self.readout_bias_q = np.asarray(self.readout_bias_q, dtype=np.int64)
        if self.readout_weight_q.shape != (N_CLASSES, h * m * 2) or self.readout_bias_q.shape != (N_CLASSES,):
            raise ValueError(f"readout must be ({N_CLASSES}, {h * m * 2}) weights and ({N_CLASSES},) biases")
        if not self.readout_fmt.contains(self.readout_weight_q):
            raise ValueError(f"readout weights outside {self.readout_fmt}")

    @property
    def weight_one_q(self) -> int:
        """The event weight of one spike in the SA-HiPPO ``input_fmt``."""
        return 1 << self.sahippo.input_fmt.frac_bits

    def to_json(self) -> dict:
        """Everything needed to rebuild the network (ints and format strings)."""
        s = self.sahippo
        return {
            "dhlif": {
                "weight_q": self.dhlif.weight_q.tolist(),
                "branch_decay_q": self.dhlif.branch_decay_q.tolist(),
                "soma_decay_q": self.dhlif.soma_decay_q.tolist(),
                "threshold_q": self.dhlif.threshold_q,
                **{k: str(getattr(self.dhlif, k)) for k in ("weight_fmt", "current_fmt", "membrane_fmt", "decay_fmt")},
            },
            "sahippo": {
                "method": s.method,
                **{k: getattr(s, k).tolist() for k in ("lam_q", "p_q", "b_q", "c_q", "d_q", "threshold_q", "g_q",
                                                       "substeps", "g_sub_q", "decay_q")},
                **{k: str(getattr(s, k)) for k in ("input_fmt", "state_fmt", "work_fmt", "coef_fmt", "g_fmt",
                                                   "g_sub_fmt", "decay_fmt", "out_coef_fmt", "out_fmt")},
            },
            "readout_weight_q": self.readout_weight_q.tolist(),
            "readout_bias_q": self.readout_bias_q.tolist(),
            "readout_fmt": str(self.readout_fmt),
            "n_steps": self.n_steps,
        }


def export_flames(model: FlamesFSDD, readout_width: int = 18) -> FlamesInt:
    """Quantise a trained (eval-mode) :class:`FlamesFSDD`.

    DH-LIF: :meth:`golden.dhlif.DHLIFParams.from_layer` (default formats). SA-HiPPO:
    :meth:`golden.sahippo.SAHiPPOParams.from_float` with the trained ``alpha``, ``dt_scale``,
    ``dt_max = n_steps`` and ``C = D = threshold = 0``. Readout: batch normalisation folded,
    ``W_eff = W / sd``, ``b_eff = b - W_eff mu``; ``W_eff`` in the signed ``readout_width``-bit
    format with just enough integer bits for its largest magnitude.
    """
    if readout_width < 2:
        raise ValueError(f"readout_width must be >= 2 bits, not {readout_width}")
    with torch.no_grad():
        dh = DHLIFParams.from_layer(model.dendrites)
        h, n = model.config.hidden, model.config.n_state
        sa = SAHiPPOParams.from_float(
            n,
            model.memory.alpha.numpy(),
            model.memory.dt_scale.numpy(),
            c=np.zeros((h, n)),
            d=np.zeros(h),
            threshold=np.zeros(h),
            dt_max=model.dt_max,
            method="zoh",
        )
        sd = torch.sqrt(model.norm.running_var + model.norm.eps)
        w_eff = (model.readout.weight / sd).numpy()
        b_eff = (model.readout.bias - (model.readout.weight / sd) @ model.norm.running_mean).numpy()
    peak = float(np.abs(w_eff).max())
    int_bits = 1  # the sign bit; then enough for the largest weight after rounding
    while peak + 2.0 ** -(readout_width - int_bits + 1) >= 2.0 ** (int_bits - 1):
        int_bits += 1
    if int_bits >= readout_width:
        raise ValueError(f"readout weights reach {peak:.3g}: no fractional bits left in {readout_width} bits")
    fmt = QFormat(int_bits, readout_width - int_bits, True)
    frac = fmt.frac_bits + sa.state_fmt.frac_bits
    bias_q = np.floor(b_eff * 2.0**frac + 0.5).astype(np.int64)
    return FlamesInt(dh, sa, fmt.quantize(w_eff), bias_q, fmt, model.config.n_steps)


def run_flames_int(net: FlamesInt, counts) -> FlamesIntResult:
    """Bit-exact integer network over one recording's counts (T, 32)."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 2 or counts.shape[1] != net.dhlif.in_features:
        raise ValueError(f"counts must be (steps, {net.dhlif.in_features}), got {counts.shape}")
    dh = dhlif_run_int(net.dhlif, counts)
    ticks, channels = spike_events(dh.spike)
    weights_q = np.full(ticks.shape, net.weight_one_q, dtype=np.int64)
    sa = sahippo_run_int(net.sahippo, ticks, channels, weights_q)
    features = np.zeros((net.sahippo.n_channels, net.sahippo.n_modes, 2), dtype=np.int64)
    np.add.at(features, channels, sa.z)
    features_q = features.reshape(-1)
    scores = net.readout_weight_q @ features_q + net.readout_bias_q
    return FlamesIntResult(counts, dh, ticks, channels, weights_q, sa, features_q, scores, int(np.argmax(scores)))


def flames_network(net: FlamesInt, *, bin_ticks: int, max_events_per_step: int,
                   provenance: dict | None = None) -> NetworkParams:
    """The integer network as a :class:`golden.network.NetworkParams` (what a model file stores).

    Three layers, each a registered kind with its own layer rule (:mod:`golden.kinds`):
    ``dhlif`` (the DH-LIF weights are the layer's, no bias), ``sahippo`` (one channel per
    DH-LIF neuron: a diagonal weight matrix of one spike's event weight, no bias; its time base
    is the step counter) and ``event_pool`` (the readout weights, the bias at the product's
    fractional bits). :func:`golden.network.run_network` on it equals :func:`run_flames_int`
    bit for bit (``tests/test_flames_network.py``). ``bin_ticks`` and ``max_events_per_step``
    describe the input events (the cochlea's: 20,000 microsecond ticks and 640 events per step).
    """
    dh, sa = net.dhlif, net.sahippo
    h = dh.n_neurons
    zeros = np.zeros(h, dtype=np.int64)
    memory_weight = np.diag(np.full(h, net.weight_one_q, dtype=np.int64))
    frac = net.readout_fmt.frac_bits + sa.state_fmt.frac_bits
    bias = net.readout_bias_q
    bias_fmt = QFormat(max(1, signed_bits(int(bias.min()), int(bias.max())) - frac), frac)
    layers = [
        LayerParams(dh.weight_q, zeros, dh.weight_fmt, dh.weight_fmt, dh),
        LayerParams(memory_weight, zeros, sa.input_fmt, sa.input_fmt, sa),
        LayerParams(net.readout_weight_q, bias, net.readout_fmt, bias_fmt, EventPoolParams(N_CLASSES, sa.state_fmt)),
    ]
    return NetworkParams(n_inputs=dh.in_features, bin_ticks=bin_ticks, layers=layers,
                         max_events_per_step=max_events_per_step, provenance=dict(provenance or {}))


# --- training -------------------------------------------------------------------------------
def _evaluate(model: FlamesFSDD, counts: torch.Tensor, labels: torch.Tensor, batch: int = 125) -> dict:
    model.eval()
    loss, hits, spikes = 0.0, 0, 0.0
    with torch.no_grad():
        for first in range(0, len(labels), batch):
            x, y = counts[first:first + batch].to(torch.float64), labels[first:first + batch]
            features, s = model.features(x)
            logits = model.readout(model.norm(features))
            loss += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            hits += int((logits.argmax(-1) == y).sum())
            spikes += float(s.sum())
    n = len(labels)
    return {"loss": loss / n, "acc": hits / n, "spike_rate": spikes / (n * counts.shape[1] * model.config.hidden)}


def train_flames(config: FlamesConfig, train_data, test_data, out_dir=None, log=print) -> tuple[FlamesFSDD, list]:
    """Train on ``train_data`` (a :class:`golden.train.SpeechData`), evaluating ``test_data`` each epoch.

    The loop of :func:`golden.train.train_epochs` (Adam, cosine schedule, cross entropy), seeded
    (model, batch order) and ``torch.set_num_threads(config.threads)``. Writes ``checkpoint.pt`` and ``history.json``
    to ``out_dir`` after every epoch when given. Returns the eval-mode model and the history.
    """
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    model = FlamesFSDD(config)
    n_params = parameter_count(model)
    log(f"flames: 32 -> DH-LIF {config.hidden} x {config.n_branches} branches -> SA-HiPPO {config.hidden} x N={config.n_state} "
        f"-> 10, {n_params} parameters; split {config.split}, {len(train_data)} train (+ {config.augment} augmented "
        f"copies each) / {len(test_data)} test, {config.n_steps} steps of {config.bin_ms} ms, channel_norm "
        f"{config.channel_norm}")
    save = None
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        save = lambda history: save_checkpoint(model, config, history, Path(out_dir), n_params)  # noqa: E731

    def forward(model, x):
        logits = model(x)
        return logits, logits

    history = train_epochs(model, train_data, epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                           seed=config.seed, dtype=torch.float64, forward=forward,
                           evaluate=lambda model: _evaluate(model, test_data.counts, test_data.labels),
                           log=log, on_epoch=save)
    return model, history


def load_flames(path) -> tuple[FlamesFSDD, list]:
    """Rebuild a trained model (eval mode) and its history from ``checkpoint.pt``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no FLAMES checkpoint at {path}: train one with python -m bench.flames_fsdd")
    saved = torch.load(path, weights_only=False)
    cfg = dict(saved["config"])
    cfg["dt_scale_range"] = tuple(cfg["dt_scale_range"])
    model = FlamesFSDD(FlamesConfig(**cfg))
    model.load_state_dict(saved["state_dict"])
    model.eval()
    return model, saved["history"]

