"""Which revisions `keep_revisions` and `ecs-ship prune` deregister (pure), and the reads that decide what is in
use and what a rollback returns to, against a stubbed ECS (the calls and their parameters as botocore's model
has them)."""

from __future__ import annotations

import argparse
import io
from datetime import datetime, timezone
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.stub import Stubber

from ecs_ship import revisions
from ecs_ship.aws import Clients
from ecs_ship.commands.prune import after_deploy
from ecs_ship.context import Context
from ecs_ship.errors import InputError, Interrupted
from ecs_ship.gha import Reporter
from ecs_ship.prune import family_of, number_of, select
from ecs_ship.spec import LoadBalancerSpec, ServiceSpec, TaskDefinitionSource, WaitSpec

PREFIX = "arn:aws:ecs:us-east-1:1:task-definition/"


def td(n: int, family: str = "app") -> str:
    return f"{PREFIX}{family}:{n}"


def family(*numbers: int) -> list[str]:
    return [td(n) for n in numbers]


# ---------------------------------------------------------------------------------------------------------------------
# the selection
# ---------------------------------------------------------------------------------------------------------------------


def test_the_newest_n_stay_and_the_older_ones_go_oldest_first() -> None:
    s = select("app", family(3, 1, 5, 2, 4), 2, {})
    assert [arn for arn, _ in s.kept] == family(5, 4)
    assert {why for _, why in s.kept} == {"one of the newest 2"}
    assert s.deregister == tuple(family(1, 2, 3))
    assert [c.operation for c in s.calls()] == ["deregister_task_definition"] * 3
    assert s.calls()[0].params == {"taskDefinition": td(1)}


def test_revisions_in_use_or_to_roll_back_to_stay_whatever_their_age() -> None:
    protected = {td(1): "run by service api in cluster prod", "app:3": "what `ecs-ship rollback` returns to"}
    s = select("app", family(1, 2, 3, 4, 5, 6), 2, protected)
    assert dict(s.kept) == {
        td(6): "one of the newest 2",
        td(5): "one of the newest 2",
        td(3): "what `ecs-ship rollback` returns to",
        td(1): "run by service api in cluster prod",
    }
    assert s.deregister == (td(2), td(4))


def test_other_families_are_never_touched_even_when_their_name_starts_the_same() -> None:
    listed = [*family(1, 2, 3), td(1, "app-worker"), td(9, "app-worker"), td(4, "other")]
    s = select("app", listed, 1, {})
    assert s.deregister == (td(1), td(2))
    assert {family_of(arn) for arn, _ in s.kept} == {"app"}


def test_nothing_goes_when_the_family_has_no_more_than_n() -> None:
    s = select("app", family(1, 2), 5, {})
    assert s.deregister == () and len(s.kept) == 2


def test_a_revision_about_to_be_registered_takes_one_of_the_places() -> None:
    # A plan made before the deploy: the new revision will be the newest of the 3.
    s = select("app", family(1, 2, 3, 4), 3, {}, coming=1)
    assert [arn for arn, _ in s.kept] == family(4, 3)
    assert s.deregister == (td(1), td(2))


def test_a_limit_takes_the_oldest_and_leaves_the_rest_for_later() -> None:
    s = select("app", family(*range(1, 11)), 2, {}, limit=3)
    assert s.deregister == (td(1), td(2), td(3))
    assert s.later == 5
    assert "  5 more older revision(s) left for a later run" in s.lines()


def test_keep_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        select("app", family(1), 0, {})


def test_family_and_number_of_an_arn_or_a_short_name() -> None:
    assert (family_of(td(12, "my-app")), number_of(td(12, "my-app"))) == ("my-app", 12)
    assert (family_of("my-app:3"), number_of("my-app:3")) == ("my-app", 3)


# ---------------------------------------------------------------------------------------------------------------------
# the reads and the deregistering, stubbed
# ---------------------------------------------------------------------------------------------------------------------


class Stubbed:
    def __init__(self) -> None:
        kw: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "k", "aws_secret_access_key": "s"}
        self.ecs = boto3.client("ecs", **kw)
        self.stub = Stubber(self.ecs)
        self.clients = Clients("us-east-1", self.ecs, None, None, None)
        self.said: list[str] = []

    def __enter__(self) -> Stubbed:
        self.stub.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stub.deactivate()

    def on(self, method: str, response: dict[str, Any], params: dict[str, Any] | None = None) -> None:
        self.stub.add_response(method, response, params)

    def fails(self, method: str, code: str, params: dict[str, Any] | None = None) -> None:
        self.stub.add_client_error(method, service_error_code=code, service_message=f"{code}!", expected_params=params)


def service(name: str, running: str, *deployments: str, task_sets: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "serviceName": name,
        "serviceArn": f"arn:aws:ecs:us-east-1:1:service/c/{name}",
        "taskDefinition": running,
        "deployments": [
            {"id": f"ecs-svc/{i}", "status": "ACTIVE", "taskDefinition": d} for i, d in enumerate(deployments)
        ],
        "taskSets": [{"id": f"ts-{i}", "taskDefinition": t} for i, t in enumerate(task_sets)],
    }


def test_in_use_reads_every_cluster_and_every_service_in_batches_of_ten() -> None:
    with Stubbed() as s:
        s.on(
            "list_clusters",
            {"clusterArns": ["arn:aws:ecs:us-east-1:1:cluster/prod", "arn:aws:ecs:us-east-1:1:cluster/stg"]},
        )
        prod = [f"arn:aws:ecs:us-east-1:1:service/prod/s{i}" for i in range(12)]
        s.on(
            "list_services",
            {"serviceArns": prod[:7], "nextToken": "t"},
            {"cluster": "arn:aws:ecs:us-east-1:1:cluster/prod"},
        )
        s.on(
            "list_services",
            {"serviceArns": prod[7:]},
            {"cluster": "arn:aws:ecs:us-east-1:1:cluster/prod", "nextToken": "t"},
        )
        s.on(
            "describe_services",
            {"services": [service("s0", td(9), td(8)), *[service(f"s{i}", td(9)) for i in range(1, 10)]]},
            {"cluster": "arn:aws:ecs:us-east-1:1:cluster/prod", "services": prod[:10]},
        )
        s.on(
            "describe_services",
            {"services": [service("s10", td(9)), service("s11", td(2, "db"), task_sets=(td(3, "db"),))]},
            {"cluster": "arn:aws:ecs:us-east-1:1:cluster/prod", "services": prod[10:]},
        )
        s.on("list_services", {"serviceArns": ["arn:aws:ecs:us-east-1:1:service/stg/api"]})
        s.on("describe_services", {"services": [service("api", td(4))]})
        found = revisions.in_use(s.clients)
        s.stub.assert_no_pending_responses()
    assert found == {
        td(9): "run by service s0 in cluster prod",
        td(8): "in the ACTIVE deployment of service s0 in cluster prod",
        td(2, "db"): "run by service s11 in cluster prod",
        td(3, "db"): "in a task set of service s11 in cluster prod",
        td(4): "run by service api in cluster stg",
    }


def brief(n: int, created: int, revision: str) -> dict[str, Any]:
    return {
        "serviceDeploymentArn": f"arn:aws:ecs:us-east-1:1:service-deployment/c/api/d{n}",
        "status": "SUCCESSFUL",
        "createdAt": datetime.fromtimestamp(created, tz=timezone.utc),
        "targetServiceRevisionArn": revision,
    }


def revision(arn: str, task_definition: str) -> dict[str, Any]:
    return {"serviceRevisions": [{"serviceRevisionArn": arn, "taskDefinition": task_definition}]}


def test_served_before_is_the_newest_successful_deployment_of_another_active_revision() -> None:
    with Stubbed() as s:
        # Listed out of order across two pages; the newest (r3) is the running revision's own deployment.
        s.on("list_service_deployments", {"serviceDeployments": [brief(1, 100, "r1")], "nextToken": "n"})
        s.on(
            "list_service_deployments",
            {"serviceDeployments": [brief(3, 300, "r3"), brief(2, 200, "r2")]},
            {"cluster": "c", "service": "api", "status": ["SUCCESSFUL"], "nextToken": "n"},
        )
        s.on("describe_service_revisions", revision("r3", td(7)), {"serviceRevisionArns": ["r3"]})
        s.on("describe_service_revisions", revision("r2", td(5)), {"serviceRevisionArns": ["r2"]})
        s.on("describe_task_definition", {"taskDefinition": {"taskDefinitionArn": td(5), "status": "INACTIVE"}})
        s.on("describe_service_revisions", revision("r1", td(2)), {"serviceRevisionArns": ["r1"]})
        s.on("describe_task_definition", {"taskDefinition": {"taskDefinitionArn": td(2), "status": "ACTIVE"}})
        # r2's revision was deregistered by someone: no service can be pointed back at it, so r1's is the one.
        assert revisions.served_before(s.clients, "c", "api", td(7)) == td(2)
        s.stub.assert_no_pending_responses()


def test_served_before_is_none_where_ecs_keeps_no_service_deployments() -> None:
    with Stubbed() as s:
        s.fails("list_service_deployments", "UnknownOperationException")
        assert revisions.served_before(s.clients, "c", "api", td(7)) is None


def test_previous_revision_prefers_ecs_history_over_the_next_lower_number() -> None:
    svc = service("api", td(7))
    with Stubbed() as s:
        s.on("list_service_deployments", {"serviceDeployments": [brief(1, 100, "r1")]})
        s.on("describe_service_revisions", revision("r1", td(2)))
        s.on("describe_task_definition", {"taskDefinition": {"taskDefinitionArn": td(2), "status": "ACTIVE"}})
        # Revisions 3 to 6 were registered and never served: going "back one" would pick 6.
        assert revisions.previous_revision(s.clients, "c", svc, None) == td(2)


def test_previous_revision_falls_back_to_the_newest_older_active_one() -> None:
    svc = service("api", td(7))
    with Stubbed() as s:
        s.on("list_service_deployments", {"serviceDeployments": []})
        s.on(
            "list_task_definitions",
            {"taskDefinitionArns": family(2, 6, 7, 9)},
            {"familyPrefix": "app", "status": "ACTIVE"},
        )
        assert revisions.previous_revision(s.clients, "c", svc, None) == td(6)


def test_deregister_goes_on_past_a_refusal_but_stops_asking_once_access_is_denied() -> None:
    with Stubbed() as s:
        s.on("deregister_task_definition", {"taskDefinition": {}}, {"taskDefinition": td(1)})
        s.fails("deregister_task_definition", "ClientException", {"taskDefinition": td(2)})
        s.fails("deregister_task_definition", "AccessDeniedException", {"taskDefinition": td(3)})
        refused = revisions.deregister(s.clients, family(1, 2, 3, 4), s.said.append, lambda: None)
        s.stub.assert_no_pending_responses()
    assert s.said == ["deregistered app:1"]
    assert [arn for arn, _ in refused] == family(2, 3, 4)
    assert refused[-1][1] == "not tried after access was denied"


def test_an_interruption_stops_between_two_deregistrations() -> None:
    calls = 0

    def check() -> None:
        if calls >= 1:
            raise Interrupted("interrupted")

    def count(*_: object) -> None:
        nonlocal calls
        calls += 1

    with Stubbed() as s:
        s.on("deregister_task_definition", {"taskDefinition": {}}, {"taskDefinition": td(1)})
        with pytest.raises(Interrupted):
            revisions.deregister(s.clients, family(1, 2, 3), count, check)
        s.stub.assert_no_pending_responses()
    assert calls == 1


def test_the_selection_protects_the_running_revision_and_the_rollback_target() -> None:
    svc = service("api", td(9))
    with Stubbed() as s:
        s.on("list_clusters", {"clusterArns": []})
        s.on("list_service_deployments", {"serviceDeployments": [brief(1, 100, "r1")]})
        s.on("describe_service_revisions", revision("r1", td(3)))
        s.on("describe_task_definition", {"taskDefinition": {"taskDefinitionArn": td(3), "status": "ACTIVE"}})
        s.on("list_task_definitions", {"taskDefinitionArns": family(*range(1, 11))})
        chosen = revisions.selection(s.clients, "c", svc, 1, also={td(5): "ran before this deploy"})
    assert dict(chosen.kept) == {
        td(10): "one of the newest 1",
        td(9): "the revision the service runs",
        td(5): "ran before this deploy",
        td(3): "what `ecs-ship rollback` returns to",
    }
    assert chosen.deregister == tuple(family(1, 2, 4, 6, 7, 8))


def test_access_denied_on_the_history_is_not_an_error() -> None:
    with Stubbed() as s:
        s.fails("list_service_deployments", "AccessDeniedException")
        assert revisions.served_before(s.clients, "c", "api", td(7)) is None
    with Stubbed() as s, pytest.raises(botocore.exceptions.ClientError):
        s.fails("list_service_deployments", "ThrottlingException")
        revisions.served_before(s.clients, "c", "api", td(7))


def test_rolling_back_to_a_deregistered_revision_is_bad_input() -> None:
    with Stubbed() as s:
        s.on("describe_task_definition", {"taskDefinition": {"taskDefinitionArn": td(3), "status": "INACTIVE"}})
        with pytest.raises(InputError, match="app:3: it was deregistered") as err:
            revisions.previous_revision(s.clients, "c", service("api", td(7)), 3)
    assert err.value.fix is not None and "--family-prefix app" in err.value.fix


def _context(out: io.StringIO) -> Context:
    return Context(args=argparse.Namespace(), out=Reporter(out, {}))


def test_after_a_deploy_a_refusal_to_read_or_deregister_is_a_warning_not_a_failure() -> None:
    out = io.StringIO()
    spec = ServiceSpec(
        "api",
        "us-east-1",
        "c",
        "api",
        (),
        TaskDefinitionSource("current"),
        LoadBalancerSpec(None, False, None),
        WaitSpec("serving", 60, 1),
        "rollback",
        False,
        None,
    )
    with Stubbed() as s:
        s.on("describe_services", {"services": [{**service("api", td(7)), "status": "ACTIVE"}]})
        s.fails("list_clusters", "AccessDeniedException")
        after_deploy(_context(out), spec, s.clients, 2, {})
    assert "keep_revisions: failed to deregister old revisions" in out.getvalue()
    assert "the deploy succeeded" in out.getvalue() and "ecs:ListClusters" in out.getvalue()
