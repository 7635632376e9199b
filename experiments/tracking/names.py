"""Every name the zoo writes into MLflow, spelled once: tags, artifact paths and run roles.

Code that writes or reads a run uses these constants, never the bare strings,
so a renamed tag cannot leave a reader behind. MLflow's own tags (``mlflow.*``)
are the ones its UI reads: the parent of a nested run, the run's note, the git
commit and whether it was dirty.

A run's page in MLflow's UI lists every tag except ``mlflow.*`` ones. So the zoo's
own tags a researcher reads (`VISIBLE_TAGS`: the model, the sweep and trial, why a
run failed or stopped) keep their ``zoo.*`` names, and its plumbing (owner and
heartbeat, versions, digests, the data cache, the logged model's URI, ...) is
written under `HIDDEN_TAG_PREFIX`, or under MLflow's own name where it has one.
Runs logged before that hold the plumbing as ``zoo.*``: readers go through
`read_tag`, which accepts either name.
"""

from __future__ import annotations

from collections.abc import Mapping

# -- artifacts of a run ------------------------------------------------------------
CONFIG_ARTIFACT = "config.yaml"
"""The run's full config, readable by ``zoo train --config`` (and by resume and eval)."""

LAST_STATE_ARTIFACT = "checkpoints/last.ckpt"
"""The last full training state (the state ``--resume`` continues from)."""

INTERRUPTED_STATE_ARTIFACT = "checkpoints/interrupted.ckpt"
"""The training state at the batch where a SIGTERM or Ctrl-C stopped the run."""

BEST_WEIGHTS_ARTIFACT = "weights/best.safetensors"
"""The best epoch's weights (safetensors: no pickle)."""

WEIGHTS_INFO_ARTIFACT = "weights/model.json"
"""What the best weights fit: model name, builder arguments, class names, preprocessing."""

DIGEST_TAG_PREFIX = "mlflow.zoo.sha256."
"""``mlflow.zoo.sha256.<artifact path>``: the SHA-256 (hex) of a file as the run wrote it (see `DIGESTED_ARTIFACTS`)."""

TEST_REPORT_DIR = "test"
"""Folder of the test report: the confusion matrix and the per-class accuracy."""

PER_CLASS_ARTIFACT = f"{TEST_REPORT_DIR}/per_class_accuracy.csv"
CONFUSION_ARTIFACT = f"{TEST_REPORT_DIR}/confusion_matrix.png"

TRACEBACK_ARTIFACT = "error/traceback.txt"
"""The traceback of a run that FAILED."""


DIGESTED_ARTIFACTS = (BEST_WEIGHTS_ARTIFACT, WEIGHTS_INFO_ARTIFACT)
"""Files whose SHA-256 the run records and every reader checks: the weights, and what they fit."""


def digest_tag(artifact_path: str) -> str:
    """The tag that holds an artifact's SHA-256.

    Args:
        artifact_path: Such as `BEST_WEIGHTS_ARTIFACT`.

    Returns:
        ``mlflow.zoo.sha256.weights/best.safetensors`` and the like.
    """
    return DIGEST_TAG_PREFIX + artifact_path


# -- tags the zoo writes -----------------------------------------------------------
MODEL_TAG = "zoo.model"
"""The registry name of the model a run trained (also on registered model versions)."""

ROLE_TAG = "zoo.role"
"""Marks runs that are not training runs: `SWEEP_ROLE` (a parent) or `EVAL_ROLE`."""

SWEEP_ROLE = "sweep"
EVAL_ROLE = "eval"

EVAL_OF_TAG = "zoo.eval_of"
"""On an eval run: the id of the run whose weights it evaluated."""

LOGGED_MODEL_TAG = "mlflow.zoo.logged_model_uri"
"""The URI of the run's logged model (``models:/m-...``)."""

HEARTBEAT_TAG = "mlflow.zoo.heartbeat"
"""When a live run last showed a sign of life, in UTC: ``2026-12-08T02:13:17.123+00:00`` (older runs: Unix seconds)."""

KILLED_REASON_TAG = "zoo.killed_reason"
"""Why ``zoo runs --mark-stale`` marked a run KILLED."""

GIT_DIRTY_TAG = "mlflow.source.git.dirty"
"""``true`` when the code that ran had uncommitted changes."""

VERSION_TAG_PREFIX = "mlflow.zoo.version."
"""``mlflow.zoo.version.<library>``: the versions that trained the run."""

WORLD_SIZE_TAG = "mlflow.zoo.world_size"
GLOBAL_BATCH_TAG = "mlflow.zoo.global_batch_size"
STRATEGY_TAG = "mlflow.zoo.strategy"

REGISTERED_RUN_TAG = "zoo.run_id"
"""On a registered model version: the run it came from."""

REGISTERED_METRIC_TAG_PREFIX = "zoo."
"""``zoo.test_acc``, ``zoo.best_val_acc``: on a registered model version, the run's figures."""

# -- MLflow's own tags, which its UI reads -----------------------------------------
PARENT_TAG = "mlflow.parentRunId"
"""MLflow nests a run under the run with this id (a sweep's children)."""

RUN_NAME_TAG = "mlflow.runName"
NOTE_TAG = "mlflow.note.content"
"""The run's description, shown on its page."""

GIT_COMMIT_TAG = "mlflow.source.git.commit"

# -- metric names the analysis reads back ------------------------------------------
GRAD_NORM_PREFIX = "grad_norm/"
"""``grad_norm/<stage>``: per-stage gradient norms (``--log-grad-norms``)."""

OWNER_TAG = "mlflow.zoo.owner"
"""``HOST PID TOKEN`` of the process that writes a RUNNING run (one at a time: see `heartbeat.claim`)."""

FAILURE_TAG = "zoo.failure"
"""Why a run FAILED, in one line (the traceback is the ``error/traceback.txt`` artifact)."""

ENDED_EARLY_TAG = "zoo.ended_early"
"""Why a run was stopped on purpose before its end (a sweep's pruner); its status is KILLED."""

# -- a sweep's trials ---------------------------------------------------------------
SWEEP_TAG = "zoo.sweep"
"""On a sweep's parent and every child: the sweep's (Optuna study's) name."""

TRIAL_TAG = "zoo.trial"
"""On a child run: its trial number in the study."""

TRIAL_STATE_TAG = "mlflow.zoo.trial_state"
"""On a child run: the trial's end as Optuna has it (COMPLETE, PRUNED, FAIL)."""

WORKER_TAG = "mlflow.zoo.worker"
"""On a child run: ``HOST PID TOKEN`` of the worker process that trained it."""

THREADS_TAG = "mlflow.zoo.torch_threads"
"""On a child run: the torch threads its worker used (a machine's cores shared out among its workers)."""

DATASET_CONTEXT_TAG = "mlflow.data.context"
"""A run's dataset input: which part it is (``train``, ``validation``, ``test``)."""

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
"""The kind of the experiments the zoo creates: model training (MLflow's UI tells GenAI ones apart)."""

DATA_CACHE_TAG = "mlflow.zoo.data_cache_key"
"""The content key of the run's decoded-image cache (which cache folder its images came from)."""

UI_APP = "zoo"
"""The MLflow app plugin (``mlflow server --app-name zoo``) that ``zoo ui`` runs: see ``tracking.ui_app``."""

UI_AUTH_APP = "zoo-auth"
"""The same with MLflow's basic-auth (``mlflow server --app-name zoo-auth``), for a team server."""

# -- sweeps
SWEEP_PLAN_TAG = "mlflow.zoo.sweep_plan"
"""On a sweep's parent: the digest of what it runs, so that only the same plan continues it under its name."""

SWEEP_DONE_METRIC = "sweep.complete"
"""On a sweep's parent, logged with its summary: a parent that has it is finished (its command starts ``NAME-2``)."""

SWEEP_FILE_ARTIFACT = "sweep"
"""The parent's artifact folder: the experiment file, ``trials.csv``, ``groups.csv``, ``pairs.csv``, the plots."""

SWEEP_PARAM_PREFIX = "sweep."
"""The parent's params (``sweep.file``, ``sweep.seeds``, ...) and counts (``sweep.pruned``); see `sweep_param`."""

SWEEP_OBJECTIVE_PARAM = "sweep.objective"
"""On a sweep's parent: ``"maximize val_acc"``, the direction and metric its trials were judged by."""

SWEEP_SAMPLER_PARAM = "sweep.sampler"
"""On a search's parent: its sampler (``tpe``, ``random``, ``grid``)."""

SEARCH_PARAM_PREFIX = "search."
"""On a search's parent: one param per searched field, its distribution (``search.lr``)."""

VERSUS_METRIC_PREFIX = "vs/"
"""On a sweep's parent: the pairwise figures, ``vs/GROUP/METRIC/FIGURE``."""

STUDY_PARENT_ATTR = "zoo.parent_run_id"
"""Optuna study attribute: the MLflow parent run's id ("" without one). Written last by the creator."""

STUDY_PLAN_ATTR = "zoo.plan"
"""Optuna study attribute: the digest of the experiment it runs."""

STUDY_STOP_ATTR = "zoo.stop"
"""Optuna study attribute: why every worker should stop (``--fail-fast`` after a failed trial)."""

TRIAL_SLOT_ATTR = "zoo.slot"
"""Optuna trial attribute: the slot a trial fills (0 .. trials - 1; a listed run's index)."""

TRIAL_RUN_ATTR = "zoo.mlflow_run_id"
"""Optuna trial attribute: the MLflow child run of the trial."""


# -- which tags a run's page shows ---------------------------------------------------
HIDDEN_TAG_PREFIX = "mlflow.zoo."
"""The zoo's plumbing tags: MLflow's UI leaves every ``mlflow.*`` tag off a run's page and its tables."""

VISIBLE_TAGS = (
    MODEL_TAG,
    ROLE_TAG,
    EVAL_OF_TAG,
    SWEEP_TAG,
    TRIAL_TAG,
    FAILURE_TAG,
    ENDED_EARLY_TAG,
    KILLED_REASON_TAG,
)
"""The zoo's tags a run's page shows, each where it applies (a trained run shows only ``zoo.model``)."""

LEGACY_TAG_PREFIX = "zoo."
"""Where the plumbing tags were before they moved under `HIDDEN_TAG_PREFIX` (runs logged before still hold them)."""

LEGACY_GIT_DIRTY_TAG = "zoo.git_dirty"
"""`GIT_DIRTY_TAG` in runs logged before it took MLflow's own name."""


def legacy_tag(name: str) -> str | None:
    """The name a tag had in runs logged before the plumbing moved under ``mlflow.*``.

    Args:
        name: A tag's name now, such as `OWNER_TAG` or ``digest_tag(...)``.

    Returns:
        ``zoo.owner`` for ``mlflow.zoo.owner``, ``zoo.git_dirty`` for `GIT_DIRTY_TAG`;
        ``None`` for a tag that kept its name.
    """
    if name == GIT_DIRTY_TAG:
        return LEGACY_GIT_DIRTY_TAG
    if name.startswith(HIDDEN_TAG_PREFIX):
        return LEGACY_TAG_PREFIX + name[len(HIDDEN_TAG_PREFIX) :]
    return None


def read_tag(tags: Mapping[str, str], name: str) -> str | None:
    """A run's tag by its name now, else by the name runs logged before gave it.

    Args:
        tags: The run's tags (``run.data.tags``).
        name: The tag's name now.

    Returns:
        Its value, or ``None`` when the run has it under neither name.
    """
    value = tags.get(name)
    old = legacy_tag(name)
    if value is None and old is not None:
        value = tags.get(old)
    return value


def sweep_param(name: str) -> str:
    """A sweep parent's param or count: ``sweep_param("seeds")`` is ``"sweep.seeds"``.

    Args:
        name: The part after the prefix.

    Returns:
        The full name.
    """
    return SWEEP_PARAM_PREFIX + name


def sweep_parents_filter(name: str) -> str:
    """MLflow's filter for the parent runs of the sweep called ``name``.

    Args:
        name: The sweep's name.

    Returns:
        A ``filter_string`` for ``search_runs``.
    """
    return f"tags.`{SWEEP_TAG}` = '{name}' and tags.`{ROLE_TAG}` = '{SWEEP_ROLE}'"


def children_filter(parent_run_id: str) -> str:
    """MLflow's filter for the child runs of a parent (a sweep's trials).

    Args:
        parent_run_id: The parent's run id.

    Returns:
        A ``filter_string`` for ``search_runs``.
    """
    return f"tags.`{PARENT_TAG}` = '{parent_run_id}'"
