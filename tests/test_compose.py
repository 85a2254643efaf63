"""docker-compose.yml, the production-like stack: valid Compose and consistent with itself.

Without a Docker engine (these machines), the file is interpolated as Compose does it and
validated against the Compose specification's JSON schema (the copy check-jsonschema ships);
then what the schema cannot see is checked: images, published ports, volumes, configs,
dependencies, the scrape targets and the workspace's code server, the secrets documented in
the README, the settings declared, and the Dagster instance config read by Dagster itself.
Where a Docker engine answers, `docker compose config` has the last word.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

from resources.settings import PREFIX, SETTINGS

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
TEXT = COMPOSE.read_text(encoding="utf-8")

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}; $$ is a `$`
VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
REQUIRED = sorted({m["name"] for m in VARIABLE.finditer(TEXT) if m["op"] in (":?", "?")})


class MissingVariable(KeyError):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """The file as Compose reads it with `env` (required variables unset raise)."""

    def value(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m["name"], m["op"], m["arg"]
        set_ = env.get(name)
        if op in (":-", ":?") and not set_:
            set_ = None
        if set_ is not None:
            return set_
        if op in (":?", "?"):
            raise MissingVariable(f"{name}: {arg}")
        return arg if op in (":-", "-") else ""

    return VARIABLE.sub(value, text)


SECRETS = {name: f"test-{name.lower()}" for name in REQUIRED}
STACK = yaml.safe_load(interpolate(TEXT, SECRETS))
SERVICES: dict[str, dict] = STACK["services"]


def test_every_required_variable_is_required():
    assert {"CLICKHOUSE_PASSWORD", "POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"} <= set(REQUIRED)
    for name in REQUIRED:
        with pytest.raises(MissingVariable, match=name):
            interpolate(TEXT, {k: v for k, v in SECRETS.items() if k != name})


def test_matches_the_compose_specification():
    schema_text = (
        files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    )
    schema = json.loads(schema_text)
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(STACK)
    ]
    assert errors == []
    # the schema is not a formality: a misspelt key is caught
    broken = {**STACK, "services": {**SERVICES, "redis": {**SERVICES["redis"], "imag": "x"}}}
    assert not validator.is_valid(broken)


def test_the_stack_has_its_services():
    assert {
        "keeper",
        "clickhouse-1",
        "clickhouse-2",
        "clickhouse-3",
        "minio",
        "postgres",
        "redis",
        "mlflow",
        "dagster-webserver",
        "dagster-daemon",
        "code-location",
        "metrics",
        "prometheus",
        "grafana",
    } <= set(SERVICES)


def test_images_are_named_and_pinned():
    for name, service in SERVICES.items():
        assert "image" in service, f"{name}: no image (a built service names its image too)"
        if "build" not in service:  # a third-party image: a fixed release, never latest
            repo, _, tag = service["image"].rpartition(":")
            assert repo and tag and tag != "latest", f"{name}: image {service['image']}"


def _published(port: str | int | dict) -> str | None:
    """The host port of a port mapping (short or long syntax), None when not published."""
    if isinstance(port, dict):
        return str(port["published"]) if port.get("published") else None
    parts = str(port).split(":")
    return parts[-2] if len(parts) > 1 else None


def test_no_two_services_publish_one_host_port():
    owners: dict[str, str] = {}
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            host = _published(port)
            if host is not None:
                assert host not in owners, f"{name} and {owners[host]} both publish {host}"
                owners[host] = name
    assert {"3000", "5000", "9108", "9090", "3001"} <= set(owners)


def test_volumes_configs_and_dependencies_are_declared():
    volumes, configs = set(STACK.get("volumes") or {}), set(STACK.get("configs") or {})
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith((".", "/")):  # a bind mount: a file of the repository
                if not source.startswith("/var/run/"):
                    assert (ROOT / source).exists(), f"{name} mounts {source}, which is missing"
            else:
                assert source in volumes, f"{name} uses volume {source}, not declared"
        for config in service.get("configs", []):
            source = config["source"] if isinstance(config, dict) else config
            assert source in configs, f"{name} uses config {source}, not declared"
        depends = service.get("depends_on", [])
        for dependency in depends:
            assert dependency in SERVICES, f"{name} depends on {dependency}, no such service"
            condition = depends[dependency].get("condition") if isinstance(depends, dict) else None
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{dependency} has no healthcheck"
    used = {
        v.split(":")[0] if isinstance(v, str) else v.get("source")
        for s in SERVICES.values()
        for v in s.get("volumes", [])
    }
    assert volumes <= used, f"declared and unused: {volumes - used}"


def _listens(service: dict, port: int) -> bool:
    command = service.get("command", "")
    command = " ".join(command) if isinstance(command, list) else command
    published = [str(p).split(":")[-1] for p in service.get("ports", [])]
    return bool(re.search(rf"(-p|--port)[ =]{port}\b", command)) or str(port) in published


def test_scrape_targets_datasource_and_code_server_exist():
    prometheus = SERVICES["prometheus"]
    mounted = {
        v.split(":")[1]: ROOT / v.split(":")[0] for v in prometheus["volumes"] if v.startswith(".")
    }
    scrape = yaml.safe_load(mounted["/etc/prometheus/prometheus.yml"].read_text())
    targets = [
        t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    ]
    assert targets
    for target in targets:
        host, port = target.split(":")
        assert host in SERVICES and _listens(SERVICES[host], int(port)), target
    assert "quant_assets.automation.monitoring.server" in SERVICES["metrics"]["command"]

    grafana = {v.split(":")[1]: ROOT / v.split(":")[0] for v in SERVICES["grafana"]["volumes"]}
    datasources = yaml.safe_load(
        grafana["/etc/grafana/provisioning/datasources/quant.yml"].read_text()
    )
    url = datasources["datasources"][0]["url"]
    assert url == "http://prometheus:9090"
    dashboards = yaml.safe_load(
        grafana["/etc/grafana/provisioning/dashboards/quant.yml"].read_text()
    )
    folder = dashboards["providers"][0]["options"]["path"]
    assert any(target.startswith(folder + "/") for target in grafana)
    json.loads(grafana[f"{folder}/grafana_dashboard.json"].read_text())

    workspace = yaml.safe_load(STACK["configs"]["dagster_workspace"]["content"])
    server = workspace["load_from"][0]["grpc_server"]
    assert _listens(SERVICES[server["host"]], server["port"])


def test_dagster_services_share_the_instance_and_redis():
    for name in ("code-location", "dagster-webserver", "dagster-daemon", "metrics"):
        env = SERVICES[name]["environment"]
        assert env["QUANT_REDIS_URL"] == "redis://redis:6379/0", name
        assert env["DAGSTER_HOME"] == "/opt/dagster/home", name
        assert env["DAGSTER_POSTGRES_HOST"] == "postgres", name
    for name in ("dagster-webserver", "dagster-daemon", "metrics"):
        targets = {c["target"] for c in SERVICES[name]["configs"]}
        assert "/opt/dagster/home/dagster.yaml" in targets, name


def test_secrets_are_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Production-like stack\n(.*?)(?=^## )", readme, re.S | re.M)
    assert section, "README.md has no '## Production-like stack' section"
    missing = [name for name in REQUIRED if f"`{name}`" not in section.group(1)]
    assert missing == []


def test_quant_settings_of_the_stack_are_declared():
    """The code location refuses an undeclared QUANT_* variable (resources.settings)."""
    names = {
        key
        for service in SERVICES.values()
        for key in (service.get("environment") or {})
        if key.startswith(PREFIX)
    }
    assert names
    assert sorted(names - set(SETTINGS)) == []


def test_instance_config_is_a_valid_dagster_instance(tmp_path: Path):
    (tmp_path / "dagster.yaml").write_text(STACK["configs"]["dagster_instance"]["content"])
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["storage"]["postgres"]["postgres_db"]["hostname"] == {
        "env": "DAGSTER_POSTGRES_HOST"
    }
    assert config["run_queue"]["max_concurrent_runs"] >= 1
    assert config["run_launcher"]["class"] == "DockerRunLauncher"


def _docker_engine() -> str | None:
    """Why `docker compose config` cannot run here, or None when it can."""
    if shutil.which("docker") is None:
        return "no docker client on this machine"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        return "the docker client answers but no Docker engine runs (docker info failed)"
    return None


def test_docker_compose_config_accepts_it():
    reason = _docker_engine()
    if reason:
        pytest.skip(reason)
    done = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **SECRETS},
    )
    assert done.returncode == 0, done.stderr
