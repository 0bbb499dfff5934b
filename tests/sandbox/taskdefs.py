"""Task-definition revisions as the ECS API reference describes them, where moto differs.

- DeregisterTaskDefinition marks a revision INACTIVE. "You can't use an INACTIVE task definition to run new
  tasks or create new services, and you can't update an existing service to reference an INACTIVE task
  definition." Existing services keep running (and scaling) the INACTIVE revision they reference, so only the
  API entry points refuse it, never the simulator launching tasks of a deployment. moto accepts it everywhere.
  Assumed where the guide is silent: UpdateService naming the INACTIVE revision the service already runs (a
  forced redeploy) is not refused, and all three refusals use RunTask's reported wording.
- ListTaskDefinitions: familyPrefix is "the full family name"; `sort` ASC (the default: by family, then
  revision ascending, "so that the newest task definitions in a family are listed last") or DESC; at most 100
  ARNs a page (maxResults 1-100, default 100) with a nextToken. moto pages nothing and ignores `sort`.
- DescribeTaskDefinition (and the other actions) given a family without a revision use "the latest ACTIVE
  revision"; moto takes the latest revision of any status.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ecs.exceptions import InvalidParameterException

from . import service_deployments

# The wording ECS answers RunTask with for a deregistered revision (InvalidParameterException).
INACTIVE = "TaskDefinition is inactive"


def require_active(backend: Any, ref: str) -> Any:
    """The task definition `ref` names, refused when it is INACTIVE: what new tasks and services may use."""
    td = backend.describe_task_definition(ref)
    if td.status == "INACTIVE":
        raise InvalidParameterException(INACTIVE)
    return td


def _revision_key(td: Any) -> tuple[str, int]:
    return (str(td.family), int(td.revision))


def install(backend_cls: Any, responses_cls: Any) -> None:
    orig_describe = backend_cls.describe_task_definition

    def describe_task_definition(self: Any, task_definition_str: str) -> Any:
        name = task_definition_str.split("/")[-1]
        if ":" not in name:
            active = [td for td in (self.task_definitions.get(name) or {}).values() if td.status == "ACTIVE"]
            if active:
                return max(active, key=_revision_key)
        return orig_describe(self, task_definition_str)

    backend_cls.describe_task_definition = describe_task_definition

    def list_task_definitions_response(self: Any) -> ActionResult:
        family = self._get_param("familyPrefix")
        status = self._get_param("status") or "ACTIVE"
        order = self._get_param("sort") or "ASC"
        if status not in ("ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS"):
            raise InvalidParameterException(f"Invalid status: {status}.")
        if order not in ("ASC", "DESC"):
            raise InvalidParameterException(f"Invalid sort: {order}.")
        max_results = self._get_param("maxResults")
        size = 100 if max_results is None else int(max_results)
        if not 1 <= size <= 100:
            raise InvalidParameterException("maxResults must be between 1 and 100.")
        found = [
            td
            for revisions in self.ecs_backend.task_definitions.values()
            for td in revisions.values()
            if td.status == status and (not family or td.family == family)
        ]
        found.sort(key=_revision_key, reverse=order == "DESC")
        arns = [td.arn for td in found]
        try:
            chunk, token = service_deployments.page(arns, self._get_param("nextToken"), size)
        except service_deployments.ApiError as exc:
            raise InvalidParameterException(exc.message) from None
        body: dict[str, Any] = {"taskDefinitionArns": chunk}
        if token:
            body["nextToken"] = token
        return ActionResult(body)

    responses_cls.list_task_definitions = list_task_definitions_response
