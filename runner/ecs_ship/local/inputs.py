"""What `run-local` needs from the outside world: the task definition, the engine's network, the images."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import Any

import botocore.exceptions
import docker
import docker.errors

from .. import build, deploy, image, registry, taskdef
from ..aws import CREDENTIAL_CODES, CREDENTIAL_ERRORS, Clients, error_code
from ..builder import Builder, detect_builder
from ..errors import DeployError, InputError
from ..spec import ServiceSpec, Spec
from .plan import LocalOptions, LocalPlan, Network, Say


def explain_engine_error(exc: docker.errors.APIError) -> str:
    return str(exc.explanation or exc)


# ---------------------------------------------------------------------------------------------------------------------
# inputs that need the outside world: the task definition, the engine, the images
# ---------------------------------------------------------------------------------------------------------------------
def task_definition(svc: ServiceSpec, clients: Clients | None) -> tuple[dict[str, Any], str | None]:
    """The base task definition (register-style), and the load-balanced container when the service names one."""
    source = svc.task_definition
    if source.kind != "current" and source.document is not None:
        return taskdef.normalise(source.document), None
    fix = (
        "add `task_definition: taskdef.json` to the spec (the task definition as a file in the repository, e.g. "
        "`aws ecs describe-task-definition` output) so run-local needs no AWS"
    )
    why = f"the spec takes the task definition from service {svc.service}'s current revision"
    if clients is None:
        raise InputError(f"failed to read the task definition: {why}, which needs AWS access", fix=fix)
    try:
        service = deploy.describe_service(clients, svc.cluster, svc.service)
        described = clients.ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
    except InputError as exc:  # no such cluster or service
        raise InputError(f"failed to read the task definition: {why}: {exc}", fix=fix) from exc
    except CREDENTIAL_ERRORS as exc:
        raise InputError(
            f"failed to read the task definition: {why}, and AWS credentials are missing", fix=fix
        ) from exc
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) in CREDENTIAL_CODES:
            raise InputError(f"failed to read the task definition: {why}: {exc}", fix=fix) from exc
        raise
    described.pop("ResponseMetadata", None)
    lb = next((b for b in service.get("loadBalancers") or [] if b.get("containerName")), None)
    return taskdef.normalise(described), lb["containerName"] if lb else None


def engine_network(docker_client: docker.DockerClient) -> Network:
    """The way to give a task one network: "bridge" when the engine has its default bridge network (a holder
    container can publish ports), else "host"."""
    try:
        networks = docker_client.networks.list(names=["bridge"])
    except docker.errors.APIError as exc:
        raise DeployError(f"failed to list the engine's networks: {explain_engine_error(exc)}") from exc
    # The names filter matches substrings: a user network "my-bridge" is not the default bridge.
    return "bridge" if any(n.name == "bridge" for n in networks) else "host"


def _pull(
    docker_client: docker.DockerClient, repository: str, tag: str, creds: registry.Credentials | None, say: Say
) -> None:
    say(f"pulling {repository}{'@' if tag.startswith('sha256:') else ':'}{tag}")
    error = registry.run_stream(
        # tag may be a digest: the engine takes either.
        lambda: docker_client.api.pull(
            repository, tag=tag, auth_config=creds.auth_config() if creds else None, stream=True, decode=True
        )
    )
    if error:
        raise registry.registry_failure("pull", f"{repository}:{tag}", error)


def resolve_images(
    svc: ServiceSpec,
    spec: Spec,
    options: LocalOptions,
    *,
    docker_client: docker.DockerClient,
    clients: Clients | None,
    say: Say,
    mask: Callable[[str], None],
    cancel: threading.Event,
) -> dict[str, str]:
    """Container -> image reference for the spec's images, on the local engine: built as a deploy would tag
    them, or (with an image tag) pulled by the digest the registry reports, which is what a deploy registers."""
    refs: dict[str, str] = {}
    values: dict[str, str] | None = None
    builder: Builder | None = None
    for img in svc.images:
        if cancel.is_set():
            break
        if options.image_tag:
            host, path = registry.split_repository(img.repository)
            creds = registry.resolve_credentials(host, clients=clients, mask=mask)
            digest = registry.RegistryAPI(host, creds).manifest_digest(path, options.image_tag)
            if digest is None:
                raise InputError(
                    f"failed to find image {img.repository}:{options.image_tag} in registry {host}",
                    fix="push that tag first (`ecs-ship deploy` does), or drop --image-tag to build locally",
                )
            _pull(docker_client, img.repository, digest, creds, say)
            refs[img.container] = taskdef.image_ref(img.repository, digest)
        else:
            if values is None:
                values = image.tag_values(image.git_info(spec.path.parent), spec.env)
            tag = image.image_tag(img, values)
            say(f"building {img.repository}:{tag} for container {img.container}")
            if builder is None:
                builder = detect_builder()
                say(builder.describe())
            # The engine holds one platform's image: of a multi-platform spec, the first listed is run.
            one = dataclasses.replace(img, platform=img.platform[:1])
            build.build_image(builder, one, f"{img.repository}:{tag}", say, docker_client=lambda: docker_client)
            refs[img.container] = f"{img.repository}:{tag}"
    return refs


def ensure_images(
    docker_client: docker.DockerClient,
    plan: LocalPlan,
    own: Mapping[str, str],
    *,
    clients: Clients | None,
    say: Say,
    mask: Callable[[str], None],
) -> None:
    # Images of containers the spec does not build run as the task definition names them; a copy already on the
    # engine is used as it is (a digest pins it anyway; a tag is what the developer has).
    for c in plan.containers:
        if c.name in own:
            continue
        try:
            docker_client.images.get(c.image)
            continue
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            raise DeployError(f"failed to look up image {c.image}: {explain_engine_error(exc)}") from exc
        repository, tag = registry.split_reference(c.image)
        host = registry.split_repository(repository)[0]
        creds = registry.resolve_credentials(host, clients=clients, mask=mask)
        _pull(docker_client, repository, tag, creds, say)
