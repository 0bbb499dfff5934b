"""run-local without an engine: the plan (start order, health checks, env files, mounts, ports, what is skipped)
and the run itself against a fake Docker client, including the bridge-network path this sandbox cannot run."""

from __future__ import annotations

import copy
import dataclasses
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import docker.errors
import pytest

from ecs_ship.aws import Clients
from ecs_ship.errors import DeployError, InputError
from ecs_ship.local import (
    LABEL,
    LocalOptions,
    Mount,
    container_name,
    engine_network,
    healthcheck,
    parse_env_file,
    parse_mount,
    plan_local,
    run_local,
    start_order,
    task_definition,
)
from ecs_ship.spec import (
    ImageSpec,
    LoadBalancerSpec,
    ServiceSpec,
    Spec,
    TaskDefinitionSource,
    WaitSpec,
    Workspace,
)

SECOND = 1_000_000_000


def container(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": f"example/{name}:1", "essential": True, **extra}


def document(*containers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"family": "shop", "networkMode": "awsvpc", "containerDefinitions": list(containers), **extra}


def image_spec(name: str) -> ImageSpec:
    return ImageSpec(
        container=name,
        repository=f"registry.example/{name}",
        context=Path("/src"),
        dockerfile=Path("/src/Dockerfile"),
        platform=("linux/amd64",),
        build_args={},
        target=None,
        tag="{git_sha}",
    )


def service(
    doc: dict[str, Any] | None = None,
    *,
    images: tuple[str, ...] = (),
    health_check_path: str | None = None,
    kind: str = "inline",
) -> ServiceSpec:
    return ServiceSpec(
        name="shop",
        region="eu-west-1",
        cluster="main",
        service="shop",
        images=tuple(image_spec(n) for n in images),
        task_definition=TaskDefinitionSource(kind, document=doc),  # type: ignore[arg-type]
        load_balancer=LoadBalancerSpec(health_check_path, False),
        wait=WaitSpec("serving", 60, 1),
        on_failure="rollback",
        allow_host_volumes=False,
        smoke=None,
    )


HEALTH = {"command": ["CMD-SHELL", "wget -q -O- http://127.0.0.1:8080/health"], "interval": 5}


# --------------------------------------------------------------------------------------------
# dependsOn
# --------------------------------------------------------------------------------------------
def test_start_order_puts_dependencies_first_and_keeps_definition_order_otherwise() -> None:
    doc = document(
        container(
            "web",
            dependsOn=[
                {"containerName": "db", "condition": "HEALTHY"},
                {"containerName": "migrate", "condition": "SUCCESS"},
            ],
        ),
        container("logs", essential=False),
        container("migrate", essential=False, dependsOn=[{"containerName": "db", "condition": "START"}]),
        container("db", healthCheck=HEALTH),
    )
    assert start_order(doc["containerDefinitions"]) == ["logs", "db", "migrate", "web"]
    plan = plan_local(service(doc), doc, LocalOptions())
    assert [c.name for c in plan.containers] == ["logs", "db", "migrate", "web"]
    assert [(d.container, d.condition) for d in plan.container("web").depends_on] == [
        ("db", "HEALTHY"),
        ("migrate", "SUCCESS"),
    ]


def test_a_dependency_cycle_is_an_input_error_naming_the_cycle() -> None:
    doc = document(
        container("a", dependsOn=[{"containerName": "b", "condition": "START"}]),
        container("b", dependsOn=[{"containerName": "c", "condition": "START"}]),
        container("c", dependsOn=[{"containerName": "a", "condition": "START"}]),
        container("free"),
    )
    with pytest.raises(InputError, match=r"dependsOn forms a cycle: a -> b -> c -> a"):
        plan_local(service(doc), doc, LocalOptions())
    alone = document(container("a", dependsOn=[{"containerName": "a", "condition": "START"}]))
    with pytest.raises(InputError, match=r"cycle: a -> a"):
        start_order(alone["containerDefinitions"])


@pytest.mark.parametrize(
    ("dependency", "target", "message"),
    [
        ({"containerName": "nope", "condition": "START"}, {}, "no container named 'nope'"),
        ({"containerName": "db", "condition": "READY"}, {}, "condition is 'READY'"),
        ({"containerName": "db", "condition": "HEALTHY"}, {}, "has no healthCheck"),
        ({"containerName": "db", "condition": "COMPLETE"}, {}, "'db' is essential"),
        ({"containerName": "db", "condition": "SUCCESS"}, {"essential": True}, "'db' is essential"),
    ],
)
def test_invalid_dependencies_are_refused(dependency: dict[str, str], target: dict[str, Any], message: str) -> None:
    doc = document(container("web", dependsOn=[dependency]), container("db", **target))
    with pytest.raises(InputError, match=message):
        plan_local(service(doc), doc, LocalOptions())


# --------------------------------------------------------------------------------------------
# healthCheck -> docker healthcheck
# --------------------------------------------------------------------------------------------
def test_health_check_is_translated_to_nanoseconds() -> None:
    check = {
        "command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
        "interval": 10,
        "timeout": 3,
        "retries": 5,
        "startPeriod": 20,
    }
    assert healthcheck(check, "web") == {
        "test": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
        "interval": 10 * SECOND,
        "timeout": 3 * SECOND,
        "retries": 5,
        "start_period": 20 * SECOND,
    }


def test_health_check_defaults_are_ecs_defaults() -> None:
    assert healthcheck({"command": ["CMD", "/bin/check", "--quick"]}, "web") == {
        "test": ["CMD", "/bin/check", "--quick"],
        "interval": 30 * SECOND,
        "timeout": 5 * SECOND,
        "retries": 3,
    }


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"command": "curl localhost"}, "command must be"),
        ({"command": ["curl", "localhost"]}, "command must be"),
        ({"command": ["CMD-SHELL"]}, "command must be"),
        ({"command": ["CMD", "check"], "interval": 1}, r"interval is 1; ECS accepts a whole number from 5 to 300"),
        ({"command": ["CMD", "check"], "timeout": 61}, "timeout is 61"),
        ({"command": ["CMD", "check"], "retries": 0}, "retries is 0"),
        ({"command": ["CMD", "check"], "startPeriod": 2.5}, "startPeriod is 2.5"),
        ({"command": ["CMD", "check"], "retries": True}, "retries is True"),
    ],
)
def test_invalid_health_checks_are_refused(check: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        healthcheck(check, "web")


def test_the_plan_carries_the_health_check() -> None:
    doc = document(container("web", healthCheck=HEALTH))
    plan = plan_local(service(doc), doc, LocalOptions())
    assert plan.container("web").healthcheck == {
        "test": HEALTH["command"],
        "interval": 5 * SECOND,
        "timeout": 5 * SECOND,
        "retries": 3,
    }


# --------------------------------------------------------------------------------------------
# --env-file
# --------------------------------------------------------------------------------------------
def test_env_file_reads_key_value_lines(tmp_path: Path) -> None:
    path = tmp_path / "local.env"
    path.write_text(
        "# database\n"
        "\n"
        "DB_PASSWORD=s3cret=with=equals\n"
        "   INDENTED=yes\r\n"
        "export API_KEY=abc\n"
        'QUOTED="kept as written"\n'
        "EMPTY=\n"
        "  # indented comment\n"
        "DB_PASSWORD=later wins\n"
    )
    assert parse_env_file(path) == {
        "DB_PASSWORD": "later wins",
        "INDENTED": "yes",
        "API_KEY": "abc",
        "QUOTED": '"kept as written"',
        "EMPTY": "",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("OK=1\n\njust a line with a secret\n", r"local\.env:3: expected KEY=VALUE"),
        ("OK=1\nBAD KEY=x\n", r"local\.env:2: 'BAD KEY' is not a variable name"),
        ("1ABC=x\n", r"local\.env:1: '1ABC' is not a variable name"),
        ("=x\n", r"local\.env:1: '' is not a variable name"),
    ],
)
def test_env_file_errors_name_the_line_and_never_echo_values(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "local.env"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        parse_env_file(path)
    assert "secret" not in str(info.value)


def test_env_file_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        parse_env_file(tmp_path / "missing.env")


def test_env_files_outside_the_workspace_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (tmp_path / "outside.env").write_text("TOKEN=x\n")
    (root / "inside.env").write_text("MODE=dev\n")
    (root / "link.env").symlink_to(tmp_path / "outside.env")
    doc = document(container("web"))
    confined = dataclasses.replace(service(doc), workspace=Workspace(root.resolve(), allow_outside=False))
    plan = plan_local(confined, doc, LocalOptions(env_files=(Path("inside.env"),)), cwd=root)
    assert plan.container("web").environment == {"MODE": "dev"}
    for given in (Path("../outside.env"), Path("link.env"), tmp_path / "outside.env"):
        with pytest.raises(InputError) as info:
            plan_local(confined, doc, LocalOptions(env_files=(given,)), cwd=root)
        assert str(info.value) == (
            f"failed to read env file {given}: {(tmp_path / 'outside.env').resolve()} is outside the workspace "
            f"{root.resolve()}"
        )
        assert info.value.fix is not None
        assert info.value.fix.startswith(
            f"move it inside {root.resolve()}, or set `allow_paths_outside_workspace: true`"
        )
    allowed = dataclasses.replace(confined, workspace=Workspace(root.resolve(), allow_outside=True))
    plan = plan_local(allowed, doc, LocalOptions(env_files=(Path("link.env"),)), cwd=root)
    assert plan.container("web").environment == {"TOKEN": "x"}


def test_environment_precedence_task_definition_then_env_files_then_port(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text("SHARED=a\nONLY_A=1\nPORT=1\n")
    (tmp_path / "b.env").write_text("SHARED=b\n")
    doc = document(
        container(
            "web",
            portMappings=[{"containerPort": 8080}],
            environment=[{"name": "SHARED", "value": "td"}, {"name": "MODE", "value": "prod"}],
        ),
        container("worker", essential=False),
    )
    options = LocalOptions(env_files=(Path("a.env"), tmp_path / "b.env"))
    plan = plan_local(service(doc), doc, options, cwd=tmp_path)
    assert plan.container("web").environment == {
        "SHARED": "b",
        "MODE": "prod",
        "ONLY_A": "1",
        "PORT": "8080",
    }
    # Applied to every container; PORT only where there is a port mapping.
    assert plan.container("worker").environment == {"SHARED": "b", "ONLY_A": "1", "PORT": "1"}


# --------------------------------------------------------------------------------------------
# what is not reproduced locally
# --------------------------------------------------------------------------------------------
def test_skipped_secrets_and_credentials_are_reported(tmp_path: Path) -> None:
    (tmp_path / "dev.env").write_text("DB_PASSWORD=hunter2\n")
    doc = document(
        container(
            "web",
            secrets=[
                {"name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db"},
                {"name": "API_KEY", "valueFrom": "arn:aws:ssm:eu-west-1:123456789012:parameter/api"},
            ],
            environmentFiles=[{"value": "arn:aws:s3:::bucket/web.env", "type": "s3"}],
        ),
        container(
            "agent",
            essential=False,
            secrets=[{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:eu-west-1:123456789012:parameter/x"}],
            repositoryCredentials={"credentialsParameter": "arn:aws:secretsmanager:eu-west-1:1:secret:hub"},
        ),
        taskRoleArn="arn:aws:iam::123456789012:role/shop-task",
    )
    plan = plan_local(service(doc), doc, LocalOptions(env_files=(tmp_path / "dev.env",)))
    assert plan.secrets == {"web": ("DB_PASSWORD", "API_KEY"), "agent": ("DB_PASSWORD",)}
    skipped = "\n".join(plan.skipped)
    assert (
        "container 'web': secrets are not fetched (DB_PASSWORD, API_KEY); supply API_KEY with --env-file FILE"
        in skipped
    )
    assert "container 'agent': secrets are not fetched (DB_PASSWORD); --env-file sets them all" in skipped
    assert "container 'agent': repositoryCredentials are not fetched" in skipped
    assert "container 'web': environmentFiles (S3) are not fetched" in skipped
    assert "task role arn:aws:iam::123456789012:role/shop-task is not assumed" in skipped
    assert "hunter2" not in skipped  # a supplied value is never shown
    assert plan.container("web").environment["DB_PASSWORD"] == "hunter2"


def test_nothing_skipped_for_a_plain_task() -> None:
    doc = document(container("web"))
    assert plan_local(service(doc), doc, LocalOptions()).skipped == ()


# --------------------------------------------------------------------------------------------
# --mount
# --------------------------------------------------------------------------------------------
def test_mount_source_is_resolved_against_cwd(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    assert parse_mount("src:/app/src", tmp_path) == Mount(tmp_path / "src", "/app/src", False)
    assert parse_mount("./src:/app/src/:ro", tmp_path) == Mount(tmp_path / "src", "/app/src", True)
    assert parse_mount(f"{tmp_path}/src:/x:rw", Path("/elsewhere")) == Mount(tmp_path / "src", "/x", False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("missing:/app", r"failed to mount 'missing': .*missing does not exist"),
        ("src", "expected SRC:DST or SRC:DST:ro"),
        ("src:/a:b:c", "expected SRC:DST or SRC:DST:ro"),
        (":/app", "expected SRC:DST or SRC:DST:ro"),
        ("src:app", "the container path must be absolute"),
    ],
)
def test_invalid_mounts_are_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "src").mkdir()
    with pytest.raises(InputError, match=message):
        parse_mount(text, tmp_path)


def test_mounts_go_to_the_spec_image_containers_or_to_all(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    doc = document(container("web"), container("proxy"))
    options = LocalOptions(mounts=("src:/app",))
    built = plan_local(service(doc, images=("web",)), doc, options, cwd=tmp_path)
    assert built.container("web").mounts == (Mount(tmp_path / "src", "/app"),)
    assert built.container("proxy").mounts == ()
    everything = plan_local(service(doc), doc, options, cwd=tmp_path)
    assert all(c.mounts for c in everything.containers)
    with pytest.raises(InputError, match="two --mount options use the container path /app"):
        plan_local(service(doc), doc, LocalOptions(mounts=("src:/app", "src:/app/")), cwd=tmp_path)


# --------------------------------------------------------------------------------------------
# ports
# --------------------------------------------------------------------------------------------
def test_host_networking_gives_each_port_mapped_container_its_port() -> None:
    doc = document(
        container("proxy", portMappings=[{"containerPort": 9000}]),
        container("web", portMappings=[{"containerPort": 8080, "hostPort": 8080}, {"containerPort": 8081}]),
        container("worker", essential=False),
    )
    plan = plan_local(service(doc, images=("web",)), doc, LocalOptions())
    assert (plan.main, plan.port, plan.published) == ("web", 8080, {})
    assert plan.container("proxy").environment["PORT"] == "9000"
    assert plan.container("web").environment["PORT"] == "8080"
    assert "PORT" not in plan.container("worker").environment
    moved = plan_local(service(doc, images=("web",)), doc, LocalOptions(port=18080))
    assert (moved.port, moved.container("web").environment["PORT"]) == (18080, "18080")
    assert moved.container("proxy").environment["PORT"] == "9000"
    # The load-balanced container, when the service names it, wins over the spec's images.
    assert plan_local(service(doc, images=("web",)), doc, LocalOptions(), main_container="proxy").main == "proxy"
    assert plan_local(service(doc), doc, LocalOptions()).main == "proxy"


def test_bridge_networking_publishes_every_port_on_loopback() -> None:
    doc = document(
        container("web", portMappings=[{"containerPort": 8080}, {"containerPort": 8125, "protocol": "udp"}]),
        container("admin", portMappings=[{"containerPort": 9000}]),
    )
    plan = plan_local(service(doc), doc, LocalOptions(port=18080), network="bridge")
    assert plan.published == {
        "8080/tcp": ("127.0.0.1", 18080),
        "8125/udp": ("127.0.0.1", 8125),
        "9000/tcp": ("127.0.0.1", 9000),
    }
    assert plan.port == 18080
    assert plan.container("web").environment["PORT"] == "8080"  # the container still listens on its own port


@pytest.mark.parametrize(
    ("doc", "options", "message"),
    [
        (
            document(
                container("a", portMappings=[{"containerPort": 80}]),
                container("b", portMappings=[{"containerPort": 80}]),
            ),
            LocalOptions(),
            "containers 'a' and 'b' both map port 80/tcp",
        ),
        (document(container("a")), LocalOptions(port=8080), "no container of shop has portMappings"),
        (
            document(
                container("a", portMappings=[{"containerPort": 80}]),
                container("b", portMappings=[{"containerPort": 81}]),
            ),
            LocalOptions(port=81),
            "container 'b' uses that port",
        ),
        (document(container("a", portMappings=[{"containerPort": 80}])), LocalOptions(port=70000), "1 to 65535"),
        (document(container("a", essential=False)), LocalOptions(), "no container is essential"),
    ],
)
def test_port_and_task_errors(doc: dict[str, Any], options: LocalOptions, message: str) -> None:
    with pytest.raises(InputError, match=message):
        plan_local(service(doc), doc, options)


def test_container_names() -> None:
    assert container_name("shop", "web", "1a2b3c4d") == "ecs-ship-local-shop-web-1a2b3c4d"
    assert container_name("shop", None, "1a2b3c4d") == "ecs-ship-local-shop-1a2b3c4d"


# --------------------------------------------------------------------------------------------
# the task definition source
# --------------------------------------------------------------------------------------------
def test_current_revision_without_aws_suggests_a_task_definition_file() -> None:
    with pytest.raises(InputError, match="current revision, which needs AWS access") as info:
        task_definition(service(kind="current"), None)
    assert info.value.fix is not None and "task_definition:" in info.value.fix


class _NoCredentialsECS:
    def describe_services(self, **_: Any) -> dict[str, Any]:
        raise botocore.exceptions.NoCredentialsError()


class _ECS:
    def describe_services(self, **kw: Any) -> dict[str, Any]:
        assert kw == {"cluster": "main", "services": ["shop"]}
        return {
            "services": [
                {
                    "status": "ACTIVE",
                    "taskDefinition": "arn:aws:ecs:eu-west-1:1:task-definition/shop:4",
                    "loadBalancers": [{"targetGroupArn": "tg", "containerName": "web", "containerPort": 8080}],
                }
            ]
        }

    def describe_task_definition(self, **kw: Any) -> dict[str, Any]:
        assert kw == {"taskDefinition": "arn:aws:ecs:eu-west-1:1:task-definition/shop:4"}
        td = document(container("web"))
        return {"taskDefinition": {**td, "revision": 4, "status": "ACTIVE"}, "ResponseMetadata": {}}


def test_current_revision_with_failing_credentials_suggests_a_file() -> None:
    clients = Clients("eu-west-1", _NoCredentialsECS(), None, None, None)
    with pytest.raises(InputError, match="AWS credentials are missing") as info:
        task_definition(service(kind="current"), clients)
    assert info.value.fix is not None and "task_definition:" in info.value.fix


def test_current_revision_is_read_with_its_load_balanced_container() -> None:
    doc, main = task_definition(service(kind="current"), Clients("eu-west-1", _ECS(), None, None, None))
    assert main == "web"
    assert doc["family"] == "shop" and "revision" not in doc


def test_file_and_inline_sources_need_no_aws() -> None:
    doc = document(container("web"))
    assert task_definition(service(doc), None) == (doc, None)


# --------------------------------------------------------------------------------------------
# a fake engine
# --------------------------------------------------------------------------------------------
class FakeNetwork:
    def __init__(self, name: str) -> None:
        self.name = name


class FakeContainer:
    def __init__(self, engine: FakeEngine, image: str, kwargs: dict[str, Any]) -> None:
        self.engine = engine
        self.image = image
        self.kwargs = kwargs
        self.id = f"id-{len(engine.created)}"
        self.name = kwargs["name"]
        self.labels: dict[str, str] = kwargs.get("labels") or {}
        self.attrs: dict[str, Any] = {"State": {"Status": "created", "ExitCode": 0}}

    @property
    def short(self) -> str:
        return self.labels.get(f"{LABEL}.container") or "holder"

    def start(self) -> None:
        self.engine.events.append(f"start {self.short}")
        if self.image in self.engine.unstartable and self.kwargs.get("entrypoint") == ["sleep"]:
            raise docker.errors.APIError('exec: "sleep": executable file not found in $PATH')
        if self.engine.start_error:
            raise docker.errors.APIError(self.engine.start_error)
        self.attrs["State"]["Status"] = "running"
        if self.kwargs.get("healthcheck"):
            self.attrs["State"]["Health"] = {"Status": "healthy"}
        if self.short in self.engine.exits:
            self.attrs["State"] = {"Status": "exited", "ExitCode": self.engine.exits[self.short]}

    def reload(self) -> None:
        if self not in self.engine.live:
            raise docker.errors.NotFound("gone")

    def stop(self, timeout: int) -> None:
        self.engine.events.append(f"stop {self.short}")
        self.attrs["State"]["Status"] = "exited"

    def remove(self, force: bool = False) -> None:
        self.engine.events.append(f"remove {self.short}")
        self.engine.live.remove(self)

    def logs(self, **kw: Any) -> Iterator[bytes]:
        assert kw["stream"] and kw["follow"]
        return iter([f"{self.short} says hi\npartial ".encode(), b"line\n", b"no newline"])


class FakeEngine:
    """Just the docker-py surface run_local uses."""

    def __init__(self, networks: tuple[str, ...] = ("host", "none"), unstartable: tuple[str, ...] = ()) -> None:
        self.network_names = networks
        self.unstartable = set(unstartable)
        self.exits: dict[str, int] = {}
        self.created: list[FakeContainer] = []
        self.live: list[FakeContainer] = []
        self.events: list[str] = []
        self.fail_create: str | None = None
        self.start_error: str | None = None
        self.networks = self
        self.containers = self
        self.images = self

    # networks.list / containers.list
    def list(
        self, names: list[str] | None = None, all: bool = False, filters: dict[str, str] | None = None
    ) -> list[Any]:
        if filters is not None:
            key, _, value = filters["label"].partition("=")
            return [c for c in self.live if c.labels.get(key) == value]
        return [FakeNetwork(n) for n in self.network_names if not names or any(x in n for x in names)]

    # images.get
    def get(self, ref: str) -> object:
        return object()

    # containers.create
    def create(self, image: str, **kwargs: Any) -> FakeContainer:
        if self.fail_create and kwargs["labels"].get(f"{LABEL}.container") == self.fail_create:
            raise docker.errors.APIError("no space left on device")
        c = FakeContainer(self, image, kwargs)
        self.created.append(c)
        self.live.append(c)
        return c

    def by_name(self, name: str) -> FakeContainer:
        return next(c for c in self.created if c.short == name)


def test_engine_network_is_bridge_only_with_the_default_bridge() -> None:
    assert engine_network(FakeEngine(("bridge", "host", "none"))) == "bridge"  # type: ignore[arg-type]
    assert engine_network(FakeEngine(("host", "none"))) == "host"  # type: ignore[arg-type]
    assert engine_network(FakeEngine(("my-bridge", "host"))) == "host"  # type: ignore[arg-type]


@pytest.fixture
def listening() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections, standing in for the app's."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def two_container_task(port: int) -> dict[str, Any]:
    return document(
        container(
            "web",
            portMappings=[{"containerPort": port}],
            dependsOn=[{"containerName": "cache", "condition": "HEALTHY"}],
            command=["serve", "--fast"],
            entryPoint=["/bin/app"],
            workingDirectory="/srv",
            linuxParameters={"initProcessEnabled": True},
            stopTimeout=2,
        ),
        container("cache", image="example/cache:7", healthCheck=HEALTH, essential=False),
    )


def run(engine: FakeEngine, doc: dict[str, Any], *, cancel_when_ready: bool = True, **kw: Any) -> tuple[int, list[str]]:
    lines: list[str] = []
    cancel = threading.Event()

    def say(line: str) -> None:
        lines.append(line)
        if cancel_when_ready and line.startswith("ready:"):
            cancel.set()

    svc = service(doc)
    code = run_local(
        svc,
        Spec(Path("/src/ecs-ship.yml"), None, (svc,)),
        kw.pop("options", LocalOptions()),
        docker_client=engine,  # type: ignore[arg-type]
        say=say,
        cancel=cancel,
        ready_timeout=kw.pop("ready_timeout", 5),
        **kw,
    )
    return code, lines


def test_bridge_engine_runs_a_holder_with_loopback_ports_and_the_containers_join_it(listening: int) -> None:
    engine = FakeEngine(("bridge", "host", "none"))
    code, lines = run(engine, two_container_task(listening))
    assert code == 0
    holder, cache, web = engine.created
    assert holder.short == "holder"
    assert holder.image == "example/cache:7"  # the first image in start order
    assert holder.kwargs["entrypoint"] == ["sleep"]
    assert holder.kwargs["ports"] == {f"{listening}/tcp": ("127.0.0.1", listening)}
    assert holder.name.startswith("ecs-ship-local-shop-")
    for c in (cache, web):
        assert c.kwargs["network_mode"] == f"container:{holder.id}"
        assert "ports" not in c.kwargs
    assert web.kwargs["command"] == ["serve", "--fast"]
    assert web.kwargs["entrypoint"] == ["/bin/app"]
    assert web.kwargs["working_dir"] == "/srv"
    assert web.kwargs["init"] is True
    assert web.kwargs["environment"] == {"PORT": str(listening)}
    assert cache.kwargs["healthcheck"]["interval"] == 5 * SECOND
    run_id = web.labels[LABEL]
    assert {c.labels[LABEL] for c in engine.created} == {run_id}
    assert web.name == f"ecs-ship-local-shop-web-{run_id}"
    # Dependents stop first, then everything is removed in reverse start order, the holder last.
    assert engine.events == [
        "start holder",
        "start cache",
        "start web",
        "stop web",
        "stop cache",
        "remove web",
        "remove cache",
        "remove holder",
    ]
    assert engine.live == []
    assert f"ready: http://127.0.0.1:{listening}/ (container web)" in lines
    assert "[web] web says hi" in lines and "[web] partial line" in lines and "[cache] no newline" in lines
    assert lines.index("cache is healthy") < lines.index(next(x for x in lines if x.startswith("started web")))


def test_bridge_holder_falls_back_to_an_image_that_can_sleep(listening: int) -> None:
    engine = FakeEngine(("bridge",), unstartable=("example/cache:7",))
    code, _ = run(engine, two_container_task(listening))
    assert code == 0
    assert [c.image for c in engine.created[:2]] == ["example/cache:7", "example/web:1"]
    assert engine.created[2].kwargs["network_mode"] == f"container:{engine.created[1].id}"
    assert engine.live == []


def test_bridge_holder_without_any_sleep_is_an_error_and_leaves_nothing(listening: int) -> None:
    engine = FakeEngine(("bridge",), unstartable=("example/web:1", "example/cache:7"))
    with pytest.raises(DeployError, match="none of the task's images has a `sleep` program"):
        run(engine, two_container_task(listening))
    assert engine.live == []


def test_bridge_holder_that_cannot_publish_says_why(listening: int) -> None:
    engine = FakeEngine(("bridge",))
    engine.start_error = "Bind for 127.0.0.1:8080 failed: port is already allocated"
    with pytest.raises(DeployError, match=r"network holder: Bind for 127\.0\.0\.1:8080 failed") as info:
        run(engine, two_container_task(listening))
    assert info.value.fix is not None and "--port" in info.value.fix
    assert len(engine.created) == 1 and engine.live == []


def test_host_engine_runs_every_container_on_the_host_network(listening: int) -> None:
    engine = FakeEngine()
    code, lines = run(engine, two_container_task(listening))
    assert code == 0
    assert [c.short for c in engine.created] == ["cache", "web"]
    assert all(c.kwargs["network_mode"] == "host" and "ports" not in c.kwargs for c in engine.created)
    assert engine.live == []
    assert any("(host networking)" in line for line in lines)


def test_an_essential_exit_ends_the_task_with_its_code(listening: int) -> None:
    engine = FakeEngine()
    engine.exits["web"] = 3
    code, lines = run(engine, two_container_task(listening), cancel_when_ready=False)
    assert code == 3
    assert "essential container web exited with code 3: stopping the task" in lines
    assert engine.events[-3:] == ["stop cache", "remove web", "remove cache"]  # web had exited already
    assert engine.live == []


def test_a_non_essential_exit_is_reported_and_tolerated(listening: int) -> None:
    engine = FakeEngine()
    doc = two_container_task(listening)
    doc["containerDefinitions"][0]["dependsOn"] = []
    engine.exits["cache"] = 0
    code, lines = run(engine, doc)
    assert code == 0
    assert "container cache exited with code 0 (not essential: the task keeps running)" in lines


def test_a_failed_success_dependency_never_starts_the_dependent(listening: int) -> None:
    engine = FakeEngine()
    doc = two_container_task(listening)
    doc["containerDefinitions"][0]["dependsOn"] = [{"containerName": "cache", "condition": "SUCCESS"}]
    engine.exits["cache"] = 2
    code, lines = run(engine, doc)
    assert code == 1
    assert "failed to start web: cache exited with code 2, not 0" in lines
    assert [c.short for c in engine.created] == ["cache"]
    assert engine.live == []


def test_never_ready_returns_1() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = int(sock.getsockname()[1])  # bound, never listening
        engine = FakeEngine()
        code, lines = run(engine, two_container_task(closed), ready_timeout=0.5)
    assert code == 1
    assert any(line.startswith(f"failed to become ready: nothing listened on 127.0.0.1:{closed}") for line in lines)
    assert engine.live == []


def test_an_engine_error_mid_start_removes_what_was_started(listening: int) -> None:
    engine = FakeEngine()
    engine.fail_create = "web"
    with pytest.raises(DeployError, match="failed to create container web: no space left on device"):
        run(engine, two_container_task(listening))
    assert engine.events[-2:] == ["stop cache", "remove cache"]
    assert engine.live == []


def test_input_errors_come_before_anything_runs(tmp_path: Path) -> None:
    engine = FakeEngine()
    doc = two_container_task(8080)
    with pytest.raises(InputError, match="does not exist"):
        run(engine, doc, options=LocalOptions(mounts=("nope:/app",)), cwd=tmp_path)
    bad = copy.deepcopy(doc)
    bad["containerDefinitions"][1]["healthCheck"] = {"command": ["CMD", "x"], "interval": 1}
    with pytest.raises(InputError, match="interval is 1"):
        run(engine, bad)
    assert engine.created == []
