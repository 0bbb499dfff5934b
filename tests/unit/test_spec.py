"""The deploy spec: loading, defaults from the schema, overlays, services, and every error with its place."""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecs_ship.errors import InputError, SpecError
from ecs_ship.spec import (
    PLACEHOLDERS,
    BuildSecret,
    CacheEntry,
    DeploymentSpec,
    ImageSpec,
    LoadBalancerSpec,
    OneOffSpec,
    PauseSpec,
    ServiceSpec,
    SmokeSpec,
    Spec,
    TaskDefinitionSource,
    WaitSpec,
    Workspace,
    load_spec,
    render_tag,
    spec_schema,
)
from ecs_ship.spec import schema as schema_module
from ecs_ship.spec import source as source_module
from ecs_ship.spec.load import repository_problem

REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/goals-backend"
SCHEMA_FILE = Path(schema_module.__file__).parents[1] / "schema" / "ecs-ship.schema.json"


class Project:
    """A spec folder in tmp_path; write() dedents, so tests read like the file they describe."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.text = ""

    def write(self, text: str, name: str = "ecs-ship.yml") -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        body = textwrap.dedent(text).lstrip("\n")
        path.write_text(body)
        if name.endswith("ecs-ship.yml"):
            self.text = body
        return path

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def line(self, needle: str, nth: int = 1) -> int:
        """1-based line of the nth line of the spec that contains needle."""
        hits = [i for i, line in enumerate(self.text.splitlines(), 1) if needle in line]
        assert len(hits) >= nth, f"{needle!r} is not in the spec"
        return hits[nth - 1]

    def load(self, env: str | None = None) -> Spec:
        return load_spec(self.root / "ecs-ship.yml", env=env)

    def error(self, text: str | None = None, env: str | None = None) -> SpecError:
        if text is not None:
            self.write(text)
        with pytest.raises(SpecError) as caught:
            self.load(env)
        return caught.value


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path / "project")


def schema_default(*path: str) -> Any:
    """A default read straight from the schema file: ("wait", "timeout") -> $defs.wait.properties.timeout.default."""
    schema = json.loads(SCHEMA_FILE.read_text())
    node = schema["$defs"][path[0]]
    for key in path[1:]:
        node = node["properties"][key]
    return node["default"]


MINIMAL = "version: 1\ncluster: goals\nservice: goals-backend\n"
# The schema's defaults: the image the service runs now as cache source, cache exported inline.
DEFAULT_CACHE_FROM = (CacheEntry("previous", "images[0].cache_from[0]"),)
DEFAULT_CACHE_TO = (CacheEntry("inline", "images[0].cache_to[0]"),)


# ---------------------------------------------------------------------------------------------------------------------
# valid specs
# ---------------------------------------------------------------------------------------------------------------------


def test_full_spec_round_trips_to_dataclasses(project: Project) -> None:
    project.folder("backend")
    project.write(json.dumps({"family": "goals", "containerDefinitions": []}), "taskdef.json")
    project.write(f"""
        version: 1
        region: eu-west-1
        cluster: goals
        service: goals-backend
        images:
          - container: backend
            repository: {REPO}
            context: backend
            dockerfile: docker/Dockerfile.prod
            platform: linux/arm64
            build_args: {{NODE_ENV: production, WORKERS: 4, RATIO: 1.5, DEBUG: false}}
            target: prod
            tag: "{{git_short_sha}}-{{run_number}}"
        task_definition: taskdef.json
        load_balancer:
          health_check_path: /health
          apply_health_check_path: true
        wait:
          until: stable
          timeout: 120
          poll_interval: 0.5
        on_failure: stop
        allow_host_volumes: true
        smoke:
          path: /ready
          expect_status: 204
          contains: hello
          timeout: 3
    """)
    spec = project.load()
    root = project.root.resolve()
    assert spec == Spec(
        path=root / "ecs-ship.yml",
        env=None,
        services=(
            ServiceSpec(
                name="goals-backend",
                region="eu-west-1",
                cluster="goals",
                service="goals-backend",
                images=(
                    ImageSpec(
                        container="backend",
                        repository=REPO,
                        context=root / "backend",
                        dockerfile=root / "backend" / "docker" / "Dockerfile.prod",
                        platform=("linux/arm64",),
                        build_args={"NODE_ENV": "production", "WORKERS": "4", "RATIO": "1.5", "DEBUG": "false"},
                        target="prod",
                        tag="{git_short_sha}-{run_number}",
                        cache_from=DEFAULT_CACHE_FROM,
                        cache_to=DEFAULT_CACHE_TO,
                    ),
                ),
                task_definition=TaskDefinitionSource(
                    "file", root / "taskdef.json", {"family": "goals", "containerDefinitions": []}
                ),
                load_balancer=LoadBalancerSpec("/health", True),
                wait=WaitSpec("stable", 120.0, 0.5),
                on_failure="stop",
                allow_host_volumes=True,
                smoke=SmokeSpec("/ready", 204, "hello", 3.0),
                workspace=Workspace(root, allow_outside=False),
            ),
        ),
    )
    service = spec.services[0]
    assert isinstance(service.wait.timeout, float)
    assert isinstance(service.smoke and service.smoke.timeout, float)
    assert hash(spec) == hash(project.load())  # frozen and hashable; mappings are left out of the hash
    with pytest.raises(dataclasses.FrozenInstanceError):
        service.cluster = "other"  # type: ignore[misc]


def test_minimal_spec_gets_the_schema_defaults(project: Project) -> None:
    project.write(
        MINIMAL
        + textwrap.dedent(f"""
            images:
              - container: backend
                repository: {REPO}
        """)
    )
    service = project.load().services[0]
    root = project.root.resolve()
    assert service.name == "goals-backend"
    assert service.region is None
    assert service.images == (
        ImageSpec(
            "backend",
            REPO,
            root,
            root / "Dockerfile",
            ("linux/amd64",),
            {},
            None,
            "{git_sha}",
            cache_from=DEFAULT_CACHE_FROM,
            cache_to=DEFAULT_CACHE_TO,
        ),
    )
    assert service.task_definition == TaskDefinitionSource("current", None, None)
    assert service.load_balancer == LoadBalancerSpec(None, False)
    assert service.wait == WaitSpec("serving", 600.0, 1.0)
    assert service.on_failure == "rollback"
    assert service.allow_host_volumes is False
    assert service.smoke is None
    # ... and those values are the schema's.
    image = service.images[0]
    assert str(image.context) == str((project.root / schema_default("image", "context")).resolve())
    assert image.dockerfile.name == schema_default("image", "dockerfile")
    assert image.platform == (schema_default("image", "platform"),) and not image.multi_platform
    assert image.tag == schema_default("image", "tag")
    assert service.wait.until == schema_default("wait", "until")
    assert service.wait.timeout == schema_default("wait", "timeout")
    assert service.wait.poll_interval == schema_default("wait", "poll_interval")
    assert service.on_failure == schema_default("on_failure")
    assert service.allow_host_volumes == schema_default("allow_host_volumes")
    assert service.load_balancer.apply_health_check_path == schema_default("load_balancer", "apply_health_check_path")


def test_defaults_are_read_from_the_schema_not_repeated_in_code(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = spec_schema()
    schema["$defs"]["wait"]["properties"]["timeout"]["default"] = 123
    schema["$defs"]["on_failure"]["default"] = "stop"
    schema["$defs"]["smoke"]["properties"]["expect_status"]["default"] = 418
    monkeypatch.setattr(schema_module, "_schema", lambda: schema)
    project.write(MINIMAL + "smoke: true\n")
    loaded = project.load().services[0]
    assert loaded.wait.timeout == 123.0
    assert loaded.on_failure == "stop"
    assert loaded.smoke == SmokeSpec("/", 418, None, 10.0)


def test_relative_paths_resolve_against_the_spec_folder_not_the_cwd(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.folder("services/web")
    project.write("{}", "deploy/taskdef.json")
    project.write(
        MINIMAL
        + textwrap.dedent(f"""
            task_definition: deploy/taskdef.json
            images:
              - container: web
                repository: {REPO}
                context: services/web
                dockerfile: ../../docker/web.Dockerfile
        """)
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec = load_spec(Path("..") / "project" / "ecs-ship.yml")
    root = project.root.resolve()
    assert spec.path == root / "ecs-ship.yml"
    image = spec.services[0].images[0]
    assert image.context == root / "services" / "web"
    assert image.dockerfile == root / "docker" / "web.Dockerfile"
    assert spec.services[0].task_definition.path == root / "deploy" / "taskdef.json"


def test_yaml_anchors_and_merge_keys(project: Project) -> None:
    project.write(f"""
        version: 1
        cluster: goals
        service: api
        images:
          - &base
            container: api
            repository: {REPO}
            platform: linux/arm64
          - <<: *base
            container: worker
    """)
    images = project.load().services[0].images
    assert [(i.container, i.platform_arg) for i in images] == [("api", "linux/arm64"), ("worker", "linux/arm64")]


def with_platform(value: str) -> str:
    return MINIMAL + f"images:\n  - container: api\n    repository: {REPO}\n    platform: {value}\n"


def test_a_platform_list_is_one_multi_platform_image(project: Project) -> None:
    project.write(with_platform("[linux/amd64, linux/arm64, linux/amd64]"))
    (image,) = project.load().services[0].images
    assert image.platform == ("linux/amd64", "linux/arm64")
    assert image.platform_arg == "linux/amd64,linux/arm64" and image.multi_platform


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("[]", "must have at least 1 entry"),
        ("[linux/amd64, arm64]", "must be os/arch[/variant], e.g. linux/amd64 or linux/arm64, got 'arm64'"),
    ],
)
def test_a_bad_platform_list_names_its_entry(project: Project, value: str, detail: str) -> None:
    err = project.error(with_platform(value))
    key_path = "images[0].platform" if value == "[]" else "images[0].platform[1]"
    assert (err.key_path, err.detail) == (key_path, detail)


# ---------------------------------------------------------------------------------------------------------------------
# errors: each names the file, the line and the key path
# ---------------------------------------------------------------------------------------------------------------------


def assert_error(err: SpecError, project: Project, key_path: str | None, line: int | None, detail: str) -> None:
    assert (err.key_path, err.line, err.detail) == (key_path, line, detail)
    assert err.file == str(project.root / "ecs-ship.yml")
    assert isinstance(err, InputError)
    assert err.exit_code == 2


def test_unknown_key_names_its_path_and_the_closest_key(project: Project) -> None:
    err = project.error(f"""
        version: 1
        cluster: goals
        service: goals-backend
        images:
          - container: backend
            repository: {REPO}
            contex: backend
    """)
    assert_error(err, project, "images[0].contex", project.line("contex:"), "unknown key (did you mean 'context'?)")
    assert str(err) == f"{err.file}:{err.line}: images[0].contex: unknown key (did you mean 'context'?)"


@pytest.mark.parametrize(
    ("extra", "key_path", "needle", "detail"),
    [
        ("clustr: x\n", "clustr", "clustr", "unknown key (did you mean 'cluster'?)"),
        (
            "timeout: 5\n",
            "timeout",
            "timeout",
            "unknown key ('timeout' goes under 'wait' or 'smoke' or an entry of 'pre_deploy' or an entry of "
            "'post_deploy')",
        ),
        ("dockerfile: D\n", "dockerfile", "dockerfile", "unknown key ('dockerfile' goes under an entry of 'images')"),
        (
            "name: x\n",
            "name",
            "name",
            "unknown key ('name' goes under an entry of 'pre_deploy' or an entry of 'post_deploy' or an entry of "
            "'services')",
        ),
        (
            "environments:\n  staging:\n    name: x\n",
            "environments.staging.name",
            "name: x",
            "unknown key ('name' goes under an entry of 'pre_deploy' or an entry of 'post_deploy')",
        ),
        (
            "environments:\n  staging:\n    version: 1\n",
            "environments.staging.version",
            "    version",
            "unknown key ('version' is only allowed at the top level of the spec)",
        ),
        ("wait: {until: serving, time_out: 3}\n", "wait.time_out", "wait", "unknown key (did you mean 'timeout'?)"),
        (
            "wait: {xyzzy: 3}\n",
            "wait.xyzzy",
            "wait",
            "unknown key (valid keys: until, timeout, poll_interval)",
        ),
    ],
)
def test_unknown_keys(project: Project, extra: str, key_path: str, needle: str, detail: str) -> None:
    err = project.error(MINIMAL + extra)
    assert_error(err, project, key_path, project.line(needle), detail)


@pytest.mark.parametrize(
    ("extra", "key_path", "needle", "detail", "fix"),
    [
        (
            "wait:\n  timeout: ten\n",
            "wait.timeout",
            "ten",
            "expected a number, got a string ('ten')",
            None,
        ),
        (
            "wait:\n  timeout: '10'\n",
            "wait.timeout",
            "'10'",
            "expected a number, got a string ('10')",
            "write the number without quotes",
        ),
        (
            "allow_host_volumes: 'yes'\n",
            "allow_host_volumes",
            "allow",
            "expected true or false, got a string ('yes')",
            None,
        ),
        (
            "allow_host_volumes: 'true'\n",
            "allow_host_volumes",
            "allow",
            "expected true or false, got a string ('true')",
            "write true or false without quotes",
        ),
        ("region: [a, b]\n", "region", "[a, b]", "expected a string, got a list", None),
        (
            "region:\n",
            "region",
            "region",
            "expected a string, got nothing (null)",
            "give it a value, or delete the key",
        ),
        ("images: {container: x}\n", "images", "images", "expected a list, got a mapping", None),
        (
            "task_definition: 3\n",
            "task_definition",
            "task_def",
            "expected a string or a mapping, got an integer (3)",
            None,
        ),
        ("smoke: 1\n", "smoke", "smoke", "expected a boolean or a mapping, got an integer (1)", None),
        (
            "smoke: {expect_status: 2.5}\n",
            "smoke.expect_status",
            "smoke",
            "expected an integer, got a number (2.5)",
            None,
        ),
        ("wait: {timeout: true}\n", "wait.timeout", "wait", "expected a number, got a boolean (true)", None),
        ("wait: {timeout: .inf}\n", "wait.timeout", "wait", "expected a number, got inf (not a finite number)", None),
        (
            f"images:\n  - container: api\n    repository: {REPO}\n    tag: {{git_sha}}\n",
            "images[0].tag",
            "tag:",
            "expected a string, got a mapping",
            'quote the value: unquoted, YAML reads {...} as a mapping, e.g. tag: "{git_sha}"',
        ),
        (
            f"images:\n  - container: api\n    repository: {REPO}\n    build_args: {{A: [1]}}\n",
            "images[0].build_args.A",
            "build_args",
            "expected a string, a number or a boolean, got a list",
            None,
        ),
    ],
)
def test_wrong_types(project: Project, extra: str, key_path: str, needle: str, detail: str, fix: str | None) -> None:
    err = project.error(MINIMAL + extra)
    assert_error(err, project, key_path, project.line(needle), detail)
    assert err.fix == fix


@pytest.mark.parametrize(
    ("extra", "key_path", "needle", "detail"),
    [
        ("on_failure: revert\n", "on_failure", "on_failure", "expected one of 'rollback', 'stop', got 'revert'"),
        (
            "wait: {until: stabel}\n",
            "wait.until",
            "wait",
            "expected one of 'serving', 'stable', got 'stabel' (did you mean 'stable'?)",
        ),
        ("wait: {poll_interval: 0.1}\n", "wait.poll_interval", "wait", "must be at least 0.2, got 0.1"),
        ("wait: {timeout: 0}\n", "wait.timeout", "wait", "must be greater than 0, got 0"),
        ("keep_revisions: 0\n", "keep_revisions", "keep_revisions", "must be at least 1, got 0"),
        ("wait: {timeout: .nan}\n", "wait.timeout", "wait", "expected a number, got nan (not a finite number)"),
        (
            "wait: {poll_interval: .nan}\n",
            "wait.poll_interval",
            "wait",
            "expected a number, got nan (not a finite number)",
        ),
        ("keep_revisions: 2.5\n", "keep_revisions", "keep_revisions", "expected an integer, got a number (2.5)"),
        ("smoke: {timeout: -1}\n", "smoke.timeout", "smoke", "must be greater than 0, got -1"),
        ("smoke: {expect_status: 600}\n", "smoke.expect_status", "smoke", "must be at most 599, got 600"),
        ("smoke: {path: ready}\n", "smoke.path", "smoke", "must start with \"/\", got 'ready'"),
        (
            "load_balancer:\n  health_check_path: health\n",
            "load_balancer.health_check_path",
            "health_check_path",
            "must start with \"/\", got 'health'",
        ),
        (
            "load_balancer:\n  url: ftp://app.example.com\n",
            "load_balancer.url",
            "url:",
            "must be an http:// or https:// URL: a host name, an optional port and path, no query, "
            "got 'ftp://app.example.com'",
        ),
        (
            "load_balancer:\n  url: https://app.example.com/?x=1\n",
            "load_balancer.url",
            "url:",
            "must be an http:// or https:// URL: a host name, an optional port and path, no query, "
            "got 'https://app.example.com/?x=1'",
        ),
        ("region: US East\n", "region", "region", "must be an AWS region name such as us-east-1, got 'US East'"),
        ("services: []\n", "services", "services", "must have at least 1 entry"),
        (
            "task_definition: taskdef.txt\n",
            "task_definition",
            "task_def",
            "must be a .json, .yml or .yaml file (or an inline mapping), got 'taskdef.txt'",
        ),
    ],
)
def test_bad_values(project: Project, extra: str, key_path: str, needle: str, detail: str) -> None:
    err = project.error(MINIMAL + extra)
    assert_error(err, project, key_path, project.line(needle), detail)


@pytest.mark.parametrize("version", ["2", "'1'", "true"])
def test_version_must_be_1(project: Project, version: str) -> None:
    err = project.error(f"version: {version}\ncluster: goals\nservice: api\nbogus: 1\n")
    assert (err.key_path, err.line) == ("version", 1)  # checked before anything else in the file
    assert err.detail.startswith("expected ")


def test_version_is_required(project: Project) -> None:
    err = project.error("cluster: goals\nservice: api\n")
    assert_error(err, project, "version", 1, "required")
    assert err.fix == "add `version:` (Spec format version) at the top level of the spec"


@pytest.mark.parametrize(
    ("text", "line", "detail"),
    [
        (
            "version: 1\ncluster: [goals\nservice: api\n",
            3,
            "failed to parse the spec: expected ',' or ']', but got ':' (while parsing a flow sequence at line 2)",
        ),
        ("version: 1\ncluster: goals\n  service: api\n", 3, "failed to parse the spec: mapping values are not allowed"),
        ("version: 1\n---\nversion: 1\n", 2, "failed to parse the spec: but found another document"),
        ("version: 1\ncluster: !Ref Cluster\n", 2, "failed to parse the spec: could not determine a constructor"),
        ("version: 1\ncluster: a\x07\n", 2, "failed to parse the spec: character #x0007 is not allowed in YAML"),
    ],
)
def test_yaml_syntax_errors_carry_the_line(project: Project, text: str, line: int, detail: str) -> None:
    err = project.error(text)
    assert (err.key_path, err.line) == (None, line)
    assert err.detail.startswith(detail)


@pytest.mark.parametrize(
    ("text", "line", "detail"),
    [
        ("- version: 1\n", 1, "the spec must be a mapping of keys (version, cluster, service, ...), got a list"),
        (
            "just text\n",
            1,
            "the spec must be a mapping of keys (version, cluster, service, ...), got a string ('just text')",
        ),
        ("# nothing yet\n", 1, "the spec is empty"),
    ],
)
def test_a_spec_must_be_a_mapping(project: Project, text: str, line: int, detail: str) -> None:
    err = project.error(text)
    assert (err.key_path, err.line, err.detail) == (None, line, detail)


def test_duplicate_keys_are_rejected(project: Project) -> None:
    err = project.error(f"""
        version: 1
        cluster: goals
        service: api
        images:
          - container: api
            repository: {REPO}
            context: .
            context: backend
    """)
    assert_error(
        err,
        project,
        "images[0].context",
        project.line("context: backend"),
        f"duplicate key (first written at line {project.line('context: .')})",
    )
    err = project.error("version: 1\ncluster: a\nservice: b\ncluster: c\n")
    assert_error(err, project, "cluster", 4, "duplicate key (first written at line 2)")


def test_unsupported_yaml(project: Project) -> None:
    err = project.error("version: 1\ncluster: !Ref {a: 1}\n")
    assert (err.key_path, err.line, err.detail) == ("cluster", 2, "unsupported YAML tag !Ref")
    err = project.error("version: 1\nx: &loop\n  - *loop\n")
    assert (err.key_path, err.line, err.detail) == (
        "x[0]",
        2,
        "an alias refers to the mapping or list that contains it",
    )


def alias_bomb(levels: int) -> str:
    """Each line lists the previous one twice: a few hundred bytes that expand to 2**levels strings."""
    lines = ["version: 1", "cluster: c", "service: s", "bomb:", "  - &a0 [x, x]"]
    lines += [f"  - &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_while_it_is_built(project: Project) -> None:
    # 30 levels would be 2**30 values: only a check made during the build returns at all.
    err = project.error(alias_bomb(30))
    assert err.detail == "failed to parse the spec: more than 100,000 values once aliases (*name) are expanded"
    assert err.file == str(project.root / "ecs-ship.yml")
    assert err.line is not None and 5 <= err.line <= 34
    assert err.fix == "write the values out, or use fewer aliases of aliases"


def test_the_number_of_aliases_is_capped(project: Project) -> None:
    aliases = ", ".join(["*one"] * 1000)
    project.write(f"version: 1\ncluster: c\nservice: s\nimages: &one []\nlots: [{aliases}]\n")
    err = project.error()  # within the cap, the only problem is the unknown key
    assert (err.key_path, err.detail.split(" (")[0]) == ("lots", "unknown key")
    err = project.error(f"version: 1\ncluster: c\nservice: s\nimages: &one []\nlots: [{aliases}, *one]\n")
    assert (err.key_path, err.line) == (None, 5)
    assert err.detail == "failed to parse the spec: more than 1000 aliases (*name)"


@pytest.mark.parametrize(
    ("repository", "detail"),
    [
        ("Team/App", "the part 'Team' is not lowercase"),
        ("ghcr.io/owner/my..app", "the part 'my..app'"),
        ("my_host:5000/app", "the registry host 'my_host:5000' is not a host name"),
        ("a" * 256, "the name is 256 characters long"),
    ],
)
def test_a_repository_name_a_registry_would_refuse_is_bad_input(project: Project, repository: str, detail: str) -> None:
    (project.root / "app").mkdir(parents=True, exist_ok=True)
    err = project.error(MINIMAL + f"images:\n  - container: api\n    repository: {repository}\n    context: app\n")
    assert err.key_path == "images[0].repository" and detail in err.detail, err.detail
    assert err.fix is not None and "lowercase" in err.fix


def test_repository_names_registries_take_load(project: Project) -> None:
    for repository in ("127.0.0.1:5000/team/app", "localhost/app", "app", "ghcr.io/o/a-b__c.d", REPO):
        assert repository_problem(repository) is None, repository


@pytest.mark.parametrize("depth", [65, 5000])
def test_a_deeply_nested_spec_is_refused_with_a_message_not_a_traceback(project: Project, depth: int) -> None:
    err = project.error(MINIMAL + "deep: " + "[" * depth + "]" * depth + "\n")
    assert err.detail == "failed to parse the spec: values nested more than 64 levels deep"
    assert err.line == 4 and err.fix is not None


@pytest.mark.parametrize("name", ["td.json", "td.yml"])
def test_a_deeply_nested_task_definition_file_is_refused(project: Project, name: str) -> None:
    project.write('{"family": "f", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", name)
    err = project.error(MINIMAL + f"task_definition: {name}\n")
    assert err.detail == "failed to parse the task definition: values nested more than 64 levels deep"
    assert err.file == str((project.root / name).resolve())


def test_nesting_within_the_bound_still_loads(project: Project) -> None:
    assert source_module.nesting({"a": [[{"b": 1}]]}) == 4
    err = project.error(MINIMAL + "deep: " + "[" * 60 + "]" * 60 + "\n")  # loads; only the key is unknown
    assert err.key_path == "deep"


def test_task_definition_files_have_the_same_caps(project: Project) -> None:
    project.write(alias_bomb(30).replace("version: 1\ncluster: c\nservice: s\n", "family: f\n"), "td.yml")
    err = project.error(MINIMAL + "task_definition: td.yml\n")
    assert err.file == str((project.root / "td.yml").resolve())
    assert err.detail.startswith("failed to parse the task definition: more than 100,000 values")


def test_a_spec_larger_than_1_mib_is_refused_before_it_is_parsed(project: Project) -> None:
    path = project.write(MINIMAL)
    # Valid YAML all the way (one long comment), so only the size can be the reason.
    path.write_text(MINIMAL + "#" + "x" * (1024 * 1024) + "\n")
    err = project.error()
    assert (err.file, err.line) == (str(path), None)
    assert err.detail == "failed to read the spec: it is larger than 1 MiB"
    path.write_text(MINIMAL + "#" + "x" * (1024 * 1024 - len(MINIMAL) - 2) + "\n")
    assert project.load().services[0].cluster == "goals"


def test_keys_must_be_text(project: Project) -> None:
    err = project.error("version: 1\ncluster: a\nservice: b\nbuild_args_like:\n  1: x\n")
    assert (err.key_path, err.line, err.detail) == ("build_args_like", 5, "keys must be text, got 1")
    assert err.fix == "quote the key"


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "nope.yml")
    err = caught.value
    assert err.file == str(tmp_path / "nope.yml")
    assert err.detail == "failed to read the spec: no such file"
    assert err.fix is not None and "--spec" in err.fix
    assert str(err) == f"{tmp_path / 'nope.yml'}: failed to read the spec: no such file"


def test_required_keys_say_where_they_belong(project: Project) -> None:
    err = project.error("version: 1\ncluster: goals\n")
    assert_error(err, project, "service", 1, "required")
    assert err.fix == "set `service:` (ECS service) at the top level"

    project.write("version: 1\nservice: api\nenvironments:\n  staging: {}\n")
    err = project.error(env="staging")
    assert_error(err, project, "cluster", 1, "required")
    assert err.fix == "set `cluster:` (ECS cluster) at the top level, or under environments.staging"

    err = project.error("""
        version: 1
        cluster: goals
        services:
          - service: api
          - name: worker
            cluster: jobs
    """)
    assert_error(err, project, "services[1].service", project.line("- name: worker"), "required")
    assert err.fix == "set `service:` (ECS service) in services[1], or at the top level (shared by every service)"


def test_image_required_keys(project: Project) -> None:
    err = project.error(
        MINIMAL + f"images:\n  - container: api\n    repository: {REPO}\n  - repository: {REPO}\n    context: .\n"
    )
    assert_error(err, project, "images[1].container", project.line("- repository"), "required")
    assert err.fix == "add `container:` (Container) under images[1]"


@pytest.mark.parametrize(
    "repository", [f"{REPO}:v1", f"{REPO}@sha256:{'a' * 64}", "localhost:5000/app:latest", "app:1", "has space/app"]
)
def test_repository_must_not_carry_a_tag_or_digest(project: Project, repository: str) -> None:
    err = project.error(MINIMAL + f"images:\n  - container: api\n    repository: '{repository}'\n")
    assert_error(
        err,
        project,
        "images[0].repository",
        project.line("repository:"),
        f"must be a repository without a tag or digest (the tag comes from `tag`), got {repository!r}",
    )


@pytest.mark.parametrize("repository", [REPO, "127.0.0.1:5000/hello", "localhost:5000/team/app", "app"])
def test_repositories_accepted(project: Project, repository: str) -> None:
    project.write(MINIMAL + f"images:\n  - container: api\n    repository: {repository}\n")
    assert project.load().services[0].images[0].repository == repository


def test_two_images_for_one_container(project: Project) -> None:
    err = project.error(
        MINIMAL + f"images:\n  - container: api\n    repository: {REPO}\n  - container: api\n    repository: {REPO}-2\n"
    )
    assert_error(
        err,
        project,
        "images[1].container",
        project.line("container: api", 2),
        "container 'api' already gets the image of images[0]",
    )


def test_context_folder_must_exist(project: Project) -> None:
    err = project.error(MINIMAL + f"images:\n  - container: api\n    repository: {REPO}\n    context: backnd\n")
    folder = project.root.resolve()
    assert_error(
        err, project, "images[0].context", project.line("backnd"), f"build context {folder / 'backnd'} does not exist"
    )
    assert err.fix == f"context is a folder relative to the spec file's folder ({folder})"
    project.write("not a folder", "file")
    err = project.error(MINIMAL + f"images:\n  - container: api\n    repository: {REPO}\n    context: file\n")
    assert err.detail == f"build context {folder / 'file'} is not a folder"


# ---------------------------------------------------------------------------------------------------------------------
# the workspace
# ---------------------------------------------------------------------------------------------------------------------

IMAGE = f"images:\n  - container: web\n    repository: {REPO}\n"


@pytest.mark.parametrize(
    ("text", "key_path", "what", "target"),
    [
        (IMAGE + "    context: /\n", "images[0].context", "build context", "/"),
        (IMAGE + "    context: ..\n", "images[0].context", "build context", "{outside}/.."),
        (IMAGE + "    context: link\n", "images[0].context", "build context", "{outside}"),
        (
            IMAGE + "    dockerfile: ../../etc/Dockerfile\n",
            "images[0].dockerfile",
            "Dockerfile",
            "{root}/../../etc/Dockerfile",
        ),
        (IMAGE + "    dockerfile: link/Dockerfile\n", "images[0].dockerfile", "Dockerfile", "{outside}/Dockerfile"),
        ("task_definition: ../outside/td.json\n", "task_definition", "task definition file", "{outside}/td.json"),
        ("task_definition: link/td.json\n", "task_definition", "task definition file", "{outside}/td.json"),
    ],
)
def test_paths_outside_the_workspace_are_refused(
    project: Project, tmp_path: Path, text: str, key_path: str, what: str, target: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "td.json").write_text("{}")
    (outside / "Dockerfile").write_text("FROM scratch\n")
    (project.root / "link").symlink_to(outside)  # a symlink inside that leads out counts as out
    root = project.root.resolve()
    resolved = Path(target.format(outside=outside, root=root)).resolve()
    err = project.error(MINIMAL + text)
    assert_error(
        err,
        project,
        key_path,
        project.line(text.split("\n")[-2].split(":")[0]),
        f"{what} {resolved} is outside the workspace {root}",
    )
    assert (
        err.fix == f"move it inside {root}, or set `allow_paths_outside_workspace: true` at the top level of the spec"
    )
    # The opt-out lets the same spec load.
    project.write(MINIMAL + "allow_paths_outside_workspace: true\n" + text)
    assert project.load().services[0].workspace == Workspace(root, allow_outside=True)


def test_paths_inside_the_workspace_are_fine(project: Project, tmp_path: Path) -> None:
    project.folder("app")
    (project.root / "shared").symlink_to(project.folder("real"))
    project.write("{}", "real/td.json")
    project.write(
        MINIMAL + IMAGE + "    context: app\n    dockerfile: ../shared/Dockerfile\ntask_definition: shared/td.json\n"
    )
    service = project.load().services[0]
    root = project.root.resolve()
    assert service.images[0].dockerfile == root / "real" / "Dockerfile"
    assert service.task_definition.path == root / "real" / "td.json"
    assert service.workspace == Workspace(root, allow_outside=False)


def git_repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, capture_output=True)
    return root


def test_the_workspace_is_github_workspace_else_the_git_work_tree_else_the_spec_folder(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "repo")
    spec = Project(repo / "deploy" / "web")
    (repo / "docker").mkdir()
    spec.write(MINIMAL + IMAGE + "    context: ../../docker\n")
    # In a git work tree: the whole tree, so a spec in a subfolder can build from a sibling folder.
    loaded = load_spec(spec.root / "ecs-ship.yml", environ={})
    assert loaded.services[0].workspace == Workspace(repo.resolve(), allow_outside=False)
    # $GITHUB_WORKSPACE wins: a spec that reaches above it is refused.
    environ = {"GITHUB_WORKSPACE": str(repo / "deploy")}
    with pytest.raises(SpecError) as caught:
        load_spec(spec.root / "ecs-ship.yml", environ=environ)
    assert caught.value.key_path == "images[0].context"
    assert caught.value.detail.endswith(f"is outside the workspace {(repo / 'deploy').resolve()}")
    # Outside git: the spec's own folder.
    plain = Project(tmp_path / "plain" / "web")
    plain.folder("app")
    plain.write(MINIMAL + IMAGE + "    context: app\n")
    assert plain.load().services[0].workspace == Workspace(plain.root.resolve(), allow_outside=False)
    plain.write(MINIMAL + IMAGE + "    context: ../web/app\n")  # leaves and comes back: the resolved path counts
    assert plain.load().services[0].images[0].context == (plain.root / "app").resolve()


def test_allow_paths_outside_workspace_is_a_top_level_boolean(project: Project) -> None:
    err = project.error(MINIMAL + "environments:\n  prod:\n    allow_paths_outside_workspace: true\n")
    assert err.key_path == "environments.prod.allow_paths_outside_workspace"
    assert "is only allowed at the top level of the spec" in err.detail
    err = project.error(MINIMAL + "allow_paths_outside_workspace: yes please\n")
    assert (err.key_path, err.detail) == (
        "allow_paths_outside_workspace",
        "expected true or false, got a string ('yes please')",
    )
    default = json.loads(SCHEMA_FILE.read_text())["properties"]["allow_paths_outside_workspace"]["default"]
    assert default is False
    project.write(MINIMAL)
    assert project.load().services[0].workspace == Workspace(project.root.resolve(), default)


def test_apply_health_check_path_needs_a_path(project: Project) -> None:
    err = project.error(MINIMAL + "load_balancer:\n  apply_health_check_path: true\n")
    assert_error(
        err,
        project,
        "load_balancer.apply_health_check_path",
        project.line("apply"),
        "is true but load_balancer.health_check_path is not set",
    )


# ---------------------------------------------------------------------------------------------------------------------
# environments
# ---------------------------------------------------------------------------------------------------------------------

OVERLAID = f"""
    version: 1
    region: us-east-1
    cluster: goals
    service: goals-backend
    images:
      - container: backend
        repository: {REPO}
        build_args: {{A: "1"}}
    wait:
      until: stable
      timeout: 300
    smoke:
      path: /health
    environments:
      staging:
        cluster: goals-staging
        wait:
          timeout: 60
        smoke:
          contains: ok
      production:
        images:
          - container: backend
            repository: {REPO}-prod
          - container: sidecar
            repository: {REPO}-sidecar
      empty:
"""


def test_overlay_deep_merges_mappings(project: Project) -> None:
    project.write(OVERLAID)
    staging = project.load("staging")
    assert staging.env == "staging"
    s = staging.services[0]
    assert (s.region, s.cluster, s.service) == ("us-east-1", "goals-staging", "goals-backend")
    assert s.wait == WaitSpec("stable", 60.0, 1.0)  # until kept from the top level, timeout from the overlay
    assert s.smoke == SmokeSpec("/health", 200, "ok", 10.0)
    assert [i.repository for i in s.images] == [REPO]


def test_overlay_replaces_lists(project: Project) -> None:
    project.write(OVERLAID)
    images = project.load("production").services[0].images
    assert [(i.container, i.repository, dict(i.build_args)) for i in images] == [
        ("backend", f"{REPO}-prod", {}),
        ("sidecar", f"{REPO}-sidecar", {}),
    ]


def test_no_env_or_an_empty_overlay_is_the_top_level(project: Project) -> None:
    project.write(OVERLAID)
    top = project.load()
    assert top.env is None
    assert top.services[0].cluster == "goals"
    assert project.load("").env is None
    assert project.load("empty").services == top.services


def test_unknown_env_lists_the_environments(project: Project) -> None:
    project.write(OVERLAID)
    err = project.error(env="stagin")
    assert_error(
        err,
        project,
        "environments",
        project.line("environments:"),
        "no environment 'stagin' (did you mean 'staging'?); the spec defines: staging, production, empty",
    )
    err = project.error(env="qa")
    assert err.detail == "no environment 'qa'; the spec defines: staging, production, empty"


def test_env_without_environments(project: Project) -> None:
    err = project.error(MINIMAL, env="staging")
    assert (err.key_path, err.line) == (None, None)
    assert err.detail == "failed to select environment 'staging': the spec defines no environments"
    assert err.fix == "add `environments: {staging: {...}}` to the spec, or drop --env"


def test_errors_in_an_overlay_point_into_the_overlay(project: Project) -> None:
    project.folder("backend")
    project.write(f"""
        version: 1
        cluster: goals
        service: goals-backend
        images:
          - container: backend
            repository: {REPO}
            context: backend
        environments:
          staging:
            images:
              - container: backend
                repository: {REPO}
                context: backend-staging
    """)
    project.load()
    err = project.error(env="staging")
    assert err.key_path == "environments.staging.images[0].context"
    assert err.line == project.line("context: backend-staging")

    # A value that the overlay did not touch still points at the top level.
    project.write(f"""
        version: 1
        cluster: goals
        service: goals-backend
        images:
          - container: backend
            repository: {REPO}
            tag: "{{git_sha}}-{{nope}}"
        environments:
          staging:
            wait: {{timeout: 5}}
    """)
    err = project.error(env="staging")
    assert (err.key_path, err.line) == ("images[0].tag", project.line("tag:"))


def test_overlay_values_are_validated_even_when_not_selected(project: Project) -> None:
    err = project.error(MINIMAL + "environments:\n  staging:\n    wait: {timeout: -5}\n")
    assert_error(
        err, project, "environments.staging.wait.timeout", project.line("timeout"), "must be greater than 0, got -5"
    )


# ---------------------------------------------------------------------------------------------------------------------
# services
# ---------------------------------------------------------------------------------------------------------------------

MULTI = f"""
    version: 1
    cluster: goals
    images:
      - container: app
        repository: {REPO}
    wait: {{timeout: 100}}
    smoke: true
    environments:
      staging:
        cluster: goals-staging
    services:
      - service: api
        wait: {{until: stable}}
      - name: jobs
        service: worker
        images: []
        smoke: false
      - service: admin
        cluster: admin-cluster
"""


def test_services_inherit_the_top_level(project: Project) -> None:
    project.write(MULTI)
    api, jobs, admin = project.load().services
    assert [s.name for s in (api, jobs, admin)] == ["api", "jobs", "admin"]
    assert [s.service for s in (api, jobs, admin)] == ["api", "worker", "admin"]
    assert [s.cluster for s in (api, jobs, admin)] == ["goals", "goals", "admin-cluster"]
    assert api.wait == WaitSpec("stable", 100.0, 1.0)
    assert jobs.wait == admin.wait == WaitSpec("serving", 100.0, 1.0)
    assert [c.container for c in api.images] == ["app"]
    assert jobs.images == ()
    assert admin.images == api.images
    assert api.smoke == SmokeSpec("/", 200, None, 10.0)
    assert jobs.smoke is None


def test_services_with_an_environment(project: Project) -> None:
    project.write(MULTI)
    api, jobs, admin = project.load("staging").services
    # The overlay changes the shared defaults; an entry's own value still wins.
    assert [s.cluster for s in (api, jobs, admin)] == ["goals-staging", "goals-staging", "admin-cluster"]


def test_spec_service_lookup(project: Project) -> None:
    project.write(MULTI)
    spec = project.load()
    assert spec.service("jobs").service == "worker"
    with pytest.raises(SpecError) as caught:
        spec.service("job")
    assert caught.value.detail == "no service named 'job' in the spec (did you mean 'jobs'?); it has: api, jobs, admin"


def test_duplicate_services_are_rejected(project: Project) -> None:
    err = project.error("""
        version: 1
        cluster: goals
        services:
          - service: api
          - service: worker
          - service: arn:aws:ecs:us-east-1:123456789012:service/goals/api
            cluster: arn:aws:ecs:us-east-1:123456789012:cluster/goals
    """)
    assert_error(
        err,
        project,
        "services[2]",
        project.line("- service: arn"),
        "deploys the same service as services[0] (cluster 'arn:aws:ecs:us-east-1:123456789012:cluster/goals', "
        "service 'arn:aws:ecs:us-east-1:123456789012:service/goals/api')",
    )

    err = project.error("""
        version: 1
        services:
          - {cluster: a, service: api}
          - {cluster: b, service: api}
    """)
    assert_error(err, project, "services[1]", 4, "has the same name as services[0] ('api')")
    assert err.fix == "set a distinct `name:` on one of them"

    project.write("""
        version: 1
        services:
          - {cluster: a, service: api, region: us-east-1}
          - {cluster: a, service: api, region: eu-west-1, name: api-eu}
    """)
    assert [s.region for s in project.load().services] == ["us-east-1", "eu-west-1"]


def test_error_in_a_service_entry_points_at_the_entry(project: Project) -> None:
    err = project.error(
        textwrap.dedent(MULTI) + "  - service: extra\n    images:\n      - container: x\n        repository: r:1\n"
    )
    assert (err.key_path, err.line) == ("services[3].images[0].repository", project.line("repository: r:1"))


def test_inherited_value_errors_point_at_the_top_level(project: Project) -> None:
    project.write(f"""
        version: 1
        cluster: goals
        images:
          - container: app
            repository: {REPO}
            context: missing
        services:
          - service: api
    """)
    err = project.error()
    assert (err.key_path, err.line) == ("images[0].context", project.line("context: missing"))


# ---------------------------------------------------------------------------------------------------------------------
# task definitions
# ---------------------------------------------------------------------------------------------------------------------

DESCRIBED = {
    "taskDefinition": {
        "family": "goals",
        "revision": 7,
        "containerDefinitions": [{"name": "backend", "image": "x"}],
    },
    "tags": [{"key": "team", "value": "goals"}],
}


def test_task_definition_from_json_keeps_the_describe_wrapper(project: Project) -> None:
    project.write(json.dumps(DESCRIBED, indent=2), "deploy/taskdef.json")
    project.write(MINIMAL + "task_definition: deploy/taskdef.json\n")
    source = project.load().services[0].task_definition
    assert source == TaskDefinitionSource("file", (project.root / "deploy" / "taskdef.json").resolve(), DESCRIBED)


@pytest.mark.parametrize("name", ["taskdef.yml", "taskdef.yaml"])
def test_task_definition_from_yaml(project: Project, name: str) -> None:
    project.write("family: goals\ncontainerDefinitions:\n  - name: backend\n    image: x\n", name)
    project.write(MINIMAL + f"task_definition: {name}\n")
    source = project.load().services[0].task_definition
    assert source.kind == "file"
    assert source.document == {"family": "goals", "containerDefinitions": [{"name": "backend", "image": "x"}]}


def test_inline_and_current_task_definitions(project: Project) -> None:
    project.write(
        MINIMAL
        + "task_definition:\n  family: goals\n  cpu: '256'\n"
        + "environments:\n  big:\n    task_definition: {cpu: '1024'}\n"
    )
    assert project.load().services[0].task_definition == TaskDefinitionSource(
        "inline", None, {"family": "goals", "cpu": "256"}
    )
    # An inline mapping is a mapping like any other: an overlay merges into it.
    assert project.load("big").services[0].task_definition.document == {"family": "goals", "cpu": "1024"}
    project.write(MINIMAL)
    assert project.load().services[0].task_definition == TaskDefinitionSource("current", None, None)


def test_task_definition_documents_are_private_copies(project: Project) -> None:
    project.write(json.dumps(DESCRIBED), "taskdef.json")
    project.write("version: 1\ncluster: c\ntask_definition: taskdef.json\nservices:\n  - service: a\n  - service: b\n")
    a, b = project.load().services
    assert a.task_definition.document == b.task_definition.document == DESCRIBED
    assert a.task_definition.document is not b.task_definition.document


def test_missing_task_definition_file(project: Project) -> None:
    err = project.error(MINIMAL + "task_definition: deploy/taskdef.json\n")
    expected = (project.root / "deploy" / "taskdef.json").resolve()
    assert_error(
        err,
        project,
        "task_definition",
        project.line("task_definition"),
        f"task definition file {expected} does not exist",
    )
    assert err.fix == f"the path is relative to the spec file's folder ({project.root.resolve()})"


@pytest.mark.parametrize(
    ("name", "content", "line", "detail"),
    [
        (
            "td.json",
            '{\n  "family": "goals",\n  "cpu": 256,,\n}\n',
            3,
            "failed to parse the task definition: Expecting",
        ),
        ("td.yml", "family: goals\ncpu: [256\nmemory: 512\n", 3, "failed to parse the task definition: expected ','"),
        ("td.yaml", "family: a\nfamily: b\n", 2, "duplicate key (first written at line 1)"),
        ("td.json", "[1, 2]\n", 1, "the task definition must be a mapping (a JSON object), got a list"),
    ],
)
def test_invalid_task_definition_file(project: Project, name: str, content: str, line: int, detail: str) -> None:
    path = project.write(content, name)
    err = project.error(MINIMAL + f"task_definition: {name}\n")
    assert err.file == str(path.resolve())
    assert err.line == line
    assert err.detail.startswith(detail)


# ---------------------------------------------------------------------------------------------------------------------
# smoke
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("false", None),
        ("true", SmokeSpec("/", 200, None, 10.0)),
        ("{}", SmokeSpec("/", 200, None, 10.0)),
        ("{path: /ready, contains: hello}", SmokeSpec("/ready", 200, "hello", 10.0)),
        ("{expect_status: 302, timeout: 2.5}", SmokeSpec("/", 302, None, 2.5)),
    ],
)
def test_smoke(project: Project, value: str | None, expected: SmokeSpec | None) -> None:
    project.write(MINIMAL + (f"smoke: {value}\n" if value is not None else ""))
    assert project.load().services[0].smoke == expected


def test_an_overlay_can_turn_smoke_off(project: Project) -> None:
    project.write(MINIMAL + "smoke: {path: /x}\nenvironments:\n  dev: {smoke: false}\n")
    assert project.load().services[0].smoke is not None
    assert project.load("dev").services[0].smoke is None


# ---------------------------------------------------------------------------------------------------------------------
# tags
# ---------------------------------------------------------------------------------------------------------------------

VALUES = {"git_sha": "a" * 40, "git_short_sha": "a" * 7, "run_number": "42", "env": "staging"}


def test_render_tag_fills_every_placeholder() -> None:
    assert PLACEHOLDERS == ("git_sha", "git_short_sha", "run_number", "env")
    assert render_tag("{git_sha}", VALUES) == "a" * 40
    assert render_tag("{env}-{git_short_sha}.{run_number}", VALUES) == "staging-aaaaaaa.42"
    assert render_tag("v1", {}) == "v1"


@pytest.mark.parametrize(
    ("template", "values", "detail"),
    [
        ("{git_shaa}", VALUES, "failed to render tag '{git_shaa}': unknown placeholder {git_shaa} "
         "(did you mean {git_sha}? known: {git_sha}, {git_short_sha}, {run_number}, {env})"),
        ("{branch}", VALUES, "failed to render tag '{branch}': unknown placeholder {branch} (known: {git_sha}, "
         "{git_short_sha}, {run_number}, {env})"),
        ("{git_sha", VALUES, "failed to render tag '{git_sha': it has an unmatched { or }"),
        ("{env}-{run_number}", {"env": "x"}, "failed to render tag '{env}-{run_number}': no value for {run_number}"),
        ("{env}", {"env": "a/b"}, "failed to render tag '{env}': 'a/b' is not a valid Docker tag"),
        ("-{env}", {"env": "a"}, "failed to render tag '-{env}': '-a' is not a valid Docker tag"),
        ("{git_sha}" * 4, VALUES, f"failed to render tag {'{git_sha}' * 4!r}: {'a' * 160!r} is not a valid Docker tag"),
    ],
)  # fmt: skip
def test_render_tag_errors(template: str, values: Mapping[str, str], detail: str) -> None:
    with pytest.raises(SpecError) as caught:
        render_tag(template, values)
    assert caught.value.detail == detail


@pytest.mark.parametrize(
    ("tag", "detail"),
    [
        ("{git_sha}-{branch}", "invalid tag template: unknown placeholder {branch} (known: {git_sha}, {git_short_sha}, "
         "{run_number}, {env})"),
        ("{run_numbr}", "invalid tag template: unknown placeholder {run_numbr} (did you mean {run_number}? known: "
         "{git_sha}, {git_short_sha}, {run_number}, {env})"),
        ("v 1", "invalid tag template: 'v 1' is not a valid Docker tag"),
    ],
)  # fmt: skip
def test_tag_templates_are_checked_at_load_time(project: Project, tag: str, detail: str) -> None:
    err = project.error(MINIMAL + f"images:\n  - container: api\n    repository: {REPO}\n    tag: '{tag}'\n")
    assert_error(err, project, "images[0].tag", project.line("tag:"), detail)


def test_env_placeholder_loads_without_env(project: Project) -> None:
    # Rendering without an environment fails later, where --image-tag can still stand in for the build.
    project.write(MINIMAL + f"images:\n  - container: api\n    repository: {REPO}\n    tag: '{{env}}'\n")
    assert project.load().services[0].images[0].tag == "{env}"


# ---------------------------------------------------------------------------------------------------------------------
# ${VAR} references
# ---------------------------------------------------------------------------------------------------------------------

REFERENCES = """
    version: 1
    region: ${REGION:-us-east-1}
    cluster: ${CLUSTER}
    service: svc-${SUFFIX-none}
    images:
      - container: web
        repository: ${REGISTRY}/hello
        build_args:
          VERSION: ${VERSION:-v2}
          PRICE: $$5
          FLAG: ${FLAG}
        tag: "{git_short_sha}-${VERSION:-v2}"
    wait:
      timeout: ${TIMEOUT}
    task_definition:
      containerDefinitions:
        - {name: web, command: [sh, -c, "exec server --port ${PORT}"]}
"""


def test_environment_references_are_expanded(project: Project) -> None:
    environ = {"CLUSTER": "goals", "SUFFIX": "", "REGISTRY": "127.0.0.1:5000", "FLAG": "true", "TIMEOUT": "90"}
    project.write(REFERENCES)
    service = load_spec(project.root / "ecs-ship.yml", environ=environ).services[0]
    assert (service.region, service.cluster, service.service) == ("us-east-1", "goals", "svc-")
    image = service.images[0]
    assert image.repository == "127.0.0.1:5000/hello"
    assert image.build_args == {"VERSION": "v2", "PRICE": "$5", "FLAG": "true"}
    assert image.tag == "{git_short_sha}-v2"
    assert service.wait.timeout == 90.0  # unquoted, the value is read as YAML would read it in place
    assert service.task_definition.document == {
        "containerDefinitions": [{"name": "web", "command": ["sh", "-c", "exec server --port ${PORT}"]}]
    }
    environ |= {"REGION": "eu-west-1", "VERSION": "v3"}
    service = load_spec(project.root / "ecs-ship.yml", environ=environ).services[0]
    assert (service.region, service.images[0].tag) == ("eu-west-1", "{git_short_sha}-v3")


def test_environment_references_default_to_the_process_environment(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECS_SHIP_TEST_CLUSTER", "from-env")
    project.write("version: 1\ncluster: ${ECS_SHIP_TEST_CLUSTER}\nservice: api\n")
    assert project.load().services[0].cluster == "from-env"


@pytest.mark.parametrize(
    ("value", "detail", "fix"),
    [
        (
            "${NOPE}/app",
            "environment variable NOPE is not set",
            "set NOPE in the environment, or give a default: ${NOPE:-value}",
        ),
        (
            "${1NOPE}/app",
            "invalid reference ${1NOPE} (a reference reads ${NAME} or ${NAME:-default})",
            "write $$ for a literal $",
        ),
        ("${NOPE/app", "unclosed ${ (a reference reads ${NAME} or ${NAME:-default})", "write $$ for a literal $"),
    ],
)
def test_bad_environment_references(project: Project, value: str, detail: str, fix: str) -> None:
    project.write(MINIMAL + f"images:\n  - container: web\n    repository: '{value}'\n")
    with pytest.raises(SpecError) as caught:
        load_spec(project.root / "ecs-ship.yml", environ={})
    assert_error(caught.value, project, "images[0].repository", project.line("repository"), detail)
    assert caught.value.fix == fix


SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize(
    ("text", "key_path", "detail"),
    [
        ("wait:\n  timeout: ${T}", "wait.timeout", "expected a number, got a string written as '${T}'"),
        ("wait:\n  timeout: '${T}'", "wait.timeout", "expected a number, got a string written as '${T}'"),
        ("wait:\n  timeout: ${N}", "wait.timeout", "must be greater than 0, got '${N}'"),
        ("smoke:\n  expect_status: ${S}", "smoke.expect_status", "must be at most 599, got '${S}'"),
        ("on_failure: ${T}", "on_failure", "expected one of 'rollback', 'stop', got '${T}'"),
        (
            "wait:\n  until: ${U}",
            "wait.until",
            "expected one of 'serving', 'stable', got '${U}' (did you mean 'stable'?)",
        ),
        ("region: ${T}", "region", "must be an AWS region name such as us-east-1, got '${T}'"),
        ("allow_host_volumes: ${N}", "allow_host_volumes", "expected true or false, got an integer written as '${N}'"),
        ("smoke: ${T}", "smoke", "expected a boolean or a mapping, got a string written as '${T}'"),
        (
            f"images:\n  - container: web\n    repository: {REPO}\n    tag: 'v-${{T}}'",
            "images[0].tag",
            "invalid tag template: 'v-${T}' does not make one once expanded",
        ),
        (
            f"images:\n  - container: web\n    repository: {REPO}\n  - container: ${{W}}\n    repository: {REPO}",
            "images[1].container",
            "container '${W}' already gets the image of images[0]",
        ),
        (
            "images:\n  - container: web\n    repository: r\n    context: ${T}",
            "images[0].context",
            "build context '${T}'",
        ),
        (
            "services:\n  - service: a\n    name: web\n  - service: b\n    name: ${W}",
            "services[1]",
            "has the same name as services[0] ('${W}')",
        ),
    ],
)
def test_errors_quote_values_as_written_never_expanded(project: Project, text: str, key_path: str, detail: str) -> None:
    # The values stand in for a secret that a variable with an innocent name holds.
    environ = {"T": SECRET, "N": "-5", "S": "7000", "U": "stabel", "W": "web"}
    project.write(f"{MINIMAL}{text}\n")
    with pytest.raises(SpecError) as caught:
        load_spec(project.root / "ecs-ship.yml", environ=environ)
    err = caught.value
    line = project.line("${") if key_path != "services[1]" else project.line("service: b")
    assert (err.key_path, err.line) == (key_path, line)
    assert err.detail.startswith(detail)
    fix = (err.fix or "").replace(str(project.root.resolve()), "<root>")  # a tmp path may hold "-5"
    for value in environ.values():
        assert value not in err.detail and value not in fix


def test_the_version_error_quotes_it_as_written(project: Project) -> None:
    project.write("version: ${N}\ncluster: goals\nservice: api\n")
    with pytest.raises(SpecError) as caught:
        load_spec(project.root / "ecs-ship.yml", environ={"N": "2"})
    assert (caught.value.key_path, caught.value.detail) == ("version", "expected 1, got an integer written as '${N}'")


@pytest.mark.parametrize(
    "name",
    [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "GITHUB_TOKEN",
        "DB_PASSWORD",
        "SMTP_PASSWD",
        "SSH_PRIVATE_KEY",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "STRIPE_API_KEY",
        "client_secret",
    ],
)
@pytest.mark.parametrize("reference", ["${{{name}}}", "${{{name}:-x}}", "prefix-${{{name}-x}}"])
def test_variables_named_like_secrets_are_refused(project: Project, name: str, reference: str) -> None:
    written = reference.format(name=name)
    project.write(MINIMAL + f"wait:\n  timeout: '{written}'\n")
    with pytest.raises(SpecError) as caught:
        load_spec(project.root / "ecs-ship.yml", environ={name: SECRET})
    err = caught.value
    assert (err.key_path, err.line) == ("wait.timeout", project.line("timeout"))
    assert (
        err.detail == f"failed to expand ${{{name}}}: the name looks like a secret's, and spec values are shown in logs"
    )
    assert err.fix is not None
    assert "`secrets:`" in err.fix and "Secrets Manager" in err.fix and "ECS_SHIP_REGISTRY_PASSWORD" in err.fix
    assert SECRET not in str(err)


@pytest.mark.parametrize("name", ["AWS_REGION", "AWS_ACCESS_KEY_ID", "KEYCLOAK_URL", "IMAGE_TAG", "MONKEY"])
def test_ordinary_variable_names_are_expanded(project: Project, name: str) -> None:
    project.write(MINIMAL.replace("cluster: goals", f"cluster: ${{{name}}}"))
    assert load_spec(project.root / "ecs-ship.yml", environ={name: "c1"}).services[0].cluster == "c1"


def test_the_hello_example_loads(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "hello" / "ecs-ship.yml"
    spec = load_spec(example, environ={"REGISTRY": "127.0.0.1:5000"})
    assert spec.services[0].images[0].repository.startswith("127.0.0.1:5000/")


# ---------------------------------------------------------------------------------------------------------------------
# the schema
# ---------------------------------------------------------------------------------------------------------------------


def schema_nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key in ("properties", "$defs"):
                for sub in value.values():
                    yield from schema_nodes(sub)
            elif key in ("items", "additionalProperties"):
                yield from schema_nodes(value)


def test_schema_file_is_json_schema_2020_12_within_the_supported_subset() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema == spec_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    supported = schema_module.VALIDATION_KEYWORDS | schema_module.ANNOTATION_KEYWORDS
    for node in schema_nodes(schema):
        assert set(node) <= supported, sorted(set(node) - supported)
        if "$ref" in node:
            assert set(node) == {"$ref"}, "keywords beside $ref are ignored by draft-07 editors"
            assert node["$ref"].split("/")[-1] in schema["$defs"]
        if "properties" in node:
            assert node.get("additionalProperties") is False
            for name, prop in node["properties"].items():
                target = schema["$defs"][prop["$ref"].split("/")[-1]] if "$ref" in prop else prop
                assert target.get("title") and target.get("description"), name


def test_schema_defaults_are_valid_against_their_own_schema() -> None:
    validator = schema_module._Validator(source_module._Source("schema"))
    for node in schema_nodes(spec_schema()):
        if "default" in node:
            validator.check(node["default"], node, ())


def dataclass_fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_schema_keys_match_the_dataclasses() -> None:
    schema = spec_schema()
    defs = schema["$defs"]
    settings = set(defs["environment"]["properties"])
    top_only = {"version", "environments", "services", "allow_paths_outside_workspace"}
    assert set(schema["properties"]) == settings | top_only
    assert set(defs["service_entry"]["properties"]) == settings | {"name"}
    # allow_paths_outside_workspace is one setting for the whole spec: each service carries it in its workspace.
    assert dataclass_fields(ServiceSpec) == settings | {"name", "workspace"}
    assert dataclass_fields(Workspace) == {"root", "allow_outside"}
    assert set(defs["image"]["properties"]) == dataclass_fields(ImageSpec)
    assert set(defs["load_balancer"]["properties"]) == dataclass_fields(LoadBalancerSpec)
    assert set(defs["wait"]["properties"]) == dataclass_fields(WaitSpec)
    assert set(defs["smoke"]["properties"]) == dataclass_fields(SmokeSpec)
    for key in settings:
        assert schema["properties"][key] == {"$ref": f"#/$defs/{key}"}
    assert set(defs["wait"]["properties"]["until"]["enum"]) == {"serving", "stable"}
    assert set(defs["on_failure"]["enum"]) == {"rollback", "stop"}


def every_key_spec(project: Project) -> dict[str, Any]:
    """A spec that sets every key the schema knows."""
    project.folder("backend")
    project.write("{}", "taskdef.json")
    project.write("machine example.com", "netrc")
    settings: dict[str, Any] = {
        "region": "us-east-1",
        "cluster": "goals",
        "service": "goals-backend",
        "images": [
            {
                "container": "backend",
                "repository": REPO,
                "context": "backend",
                "dockerfile": "Dockerfile",
                "platform": "linux/amd64",
                "build_args": {"A": "b"},
                "target": "prod",
                "tag": "{git_sha}",
                "secrets": [{"id": "npmrc", "env": "NPM_TOKEN"}, {"id": "netrc", "file": "netrc"}],
                "cache_from": [{"type": "registry", "ref": "r/web:cache"}, {"type": "gha", "scope": "web"}],
                "cache_to": [
                    {"type": "registry", "ref": "r/web:cache", "mode": "max"},
                    {"type": "gha", "scope": "web", "mode": "min"},
                ],
            }
        ],
        "task_definition": "taskdef.json",
        "load_balancer": {"health_check_path": "/health", "apply_health_check_path": True, "url": "https://a.test"},
        "wait": {"until": "serving", "timeout": 600, "poll_interval": 2},
        "on_failure": "rollback",
        "allow_host_volumes": False,
        "keep_revisions": 5,
        "smoke": {"path": "/", "expect_status": 200, "contains": "hi", "timeout": 10},
        "deployment": {
            "strategy": "LINEAR",
            "bake_time": 5,
            "canary_percent": 10,
            "canary_bake_time": 2,
            "step_percent": 25,
            "step_bake_time": 1,
            "pause": {"at": ["POST_TEST_TRAFFIC_SHIFT"], "timeout": 30, "on_timeout": "CONTINUE"},
        },
        "pre_deploy": [
            {"name": "migrate", "container": "web", "command": "migrate up", "timeout": 60, "environment": {"A": "1"}}
        ],
        "post_deploy": [
            {"name": "warm", "container": "web", "command": ["warm", "--all"], "timeout": 30, "environment": {"B": "2"}}
        ],
    }
    return {
        "version": 1,
        "allow_paths_outside_workspace": False,
        **copy.deepcopy(settings),
        "environments": {"staging": dict(copy.deepcopy(settings), cluster="staging")},
        "services": [dict(copy.deepcopy(settings), name="main"), dict(copy.deepcopy(settings), service="other")],
    }


def schema_keys(node: Any, prefix: str = "") -> set[str]:
    """Dotted key paths the schema allows: lists as [], maps (build_args, environments) as *."""
    node = schema_module._resolve(node)
    keys = set()
    for name, sub in node.get("properties", {}).items():
        keys.add(prefix + name)
        keys |= schema_keys(sub, f"{prefix}{name}.")
    if "items" in node:
        keys |= schema_keys(node["items"], prefix + "[].")
    if isinstance(node.get("additionalProperties"), dict):
        keys.add(prefix + "*")
        keys |= schema_keys(node["additionalProperties"], prefix + "*.")
    return keys


def written_keys(value: Any, prefix: str = "") -> set[str]:
    keys = set()
    if isinstance(value, dict) and not prefix.endswith("task_definition."):
        for name, sub in value.items():
            key = prefix + ("*" if prefix.endswith(("build_args.", "environments.", "environment.")) else name)
            keys.add(key)
            keys |= written_keys(sub, key + ".")
    if isinstance(value, list):
        for item in value:
            keys |= written_keys(item, prefix + "[].")
    return keys


def test_the_loader_accepts_exactly_the_schema_keys(project: Project) -> None:
    document = every_key_spec(project)
    assert written_keys(document) == schema_keys(spec_schema())
    project.write(yaml.safe_dump(document, sort_keys=False))
    for env in (None, "staging"):
        main, other = project.load(env).services
        assert main.smoke == other.smoke == SmokeSpec("/", 200, "hi", 10.0)
        assert main.images[0].target == "prod"
        assert (
            main.deployment
            == other.deployment
            == DeploymentSpec("LINEAR", 5, 10, 2, 25, 1, PauseSpec(("POST_TEST_TRAFFIC_SHIFT",), 30, "CONTINUE"))
        )
        migrate = OneOffSpec("migrate", "web", ("migrate", "up"), 60.0, (("A", "1"),))
        assert main.pre_deploy == other.pre_deploy == (migrate,)
        assert main.keep_revisions == other.keep_revisions == 5
        warm = OneOffSpec("warm", "web", ("warm", "--all"), 30.0, (("B", "2"),), "post_deploy")
        assert main.post_deploy == other.post_deploy == (warm,)
        assert main.images[0].secrets == (
            BuildSecret("npmrc", env="NPM_TOKEN"),
            BuildSecret("netrc", file=(project.root / "netrc").resolve()),
        )


def mapping_paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Paths of the fixed-key mappings of a spec: not the maps (build_args, environments), not task definitions."""
    if isinstance(value, dict):
        if path[-1:] not in (("build_args",), ("environments",), ("environment",)):
            yield path
        for key, sub in value.items():
            if key != "task_definition":
                yield from mapping_paths(sub, (*path, key))
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from mapping_paths(item, (*path, i))


def test_a_key_outside_the_schema_is_refused_everywhere(project: Project) -> None:
    document = every_key_spec(project)
    paths = list(mapping_paths(document))
    # top, staging and 2 services: each itself, images[0], its 2 secrets, 2 cache_from and 2 cache_to entries,
    # load_balancer, wait, smoke, deployment, deployment.pause, pre_deploy[0], post_deploy[0]
    assert len(paths) == 4 * 15
    for path in paths:
        changed = copy.deepcopy(document)
        target: Any = changed
        for part in path:
            target = target[part]
        target["bogus_key"] = 1
        project.write(yaml.safe_dump(changed, sort_keys=False))
        err = project.error()
        expected = source_module._fmt((*path, "bogus_key"))
        assert (err.key_path, err.detail.split(" (")[0]) == (expected, "unknown key")
        assert err.line == project.line("bogus_key")


# ---------------------------------------------------------------------------------------------------------------------
# build cache entries
# ---------------------------------------------------------------------------------------------------------------------
def cache_spec(project: Project, entries: str = "") -> None:
    project.write(
        "version: 1\ncluster: goals\nservice: goals-backend\nimages:\n"
        "  - container: web\n    repository: 127.0.0.1:5000/web\n    context: .\n" + textwrap.indent(entries, "    ")
    )


def test_cache_defaults_are_the_previous_image_and_inline_export(project: Project) -> None:
    cache_spec(project)
    img = project.load().services[0].images[0]
    assert (img.cache_from, img.cache_to) == (DEFAULT_CACHE_FROM, DEFAULT_CACHE_TO)


def test_cache_entries_in_every_form(project: Project) -> None:
    cache_spec(
        project,
        "cache_from:\n"
        "  - 127.0.0.1:5000/web:main\n"
        "  - {type: registry, ref: '127.0.0.1:5000/web:buildcache'}\n"
        "  - {type: gha, scope: web}\n"
        "cache_to:\n"
        "  - {type: registry, ref: '127.0.0.1:5000/web:buildcache', mode: max}\n",
    )
    img = project.load().services[0].images[0]
    assert [(e.type, e.ref, e.scope) for e in img.cache_from] == [
        ("image", "127.0.0.1:5000/web:main", None),
        ("registry", "127.0.0.1:5000/web:buildcache", None),
        ("gha", None, "web"),
    ]
    assert [(e.type, e.mode, e.at) for e in img.cache_to] == [("registry", "max", "images[0].cache_to[0]")]


def test_an_empty_list_turns_the_cache_off(project: Project) -> None:
    cache_spec(project, "cache_from: []\ncache_to: []\n")
    img = project.load().services[0].images[0]
    assert img.cache_from == img.cache_to == ()


def test_registry_cache_needs_a_ref(project: Project) -> None:
    cache_spec(project, "cache_to: [{type: registry}]\n")
    err = project.error()
    assert "images[0].cache_to[0].ref" in str(err) and "ref:" in (err.fix or "")


def test_a_setting_the_cache_type_does_not_take_is_refused(project: Project) -> None:
    cache_spec(project, "cache_to: [{type: inline, ref: x}]\n")
    err = project.error()
    assert "images[0].cache_to[0].ref" in str(err) and "takes no settings" in str(err)


def test_an_unknown_cache_type_is_refused(project: Project) -> None:
    cache_spec(project, "cache_from: [{type: s3}]\n")
    err = project.error()
    assert "images[0].cache_from[0].type" in str(err)


@pytest.mark.parametrize(
    ("written", "url"),
    [("https://app.example.com", "https://app.example.com"), ("http://lb.test:8080/api/", "http://lb.test:8080/api")],
)
def test_load_balancer_url(project: Project, written: str, url: str) -> None:
    project.write(MINIMAL + f"load_balancer:\n  url: {written}\n")
    assert project.load().services[0].load_balancer.url == url


@pytest.mark.parametrize(
    ("extra", "key_path", "needle", "detail"),
    [
        (
            'pre_deploy:\n  - {name: migrate, command: "sh -c \'echo"}\n',
            "pre_deploy[0].command",
            "command",
            "cannot be split into arguments (No closing quotation)",
        ),
        ("pre_deploy:\n  - {name: migrate, command: '  '}\n", "pre_deploy[0].command", "command", "is empty"),
        (
            "pre_deploy:\n  - {name: migrate, command: a}\n  - {name: migrate, command: b}\n",
            "pre_deploy[1].name",
            "command: b",
            "'migrate' names another pre_deploy task too",
        ),
        (
            "pre_deploy:\n  - {name: 'db migrate', command: a}\n",
            "pre_deploy[0].name",
            "db migrate",
            "must be 1 to 24 letters, digits, - or _, got 'db migrate'",
        ),
        # The name is the task's startedBy: a post_deploy task may not share it with a pre_deploy one.
        (
            "pre_deploy:\n  - {name: migrate, command: a}\npost_deploy:\n  - {name: migrate, command: b}\n",
            "post_deploy[0].name",
            "command: b",
            "'migrate' names a pre_deploy task too",
        ),
        (
            "post_deploy:\n  - {name: warm, command: a}\n  - {name: warm, command: b}\n",
            "post_deploy[1].name",
            "command: b",
            "'warm' names another post_deploy task too",
        ),
        ("post_deploy:\n  - {name: warm, command: ''}\n", "post_deploy[0].command", "warm", "is empty"),
        ("post_deploy:\n  - {name: warm}\n", "post_deploy[0].command", "warm", "required"),
    ],
)
def test_a_pre_or_post_deploy_entry_that_cannot_run_is_refused(
    project: Project, extra: str, key_path: str, needle: str, detail: str
) -> None:
    err = project.error(MINIMAL + extra)
    assert_error(err, project, key_path, project.line(needle), detail)


def test_keep_revisions_is_off_unless_set(project: Project) -> None:
    project.write(MINIMAL)
    assert project.load().services[0].keep_revisions is None
    project.write(MINIMAL + "keep_revisions: 3\n")
    assert project.load().services[0].keep_revisions == 3


def test_post_deploy_takes_the_entries_pre_deploy_takes(project: Project) -> None:
    project.write(
        MINIMAL
        + "pre_deploy:\n  - {name: migrate, command: migrate up}\n"
        + "post_deploy:\n  - {name: warm, command: 'warm --all', environment: {LEVEL: '2'}}\n"
        + "  - {name: verify, command: [check, --deep], container: web, timeout: 30}\n"
    )
    svc = project.load().services[0]
    assert [(j.name, j.phase) for j in svc.pre_deploy] == [("migrate", "pre_deploy")]
    assert svc.post_deploy == (
        OneOffSpec("warm", None, ("warm", "--all"), 600.0, (("LEVEL", "2"),), "post_deploy"),
        OneOffSpec("verify", "web", ("check", "--deep"), 30.0, (), "post_deploy"),
    )


def test_a_name_a_service_entry_repeats_from_the_top_level_is_refused_where_it_was_written(project: Project) -> None:
    err = project.error(
        MINIMAL.replace("service: goals-backend\n", "")
        + "pre_deploy:\n  - {name: migrate, command: a}\n"
        + "services:\n  - service: api\n    post_deploy:\n      - {name: migrate, command: b}\n"
    )
    assert_error(
        err,
        project,
        "services[0].post_deploy[0].name",
        project.line("command: b"),
        "'migrate' names a pre_deploy task too",
    )
    assert "across pre_deploy and post_deploy" in (err.fix or "")
