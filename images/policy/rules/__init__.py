"""The base-image standard as rules over parsed stages and the catalog.

Each check yields `(rule_id, line, message)`; the engine attaches severities from policy data.
The rules live in three rooms, by family:

* `common`: the rule ids, `StageInfo`, and finding/suggesting catalog images.
* `image_state`: the catalog checks of one image reference (its image's state, its version's pin).
* `stages`: `analyse`, the walk over stages: FROM lines, stage kinds, RUN, ENV, recipe escapes.
"""

from __future__ import annotations

from images.policy.rules.common import (
    BLOCKED,
    BUILDER_NOT_BUILD,
    DEPRECATED,
    DIGEST_UNKNOWN,
    EOL,
    FINAL_NOT_RUNTIME,
    LATEST,
    NOT_APPROVED,
    NOT_PINNED,
    PIPE_TO_SHELL,
    PURPOSES,
    RECIPE_PURPOSES,
    REGISTRY_NOT_APPROVED,
    RESTRICTED,
    RUNTIME_ENV,
    RUNTIME_ENV_DEFAULTS,
    RUNTIME_ENV_VARS,
    SCRATCH,
    SCRATCH_IMAGE,
    SCRATCH_LANGUAGES,
    VERSION_NOT_APPROVED,
    VERSION_SUPERSEDED,
    Hit,
    StageInfo,
    guess_family,
    resolve,
    suggest,
)
from images.policy.rules.stages import analyse, final_chain

__all__ = [
    "BLOCKED",
    "BUILDER_NOT_BUILD",
    "DEPRECATED",
    "DIGEST_UNKNOWN",
    "EOL",
    "FINAL_NOT_RUNTIME",
    "Hit",
    "LATEST",
    "NOT_APPROVED",
    "NOT_PINNED",
    "PIPE_TO_SHELL",
    "PURPOSES",
    "RECIPE_PURPOSES",
    "REGISTRY_NOT_APPROVED",
    "RESTRICTED",
    "RUNTIME_ENV",
    "RUNTIME_ENV_DEFAULTS",
    "RUNTIME_ENV_VARS",
    "SCRATCH",
    "SCRATCH_IMAGE",
    "SCRATCH_LANGUAGES",
    "StageInfo",
    "VERSION_NOT_APPROVED",
    "VERSION_SUPERSEDED",
    "analyse",
    "final_chain",
    "guess_family",
    "resolve",
    "suggest",
]
