"""Logger glue: W&B that never blocks, the run's config and provenance in every logger.

Three things Lightning's loggers do not do on their own:

* **W&B without an account.** :class:`WandbLogger` picks its mode before ``wandb.init``:
  ``$WANDB_MODE`` if the user set it, online when an API key is available
  (``$WANDB_API_KEY`` or a ``~/.netrc`` entry, which ``wandb login`` writes), offline
  otherwise. An online start that fails (no network, bad key) falls back to offline after
  ``init_timeout`` seconds instead of killing the run. Offline runs are uploaded later with
  ``wandb sync <dir>``; the exact command is logged at the start and the end of the run.
* **Provenance.** :func:`log_run_config` sends every logger the resolved Hydra config as a
  plain dict, plus ``run``: the run directory, the package version, the git commit of a checkout (and
  whether the tree was dirty),
  the command-line overrides and, in a multirun, the sweep directory and job number.
* **One W&B run per Hydra job.** :func:`finish_loggers` calls ``wandb.finish()`` at the end
  of each job; without it, the jobs of a multirun (one process) all log into the first run.
  Multirun jobs share a W&B ``group`` named after the sweep, so a dashboard groups them.
"""

from __future__ import annotations

import logging
import netrc
import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import WandbLogger as LightningWandbLogger
from pytorch_lightning.loggers.logger import rank_zero_experiment

from gan_lightning import __version__
from gan_lightning.runtime.cli import checkout_root
from gan_lightning.runtime.compat import (
    wandb_forget_run,
    wandb_init_kwargs,
    wandb_run_is_offline,
    wandb_set_run_id,
    wandb_started_run,
)

log = logging.getLogger(__name__)

#: Hosts whose ~/.netrc entry counts as "logged in" (the public cloud, old and new names).
WANDB_HOSTS = ("api.wandb.ai", "api.forge.coreweave.com")
WANDB_MODES = ("online", "offline", "disabled")


# ---------------------------------------------------------------------------- W&B mode
def local_only(mode: str | None) -> None:
    """An offline or disabled run talks to no server: give wandb's process-wide settings the
    mode too (``wandb.setup``). ``wandb.init(mode="offline")`` alone leaves them online, and
    the first ``log`` then builds wandb's analytics client (OpenTelemetry exporters aimed at
    the server): 0.76 s inside the training loop here, and traffic an offline run must not
    send."""
    if mode in ("offline", "disabled"):
        import wandb

        wandb.setup(settings=wandb.Settings(mode=mode))


def wandb_credentials_available() -> bool:
    """Whether ``wandb.init`` would find an API key without prompting."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    hosts = list(WANDB_HOSTS)
    base_url = os.environ.get("WANDB_BASE_URL")
    if base_url:
        hosts.insert(0, urlparse(base_url).hostname or base_url)
    candidates = [os.environ.get("NETRC"), Path.home() / ".netrc", Path.home() / "_netrc"]
    for path in candidates:
        if not path or not Path(path).is_file():
            continue
        try:
            auth = netrc.netrc(str(path))
        except (netrc.NetrcParseError, OSError):
            continue
        if any(auth.authenticators(host) for host in hosts):
            return True
    return False


def resolve_wandb_mode(mode: str | None) -> str | None:
    """The mode to pass to ``wandb.init``; ``None`` leaves the user's ``$WANDB_MODE`` in charge."""
    if mode is not None:
        if mode not in WANDB_MODES:
            from gan_lightning.errors import ConfigError

            raise ConfigError(
                f"logger.wandb.mode={mode!r} is not a W&B mode; choose one of {list(WANDB_MODES)} "
                "or null (automatic: online with an API key, offline without)."
            )
        return mode
    if os.environ.get("WANDB_MODE"):
        return None
    return "online" if wandb_credentials_available() else "offline"


# ---------------------------------------------------------------------------- provenance
def git_state(root: str | Path | None = None) -> dict[str, Any]:
    """Commit and dirtiness of the checkout the code runs from; ``{}`` for an installed
    package or a folder that is not the top of a git work tree (a venv or an unpacked sdist
    inside someone else's repository must not report that repository's commit)."""
    root = Path(root) if root else checkout_root()
    if root is None:
        return {}
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.splitlines()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    if len(found) != 2 or Path(found[0]).resolve() != Path(root).resolve():
        return {}
    return {"git_commit": found[1], "git_dirty": bool(status.strip())}


def hydra_job() -> dict[str, Any]:
    """What Hydra knows about this job (``{}`` when not launched through ``@hydra.main``)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return {}
    hc = HydraConfig.get()
    choices = OmegaConf.to_container(hc.runtime.choices, resolve=True) or {}
    info: dict[str, Any] = {
        "output_dir": hc.runtime.output_dir,
        "overrides": list(hc.overrides.task),
        "experiment": choices.get("experiment"),
        "model": choices.get("model"),
        "data": choices.get("data"),
        "multirun": hc.mode == RunMode.MULTIRUN,
    }
    if info["multirun"]:
        info["sweep_dir"] = hc.sweep.dir
        info["job_num"] = int(hc.job.num)
    return info


def run_metadata(cfg: DictConfig | None = None) -> dict[str, Any]:
    """The ``run`` entry logged next to the config: where the run lives and which code made it."""
    job = hydra_job()
    meta: dict[str, Any] = {
        "output_dir": job.get("output_dir") or (_select(cfg, "paths.output_dir") if cfg else None),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "gan_lightning_version": __version__,
    }
    for key in ("overrides", "multirun", "sweep_dir", "job_num"):
        if key in job:
            meta[key] = job[key]
    meta.update(git_state())
    return meta


def _select(cfg: DictConfig, key: str) -> Any:
    try:
        return OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
    except Exception:  # noqa: BLE001 - provenance is best effort
        return None


def default_run_name(job: dict[str, Any]) -> str | None:
    """The experiment's name (or ``<model>-<data>``), ``-<job num>`` inside a multirun."""
    if not job:
        return None
    base = job.get("experiment") or "-".join(p for p in (job.get("model"), job.get("data")) if p)
    if job.get("multirun"):
        return f"{base}-{job['job_num']}" if base else f"job-{job['job_num']}"
    return base or None


def default_group(job: dict[str, Any], job_type: str | None) -> str | None:
    """Multirun jobs share ``<experiment or task>-<sweep dir name>``; single runs get none."""
    if not job.get("multirun"):
        return None
    base = job.get("experiment") or job_type or "sweep"
    return f"{base}-{Path(job['sweep_dir']).name}"


# ---------------------------------------------------------------------------- the logger
class WandbLogger(LightningWandbLogger):
    """Lightning's W&B logger that picks online/offline itself and never blocks on login.

    Args:
        save_dir: where the ``wandb/`` folder goes (the Hydra run directory).
        project / entity / group / tags / name / job_type / notes: as in ``wandb.init``.
            ``name=None`` names the run after the experiment (``<model>-<data>`` without one),
            ``group=None`` groups multirun jobs by sweep; ``tags`` get the model and data
            choices appended.
        log_model: upload checkpoints as artifacts (``True``: at the end, ``"all"``: as
            written). Works offline too: ``wandb sync`` uploads them later.
        mode: ``online``/``offline``/``disabled``, or ``None`` for automatic (see module doc).
        init_timeout: seconds an online start may take before falling back to offline.
    """

    def __init__(
        self,
        save_dir: str | Path = ".",
        project: str = "gan-lightning",
        entity: str | None = None,
        group: str | None = None,
        tags: Sequence[str] | None = None,
        name: str | None = None,
        job_type: str | None = None,
        notes: str | None = None,
        log_model: bool | str = False,
        mode: str | None = None,
        init_timeout: float = 30.0,
        **kwargs: Any,
    ) -> None:
        import wandb

        job = hydra_job()
        tags = [str(t) for t in (tags or [])]
        tags += [str(job[k]) for k in ("model", "data") if job.get(k) and str(job[k]) not in tags]
        init: dict[str, Any] = {
            "entity": entity,
            "group": group or default_group(job, job_type),
            "tags": tags or None,
            "job_type": job_type,
            "notes": notes,
            "settings": wandb.Settings(init_timeout=float(init_timeout)),
        }
        resolved_mode = resolve_wandb_mode(mode)
        if resolved_mode is not None:
            init["mode"] = resolved_mode
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        super().__init__(
            name=name or default_run_name(job),
            save_dir=str(save_dir),
            project=project,
            log_model=log_model,
            **{k: v for k, v in init.items() if v is not None},
            **kwargs,
        )
        init_kwargs = wandb_init_kwargs(self)
        if init_kwargs.get("anonymous") is None:
            init_kwargs.pop("anonymous", None)  # wandb 0.31 warns about the key itself

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        init_kwargs = wandb_init_kwargs(self)
        mode = init_kwargs.get("mode", os.environ.get("WANDB_MODE"))
        if wandb_started_run(self) is None:
            local_only(mode)
        if wandb_started_run(self) is None and mode in (None, "online"):
            try:
                return super().experiment
            except Exception as err:  # noqa: BLE001 - wandb raises CommError, UsageError, ...
                log.warning(
                    "W&B could not start online (%s); logging offline instead.",
                    str(err).splitlines()[0][:200],
                )
                wandb_forget_run(self)
                init_kwargs["mode"] = "offline"
                local_only("offline")
        try:
            run = super().experiment
        except Exception as err:  # noqa: BLE001 - wandb raises UsageError, ServerResponseError ...
            if not init_kwargs.get("id") or wandb_started_run(self) is not None:
                raise
            # Continuing a run (resume=auto) can fail when the killed process's W&B service
            # still holds the id: log to a new run rather than lose the training.
            log.warning(
                "W&B could not continue run %s (%s); logging to a new run instead.",
                init_kwargs["id"],
                str(err).splitlines()[0][:200],
            )
            wandb_forget_run(self)
            # A fresh id, and no resume: with ``resume="allow"`` and no id, wandb would pick
            # the held id again from its ``wandb-resume.json``.
            init_kwargs["resume"] = "never"
            wandb_set_run_id(self, uuid.uuid4().hex[:8])
            run = super().experiment
        if not getattr(self, "_announced", False):
            self._announced = True
            hint = self.sync_hint()
            if hint:
                log.info("W&B is logging offline to %s. %s", self.offline_dir, hint)
        return run

    @property
    def offline_dir(self) -> Path | None:
        """The ``offline-run-*`` directory of an offline run (``None`` when online/not started)."""
        run = wandb_started_run(self)
        if run is None or not wandb_run_is_offline(run):
            return None
        sync_dir = getattr(run.settings, "sync_dir", None)
        return Path(sync_dir) if sync_dir else None

    def sync_hint(self) -> str | None:
        path = self.offline_dir
        return f"Upload it later with: wandb sync {path}" if path else None


# ---------------------------------------------------------------------------- train.py hooks
def log_run_config(trainer: Any, cfg: DictConfig) -> dict[str, Any]:
    """Send the resolved config (plain dict) and the ``run`` provenance to every logger."""
    config = OmegaConf.to_container(cfg, resolve=True)
    config["run"] = run_metadata(cfg)
    for logger in getattr(trainer, "loggers", []) or []:
        try:
            logger.log_hyperparams(config)
        except Exception as err:  # noqa: BLE001 - provenance must not stop training
            log.warning("Could not log the config to %s: %s", type(logger).__name__, err)
    return config


def finish_loggers(trainer: Any, success: bool = True) -> None:
    """End each W&B run of this job (one run per multirun job) and say how to sync it."""
    for logger in getattr(trainer, "loggers", []) or []:
        run = wandb_started_run(logger) if isinstance(logger, LightningWandbLogger) else None
        if run is None:
            continue
        hint = logger.sync_hint() if isinstance(logger, WandbLogger) else None
        offline_dir = logger.offline_dir if isinstance(logger, WandbLogger) else None
        try:
            run.finish(exit_code=0 if success else 1)
        except Exception as err:  # noqa: BLE001
            log.warning("wandb.finish() failed: %s", err)
        if hint:
            log.info("W&B offline run saved in %s. %s", offline_dir, hint)


# ---------------------------------------------------------------------------- console
#: Lightning's own lines that tell a user nothing about their run: an advertisement printed at
#: every Trainer start, and a deprecation inside Lightning's pytree helper (torch 2.15) that the
#: user cannot act on.
LIBRARY_NOISE = ("💡 Tip:",)
LIBRARY_WARNINGS = (r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",)


class _DropLibraryNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(LIBRARY_NOISE)


def quiet_library_noise() -> None:
    """Keep the console to what concerns the run (idempotent)."""
    import warnings

    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLibraryNoise) for f in logger.filters):
            logger.addFilter(_DropLibraryNoise())
    for message in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
