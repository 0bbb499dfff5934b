"""The tools compared, each as the command lines a CI job would run for a list of services.

* ecs-ship: one `ecs-ship deploy --image-tag` for all the services (a spec with `services:` when more than one),
  the image already in the registry, so no build;
* aws: a shell step per service, as a pipeline writes it: register the rendered task definition, then
  `aws ecs update-service --force-new-deployment`, then `aws ecs wait services-stable`;
* ecs deploy: fabfuel's `ecs deploy` per service, its own --timeout left at 300 s: the cap ends a run that never
  finishes.
Peers of a several-service run are one process per service, all at once, as a monorepo pipeline's jobs would be.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.sandbox.bootstrap import CONTAINER, World

from .measure import Command
from .truth import ServiceRef

ECS_SHIP = "ecs-ship"
AWS = "aws wait services-stable"
ECS_DEPLOY = "ecs deploy"
TOOLS = (ECS_SHIP, AWS, ECS_DEPLOY)
PEERS = (AWS, ECS_DEPLOY)

POLL_INTERVAL = 1.0  # ecs-ship's wait.poll_interval here (its default); kept in the results
# Keys of a described task definition that register_task_definition takes back (the rest is read-only state).
_REGISTER_KEYS = (
    "family",
    "networkMode",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "executionRoleArn",
    "containerDefinitions",
)


def bin_path(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def ecs_ship_spec(
    worlds: list[World], names: list[ServiceRef], *, failure: bool, multi: bool, until: str = "serving"
) -> dict[str, Any]:
    """The spec a user writes; `multi` uses the `services:` form even for one service, so the 1-service run of the
    several-service scenarios is the same shape as the others (and its lines carry the service's name)."""
    doc: dict[str, Any] = {
        "version": 1,
        "region": worlds[0].region,
        "images": [{"container": CONTAINER, "repository": "${REGISTRY}/bench"}],
        "load_balancer": {"health_check_path": "/health"},
        "wait": {"until": until, "timeout": 600, "poll_interval": POLL_INTERVAL},
        # A failure is timed twice: when it is said, and the exit after the rollback a user gets by default.
        "on_failure": "rollback" if failure else "stop",
    }
    if not multi:
        doc.update(cluster=worlds[0].cluster, service=worlds[0].service)
    else:
        doc["services"] = [
            {"name": ref.name, "cluster": w.cluster, "service": w.service} for ref, w in zip(names, worlds, strict=True)
        ]
    return doc


def commands(
    tool: str,
    worlds: list[World],
    names: list[ServiceRef],
    *,
    tag: str,
    image: str,
    failure: bool,
    multi: bool,
    folder: Path,
    ecs: Any,
) -> list[Command]:
    """The processes one run of `tool` starts. `ecs` (a boto3 client) reads the current task definitions the aws
    pipeline renders from, before the clock starts, as amazon-ecs-render-task-definition would."""
    if tool == ECS_SHIP:
        spec = folder / f"{names[0].name}-{worlds[0].service}.yml"
        spec.write_text(yaml.safe_dump(ecs_ship_spec(worlds, names, failure=failure, multi=multi)))
        argv = [sys.executable, "-m", "ecs_ship", "deploy", "--spec", str(spec), "--image-tag", tag]
        return [Command(ECS_SHIP, argv)]
    out = []
    for ref, w in zip(names, worlds, strict=True):
        if tool == AWS:
            td = ecs.describe_task_definition(taskDefinition=w.task_definition_arn)["taskDefinition"]
            td["containerDefinitions"][0]["image"] = image
            rendered = folder / f"{w.service}-td.json"
            rendered.write_text(json.dumps({k: td[k] for k in _REGISTER_KEYS if k in td}))
            aws = shlex.quote(bin_path("aws"))
            cluster, service = shlex.quote(w.cluster), shlex.quote(w.service)
            script = (
                "set -e\n"
                f"arn=$({aws} ecs register-task-definition --cli-input-json file://{shlex.quote(str(rendered))} "
                "--query taskDefinition.taskDefinitionArn --output text)\n"
                f'{aws} ecs update-service --cluster {cluster} --service {service} --task-definition "$arn" '
                "--force-new-deployment --query service.serviceName --output text\n"
                f"{aws} ecs wait services-stable --cluster {cluster} --services {service}\n"
            )
            out.append(Command(f"{AWS} {ref.name}", ["sh", "-c", script], ref.name))
        elif tool == ECS_DEPLOY:
            argv = [bin_path("ecs"), "deploy", w.cluster, w.service, "--image", CONTAINER, image, "--no-deregister"]
            out.append(Command(f"{ECS_DEPLOY} {ref.name}", argv, ref.name))
        else:
            raise ValueError(f"unknown tool {tool!r}: one of {', '.join(TOOLS)}")
    return out
