"""Task definitions as plain dicts shaped like ``ecs.register_task_definition(**kwargs)`` input.

Everything here is pure: no AWS calls and no I/O, so the deploy flow can validate and preview a task definition
before it touches anything.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ecs_ship.errors import InputError

# Members of botocore's ECS ``TaskDefinition`` shape that ``RegisterTaskDefinition`` does not accept: AWS sets them.
# Written out rather than read from botocore at run time so this module stays pure; a unit test compares both
# constants with the installed botocore model, so an SDK upgrade that adds a field fails the tests, not a deploy.
READ_ONLY_KEYS: frozenset[str] = frozenset(
    {
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
        "deregisteredAt",
        "deleteRequestedAt",
    }
)

# Members of the ``RegisterTaskDefinition`` input shape, in the model's order so error messages read naturally.
REGISTER_KEYS: tuple[str, ...] = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "tags",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
    "enableFaultInjection",
    "trustedExecutionConfiguration",
)

_REGISTER_KEY_SET = frozenset(REGISTER_KEYS)
# boto3 adds ResponseMetadata to every response; callers often hand the raw response straight over.
_DESCRIBE_KEYS = frozenset({"taskDefinition", "tags", "ResponseMetadata"})
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
REDACTED = "***"
# Log-driver and volume-driver options have no secret counterpart for every setting (Splunk's token, a CIFS
# volume's password, a FireLens output's API key), so such values sit in the definition in plain text.
_SECRET_OPTION = re.compile(r"token|secret|passw|pwd|api[-_]?key|credential|auth", re.IGNORECASE)


@dataclass(frozen=True)
class Rendered:
    """A task definition ready to register, plus advice that should not stop the deploy."""

    document: dict[str, Any]
    warnings: tuple[str, ...]


def normalise(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``doc`` as ``register_task_definition`` kwargs.

    Accepts register-style kwargs or ``describe_task_definition`` output. Only read-only and None-valued top-level
    keys are dropped; key order and every other value are kept (the result is a deep copy).
    """
    if not isinstance(doc, Mapping):
        raise InputError(
            f"failed to read task definition: expected a mapping, got {type(doc).__name__}",
            fix="pass the register-task-definition JSON object or describe-task-definition output",
        )
    tags: Any = None
    body: Mapping[str, Any] = doc
    if "taskDefinition" in doc:
        extra = [k for k in doc if k not in _DESCRIBE_KEYS]
        if extra:
            raise InputError(
                f"failed to read task definition: unexpected key {extra[0]!r} next to 'taskDefinition'",
                fix="pass either describe-task-definition output ({'taskDefinition': ..., 'tags': [...]}) "
                "or the register-task-definition object on its own, not a mix",
            )
        inner = doc["taskDefinition"]
        if not isinstance(inner, Mapping):
            raise InputError(
                f"failed to read task definition: 'taskDefinition' is a {type(inner).__name__}, not a mapping",
                fix="pass describe-task-definition output unchanged",
            )
        body = inner
        tags = doc.get("tags")

    result: dict[str, Any] = {}
    for key, value in body.items():
        if key in READ_ONLY_KEYS or value is None:
            continue
        if key not in _REGISTER_KEY_SET:
            raise InputError(
                f"failed to read task definition: unknown key {key!r}",
                fix=_suggest(key),
            )
        result[key] = copy.deepcopy(value)
    if tags:
        result["tags"] = copy.deepcopy(tags)

    _check_required(result)
    return result


def render(base: Mapping[str, Any], images: Mapping[str, str], *, allow_host_volumes: bool = False) -> Rendered:
    """Set each container named in ``images`` to its image; leave everything else as it is in ``base``."""
    document = copy.deepcopy(dict(base))
    containers: list[dict[str, Any]] = document.get("containerDefinitions") or []
    by_name = {c.get("name"): c for c in containers}

    for name, image in images.items():
        if name not in by_name:
            have = ", ".join(repr(n) for n in by_name) or "none"
            raise InputError(
                f"failed to render task definition: it has no container named {name!r} (it has {have})",
                fix="name one of the task definition's containers, or add the container to the task definition",
            )
        if not isinstance(image, str) or not image.strip():
            raise InputError(
                f"failed to render task definition: empty image for container {name!r}",
                fix="pass the full image reference, e.g. repo@sha256:<digest>",
            )
        by_name[name]["image"] = image

    _check_host_volumes(document, allow_host_volumes)

    warnings: list[str] = []
    for container in containers:
        if container.get("name") in images:
            continue
        label = container.get("name")
        current = container.get("image")
        if not isinstance(current, str) or not current:
            raise InputError(
                f"failed to render task definition: container {label!r} has no image",
                fix=f"set its image in the task definition, or pass one for {label!r}",
            )
        if _is_mutable(current):
            warnings.append(
                f"container {label!r} uses mutable image {current!r}; pin a tag or digest so a redeploy runs what you "
                "tested"
            )
    return Rendered(document=document, warnings=tuple(warnings))


def image_ref(repository: str, digest: str) -> str:
    """``repository@digest``, refusing anything that would make the reference ambiguous."""
    if not _DIGEST.fullmatch(digest):
        raise InputError(
            f"failed to build image reference: {digest!r} is not a sha256 digest",
            fix="pass the digest as sha256:<64 lowercase hex characters>, as the registry reports it",
        )
    if not repository or any(c.isspace() for c in repository):
        raise InputError(
            f"failed to build image reference: invalid repository {repository!r}",
            fix="pass the repository without tag or digest, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/app",
        )
    if "@" in repository or _tag(repository) is not None:
        raise InputError(
            f"failed to build image reference: repository {repository!r} already carries a tag or digest",
            fix="pass the repository alone; the digest decides which image runs",
        )
    return f"{repository}@{digest}"


def diff(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    *,
    old_label: str = "running",
    new_label: str = "new",
) -> str:
    """Unified diff of two task definitions as sorted JSON; "" when they are the same definition.

    Values that may be credentials (see ``redacted``) are never printed: the JSON shows them as "***", and a
    line per added, removed or changed one says which, e.g. ``~ environment DATABASE_URL in container web
    (value changed)``. A diff goes to CI logs and job summaries, read by more people than may read the secrets.
    """
    old_doc = None if old is None else _comparable(normalise(old))
    new_doc = _comparable(normalise(new))
    old_lines = [] if old_doc is None else _as_json(redacted(old_doc)).splitlines()
    new_lines = _as_json(redacted(new_doc)).splitlines()
    body = list(difflib.unified_diff(old_lines, new_lines, fromfile=old_label, tofile=new_label, lineterm=""))
    return "\n".join(body + _secret_changes(old_doc or {}, new_doc))


def redacted(document: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a register-style task definition with every value that may be a credential set to "***".

    That is each container ``environment`` value (names kept) and each log, FireLens or volume-driver option
    whose name or value speaks of a token, password, key or secret. ``secrets[].valueFrom`` and
    ``repositoryCredentials`` are ARNs of the secret, not the secret, and stay.
    """
    copied = copy.deepcopy(dict(document))
    for _where, _what, holder, key in _secret_slots(copied):
        holder[key] = REDACTED
    return copied


def same_definition(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether registering ``b`` would give what ``a`` already is, so an unchanged redeploy can be skipped."""
    return bool(_comparable(normalise(a)) == _comparable(normalise(b)))


def container_images(doc: Mapping[str, Any]) -> dict[str, str]:
    """Container name -> image, for register-style or describe-task-definition documents."""
    inner = doc.get("taskDefinition")
    body: Mapping[str, Any] = inner if isinstance(inner, Mapping) else doc
    return {
        c["name"]: c["image"]
        for c in body.get("containerDefinitions") or []
        if isinstance(c, Mapping) and isinstance(c.get("name"), str) and isinstance(c.get("image"), str)
    }


def _suggest(key: str) -> str:
    by_lower = {k.lower(): k for k in REGISTER_KEYS}
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
    if close:
        return f"did you mean {by_lower[close[0]]!r}?"
    return "valid keys: " + ", ".join(REGISTER_KEYS)


def _check_required(doc: Mapping[str, Any]) -> None:
    family = doc.get("family")
    if not isinstance(family, str) or not family:
        raise InputError(
            "failed to read task definition: 'family' is missing or empty",
            fix="set 'family' to the task definition family name",
        )
    containers = doc.get("containerDefinitions")
    if not isinstance(containers, list) or not containers:
        raise InputError(
            "failed to read task definition: 'containerDefinitions' must be a non-empty list",
            fix="define at least one container with a name and an image",
        )
    seen: set[str] = set()
    for index, container in enumerate(containers):
        name = container.get("name") if isinstance(container, Mapping) else None
        if not isinstance(name, str) or not name:
            raise InputError(
                f"failed to read task definition: containerDefinitions[{index}] has no 'name'",
                fix="give every container a unique name",
            )
        # ECS refuses duplicates at register time; saying so here points at the line to fix.
        if name in seen:
            raise InputError(
                f"failed to read task definition: containerDefinitions[{index}] repeats the name {name!r}",
                fix="give every container a unique name",
            )
        seen.add(name)


def _check_host_volumes(doc: Mapping[str, Any], allowed: bool) -> None:
    bound = [
        str(v.get("name"))
        for v in doc.get("volumes") or []
        if isinstance(v, Mapping) and isinstance(v.get("host"), Mapping) and v["host"].get("sourcePath")
    ]
    if not bound:
        return
    names = ", ".join(repr(n) for n in bound)
    why = (
        f"failed to render task definition: volume(s) {names} mount a host path (host.sourcePath). A production "
        "image must carry its code: a path on an ECS or Fargate host does not hold your code, so the container "
        "would see an empty or stale directory"
    )
    copy_it = "COPY the code into the image in the Dockerfile and drop the host volume"
    if "FARGATE" in (doc.get("requiresCompatibilities") or []):
        # Registration would fail anyway, so the opt-out cannot help; refusing here says why before any AWS write.
        raise InputError(
            f"{why}; this task requires FARGATE, and Fargate rejects host.sourcePath even with "
            "`allow_host_volumes: true`",
            fix=f"{copy_it}; for data shared between tasks use an EFS volume",
        )
    if not allowed:
        raise InputError(
            why,
            fix=f"{copy_it}; for the rare legitimate case (e.g. a host-level agent socket) set "
            "`allow_host_volumes: true` in the spec",
        )


def _tag(reference: str) -> str | None:
    # A colon before the last slash is a registry port, not a tag.
    last = reference.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def _is_mutable(reference: str) -> bool:
    if "@" in reference:
        return False
    tag = _tag(reference)
    return tag is None or tag == "latest"


def _comparable(value: Any) -> Any:
    # describe-task-definition fills in empty lists (volumes, environment, mountPoints, ...) that a hand-written
    # definition leaves out; ECS treats empty and absent alike, so they must not count as a change.
    if isinstance(value, Mapping):
        pruned = {k: _comparable(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v is not None and v != [] and v != {}}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def _as_json(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, default=str)


def _secret_slots(doc: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], str]]:
    """(where, what, holder, key) for each value of ``doc`` that may be a credential: ``holder[key]``."""

    def options(where: str, what: str, holder: Any) -> Iterator[tuple[str, str, dict[str, Any], str]]:
        if isinstance(holder, dict):
            for key, value in holder.items():
                if _SECRET_OPTION.search(f"{key}={value}"):
                    yield where, f"{what} {key}", holder, key

    for container in doc.get("containerDefinitions") or []:
        if not isinstance(container, dict):
            continue
        where = f"container {container.get('name')}"
        for variable in container.get("environment") or []:
            if isinstance(variable, dict) and "value" in variable:
                yield where, f"environment {variable.get('name')}", variable, "value"
        for config in ("logConfiguration", "firelensConfiguration"):
            yield from options(where, f"{config}.options", (container.get(config) or {}).get("options"))
    for volume in doc.get("volumes") or []:
        if isinstance(volume, dict):
            driver = volume.get("dockerVolumeConfiguration") or {}
            yield from options(f"volume {volume.get('name')}", "driverOpts", driver.get("driverOpts"))


def _secret_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    before = {(where, what): holder[key] for where, what, holder, key in _secret_slots(old)}
    after = {(where, what): holder[key] for where, what, holder, key in _secret_slots(new)}
    lines = []
    for where, what in sorted(before.keys() | after.keys()):
        if (where, what) not in before:
            lines.append(f"+ {what} in {where}")
        elif (where, what) not in after:
            lines.append(f"- {what} in {where}")
        elif before[where, what] != after[where, what]:
            lines.append(f"~ {what} in {where} (value changed)")
    return lines
