"""The protocol behind a score: what makes two FIDs (or precisions) comparable, or not.

FID falls as the number of images grows, moves with the real split, the feature extractor and
its weights, the resizing and even the library versions. A number without those is a number
nobody can compare with. :func:`score_protocol` records them; gan-evaluate writes it into
every row of ``metrics.json``, a training run into ``results.json`` and its loggers' config
(``metrics_protocol``), and the sweep report says whether its jobs share one.

Keys: ``num_generated``, ``num_real``, ``split``, ``seed``, ``extractor``,
``extractor_weights`` (the weights file's name), ``extractor_sha256`` and
``extractor_sha256_of`` (``file``: the weights file, as torch-fidelity names its InceptionV3
file after its hash; ``state_dict``: the tensors of the loaded network, for the digit
classifier, whose file also holds its training time), ``resize``, the KID and k-NN settings,
and ``versions`` (torch, torchvision, torchmetrics, torch-fidelity, gan_lightning).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

#: Distributions whose versions change the numbers (or may).
VERSIONED = ("torch", "torchvision", "torchmetrics", "torch-fidelity", "gan_lightning")
#: Protocol keys that do not make two scores incomparable when they differ.
INFORMATIVE_ONLY = ("extractor_weights",)


def package_versions() -> dict[str, str | None]:
    """Installed versions of :data:`VERSIONED` (None: not installed)."""
    versions: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def sha256_file(path: str | Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_state_dict(module: nn.Module) -> str:
    """A hash of a network's tensors (names, dtypes, shapes, bytes; in name order): equal for
    equal weights, whatever file or container they came in."""
    digest = hashlib.sha256()
    state = module.state_dict()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def extractor_fingerprint(extractor: nn.Module) -> dict[str, str | None]:
    """``extractor_weights``, ``extractor_sha256``, ``extractor_sha256_of`` of an extractor
    (computed once per extractor: hashing InceptionV3's 91 MB file takes a moment)."""
    cached = getattr(extractor, "_protocol_fingerprint", None)
    if cached is not None:
        return cached
    path = getattr(extractor, "weights_path", None)
    network = getattr(extractor, "classifier", None)
    if network is not None:  # the digit classifier: its tensors, not its file's metadata
        fingerprint = {"sha256": sha256_state_dict(network), "of": "state_dict"}
    elif path is not None and Path(path).is_file():
        fingerprint = {"sha256": sha256_file(path), "of": "file"}
    else:
        fingerprint = {"sha256": sha256_state_dict(extractor), "of": "state_dict"}
    result = {
        "extractor_weights": Path(path).name if path else None,
        "extractor_sha256": fingerprint["sha256"],
        "extractor_sha256_of": fingerprint["of"],
    }
    extractor._protocol_fingerprint = result  # type: ignore[attr-defined]
    return result


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(int(s)) for s in shape)


def resize_of(extractor: Any, shape: Sequence[int] | None) -> str:
    """How images of ``shape`` (C, H, W) reach ``extractor`` (see
    :func:`~gan_lightning.metrics.extractors.prepare_images`)."""
    spec = extractor.spec
    if shape is None:
        return "unknown"
    steps = []
    channels = int(shape[0])
    if channels == 1 and spec.channels == 3:
        steps.append("gray repeated to RGB")
    elif channels == 3 and spec.channels == 1:
        steps.append("RGB to luma (BT.601)")
    if spec.size is not None and tuple(shape[-2:]) != (spec.size, spec.size):
        steps.append(f"{_shape(shape[-2:])} -> {spec.size}x{spec.size} (bilinear, antialiased)")
    if extractor.name == "inception":
        steps.append(f"{_shape(shape[-2:])} -> 299x299 (torch-fidelity's bilinear, as TF1)")
    return f"{_shape(shape)}: " + ("; ".join(steps) if steps else "none")


def score_protocol(metrics: Any) -> dict[str, Any]:
    """The protocol of the scores of a prepared, scored
    :class:`~gan_lightning.metrics.GenerativeMetrics`."""
    scorer = metrics.scorer
    shapes = scorer.image_shapes
    real = resize_of(scorer.extractor, shapes.get("real"))
    generated = resize_of(scorer.extractor, shapes.get("generated") or shapes.get("real"))
    options = metrics.scorer_options
    protocol: dict[str, Any] = {
        "num_generated": int(metrics.num_samples),
        "num_real": int(metrics.num_real_total),
        "split": metrics.split,
        "seed": int(metrics.seed),
        "extractor": metrics.extractor_name,
        **extractor_fingerprint(scorer.extractor),
        "resize": real if real == generated else f"real {real}; generated {generated}",
        "kid_subsets": options["kid_subsets"],
        "kid_subset_size": options["kid_subset_size"],
    }
    if options.get("prdc"):
        protocol["precision_recall_k"] = options["precision_recall_k"]
        protocol["density_coverage_k"] = options["density_coverage_k"]
    protocol["versions"] = package_versions()
    return protocol


def log_protocol(loggers: Iterable[Any], protocol: dict[str, Any] | None) -> None:
    """Send ``protocol`` to every logger's config (``metrics_protocol``): hyperparameters, not
    a per-step scalar. A logger that cannot take it only gets a warning."""
    if protocol is None:
        return
    for logger in loggers or []:
        try:
            logger.log_hyperparams({"metrics_protocol": protocol})
        except Exception as err:  # noqa: BLE001 - provenance must not stop training
            log.warning("Could not log the metrics protocol to %s: %s", type(logger).__name__, err)


def differences(protocols: Sequence[dict[str, Any] | None]) -> list[str]:
    """The protocol keys whose values differ between ``protocols`` (``versions.torch`` for a
    version), ignoring :data:`INFORMATIVE_ONLY`; a missing protocol differs as ``protocol``."""
    if any(p is None for p in protocols):
        return ["protocol"] if any(p is not None for p in protocols) else []

    def flat(protocol: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in protocol.items() if k != "versions"}
        out.update({f"versions.{k}": v for k, v in (protocol.get("versions") or {}).items()})
        return out

    flats = [flat(p) for p in protocols]  # type: ignore[arg-type]
    keys = [k for k in dict.fromkeys(k for f in flats for k in f) if k not in INFORMATIVE_ONLY]
    return [k for k in keys if len({repr(f.get(k)) for f in flats}) > 1]


def describe(protocol: dict[str, Any]) -> str:
    """One line a reader can compare at a glance."""
    versions = protocol.get("versions") or {}
    shown = ", ".join(
        f"{name} {versions[name]}"
        for name in ("torch", "torchmetrics", "torch-fidelity", "gan_lightning")
        if versions.get(name)
    )
    return (
        f"{protocol.get('num_generated')} generated vs {protocol.get('num_real')} real "
        f"{protocol.get('split')} images, extractor {protocol.get('extractor')} "
        f"(sha256 {str(protocol.get('extractor_sha256'))[:12]} of its "
        f"{protocol.get('extractor_sha256_of')}), resize {protocol.get('resize')}, "
        f"seed {protocol.get('seed')}; {shown}"
    )
