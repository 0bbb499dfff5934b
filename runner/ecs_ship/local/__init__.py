"""`ecs-ship run-local`: run the task definition a deploy would register on the local Docker engine.

The images are the ones a deploy would ship (built here with the same tag rules, or, with an image tag, pulled
from the registry by the digest the registry reports) and the containers share one network namespace, as under
awsvpc, so they reach each other on localhost exactly as in ECS. What cannot be reproduced without AWS (secrets,
registry credentials, the task role, S3 environment files, volumes) is skipped and said so, with the way to
supply it locally.

``plan_local`` decides everything (start order, environment, mounts, health checks) without Docker or AWS; it
reads only the --env-file files and checks that the --mount sources exist. ``run_local`` carries the plan out
and removes every container it started, whatever happens.
"""

from .inputs import engine_network, task_definition
from .plan import (
    Dependency,
    LocalContainer,
    LocalOptions,
    LocalPlan,
    Mount,
    healthcheck,
    parse_env_file,
    parse_mount,
    plan_local,
    start_order,
)
from .run import LABEL, Probe, container_name, run_local

__all__ = [
    "LABEL",
    "Dependency",
    "LocalContainer",
    "LocalOptions",
    "LocalPlan",
    "Mount",
    "Probe",
    "container_name",
    "engine_network",
    "healthcheck",
    "parse_env_file",
    "parse_mount",
    "plan_local",
    "run_local",
    "start_order",
    "task_definition",
]
