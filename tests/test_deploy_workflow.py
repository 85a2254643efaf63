"""The deployment pipeline (.github/workflows/deploy.yml): a valid GitHub Actions workflow whose
jobs run in the pipeline's order, each through a `make` target of the Makefile."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
# YAML 1.1 reads the key `on` as True
WORKFLOW = {("on" if key is True else key): value for key, value in WORKFLOW.items()}
JOBS: dict[str, dict] = WORKFLOW["jobs"]
ORDER = ["lint", "test", "images", "deploy-staging", "smoke-staging", "promote-production"]


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))


def _commands(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_matches_github_workflow_schema():
    schema = json.loads(
        files("check_jsonschema.builtin_schemas.vendor")
        .joinpath("github-workflows.json")
        .read_text()
    )
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(WORKFLOW)
    ]
    assert errors == []


def test_jobs_run_in_the_pipeline_order():
    assert list(JOBS) == ORDER
    assert "needs" not in JOBS["lint"]
    for previous, job in zip(ORDER, ORDER[1:], strict=False):
        needs = JOBS[job]["needs"]
        assert (needs if isinstance(needs, list) else [needs]) == [previous], job


def test_each_job_runs_a_make_target():
    targets = _make_targets()
    expected = {
        "lint": ["lint"],
        "test": ["test"],
        "images": ["images"],
        "deploy-staging": ["deploy"],
        "smoke-staging": ["smoke"],
        "promote-production": ["deploy", "smoke"],
    }
    for job, wanted in expected.items():
        ran = re.findall(r"^make ([a-z-]+)", _commands(JOBS[job]), re.M)
        assert ran == wanted, job
        assert set(ran) <= targets, f"{job} runs a make target the Makefile lacks"
    assert {"lock", "images", "smoke", "deploy"} <= targets


def test_deployments_use_their_environments():
    for job, environment in [
        ("deploy-staging", "staging"),
        ("smoke-staging", "staging"),
        ("promote-production", "production"),
    ]:
        declared = JOBS[job]["environment"]
        assert (declared["name"] if isinstance(declared, dict) else declared) == environment
        assert f"DEPLOY_ENV={environment}" in _commands(JOBS[job]) or job == "smoke-staging"
    for job in ("lint", "test", "images"):
        assert "environment" not in JOBS[job]


def test_make_images_knows_every_secret_the_stack_requires():
    """`make images` fills exactly the variables docker-compose.yml requires."""
    required = set(re.findall(r"\$\{(\w+):?\?", (ROOT / "docker-compose.yml").read_text()))
    declared = re.search(r"^STACK_SECRETS := (.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert set(declared.group(1).split()) == required
