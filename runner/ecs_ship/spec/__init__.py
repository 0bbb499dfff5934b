"""Load and check the deploy spec (ecs-ship.yml) into frozen dataclasses.

schema/ecs-ship.schema.json is the one description of the spec's keys, types and defaults: editors validate with
it, and load_spec validates with a small validator for exactly the JSON Schema subset it uses, then fills in its
defaults. Every error names the file, the line and the key path where the offending value was written, also when
it reached a service through an environment overlay or a `services` entry.
"""

from __future__ import annotations

from .load import load_spec
from .model import (
    PLACEHOLDERS,
    BuildSecret,
    CacheEntry,
    DeploymentSpec,
    ImageSpec,
    LoadBalancerSpec,
    OneOffList,
    OneOffSpec,
    PauseSpec,
    ServiceSpec,
    SmokeSpec,
    Spec,
    TaskDefinitionSource,
    WaitSpec,
    Workspace,
)
from .schema import spec_schema
from .source import looks_secret, secret_like_build_args
from .tags import render_tag

__all__ = [
    "PLACEHOLDERS",
    "BuildSecret",
    "CacheEntry",
    "DeploymentSpec",
    "ImageSpec",
    "LoadBalancerSpec",
    "OneOffList",
    "OneOffSpec",
    "PauseSpec",
    "ServiceSpec",
    "SmokeSpec",
    "Spec",
    "TaskDefinitionSource",
    "WaitSpec",
    "Workspace",
    "load_spec",
    "looks_secret",
    "render_tag",
    "secret_like_build_args",
    "spec_schema",
]
