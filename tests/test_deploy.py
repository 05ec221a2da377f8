"""Deployment artefacts: Dockerfile, .dockerignore, deploy/compose, deploy/kubernetes, the image.

The static checks tie every file to the others and to the exporter itself: ports, endpoint
paths, mount paths, config validity, rule files, labels. The tools are the real ones:
hadolint and docker compose (wheels in the test extra), promtool and amtool (Debian), and for
the image tests a Docker engine started here on a private socket (docs/deploy.md, "Testing").
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from exporter.cli import parse_args, parse_listen
from exporter.config import load_config, parse_config
from pbxware_simulator.cli import build_parser as build_simulator_parser
from tests.tools import require_tool

# Runs Docker, hadolint and docker-compose.
pytestmark = pytest.mark.tools

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = ROOT / "pyproject.toml"
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "docker-compose.yml"
K8S = ROOT / "deploy" / "kubernetes"
GENERATOR = ROOT / "scripts" / "gen-prometheusrule"
PORT = 9865
# What the image is built from; anything else in the build context is a leak risk.
BUILD_INPUTS = (
    "pyproject.toml",
    "requirements.lock",
    "setup.py",
    "README.md",
    # The exporter and the simulator (it ships in the image for the compose demo).
    "src/",
    "wheelhouse/",
)


def tool(name: str) -> str:
    """A test-extra tool: pip puts it next to the interpreter, which pytest may run without
    the venv's bin on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    return require_tool(name)


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("timeout", 120)
    return subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)


# --- Dockerfile -------------------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """(INSTRUCTION, arguments) per build stage, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        if text:
            logical.append(text)
    stages: list[list[tuple[str, str]]] = []
    for text in logical:
        instruction, _, arguments = text.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction, arguments.strip()))
    return stages


def final_stage(instruction: str) -> list[str]:
    return [args for name, args in dockerfile_stages()[-1] if name == instruction]


def entrypoint_config_file() -> PurePosixPath:
    (entrypoint,) = final_stage("ENTRYPOINT")
    flags = [arg for arg in json.loads(entrypoint) if arg.startswith("--config.file=")]
    assert flags, "the ENTRYPOINT names the config file the deploy files mount"
    return PurePosixPath(flags[0].split("=", 1)[1])


def image_uid() -> int:
    return int(final_stage("USER")[-1].split(":")[0])


def test_final_stage_runs_as_numeric_non_root_user():
    users = final_stage("USER")
    assert users, "the final stage sets USER"
    # Numeric, so that Kubernetes can check runAsNonRoot without an /etc/passwd entry.
    assert re.fullmatch(r"\d+(:\d+)?", users[-1]), users[-1]
    assert image_uid() != 0


def test_healthcheck_asks_healthy_on_the_exporter_port():
    (healthcheck,) = final_stage("HEALTHCHECK")
    assert f"127.0.0.1:{PORT}/-/healthy" in healthcheck
    assert "CMD" in healthcheck and "--interval" in healthcheck


def test_exposes_the_exporter_port():
    exposed = {port for args in final_stage("EXPOSE") for port in args.split()}
    assert exposed == {str(PORT)}


def test_copies_only_build_inputs_never_config_or_keys():
    for stage in dockerfile_stages():
        for instruction, args in stage:
            assert instruction != "ADD", "COPY only: ADD fetches URLs and unpacks archives"
            if instruction in {"ENV", "ARG", "LABEL"}:
                assert not re.search(r"API_KEY|TOKEN|PASSWORD|SECRET", args, re.I), args
            if instruction != "COPY" or args.startswith("--from="):
                continue
            *sources, _target = shlex.split(args)
            for source in sources:
                assert source.rstrip("/") in {
                    "pyproject.toml",
                    "requirements.lock",
                    "setup.py",
                    "README.md",
                    "src",
                    "wheelhous[e]",
                }, f"COPY {source}: not a build input"
                assert not re.search(r"config|\.env|key|secret|\.pem|\.crt", source, re.I)


def dockerignore_rules() -> list[tuple[bool, str]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), line.lstrip("!").rstrip("/")))
    return rules


def dockerignore_keeps(path: str, rules: list[tuple[bool, str]]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a directory matches
    everything under it; `**/` matches any number of leading directories. (fnmatch's `*`
    also crosses `/`, which only makes this stricter for the patterns used here.)"""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    keep = True
    for negated, pattern in rules:
        candidates = [pattern]
        if pattern.startswith("**/"):
            candidates += [pattern[3:], "*/" + pattern[3:]]
        if any(fnmatch.fnmatchcase(p, c) for p in prefixes for c in candidates):
            keep = negated
    return keep


def test_dockerignore_lets_in_only_the_build_inputs():
    rules = dockerignore_rules()
    assert rules[0] == (False, "*"), "start from nothing, then re-include"
    assert {pattern + "/" if pattern in {"src", "wheelhouse"} else pattern
            for negated, pattern in rules if negated} <= set(BUILD_INPUTS)  # fmt: skip
    listed = run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT)
    assert listed.returncode == 0, listed.stderr
    # Files that may sit in a work tree and must never reach the build context.
    bait = [
        ".env",
        "config.yml",
        "deploy/compose/.env",
        "keys/eu1",
        "secrets/api_key",
        ".git/config",
        ".venv/bin/python",
        "src/exporter/__pycache__/cli.cpython-311.pyc",
        "wheelhouse/pbxware_exporter-0.1.0-py3-none-any.whl",
        "src/exporter/pbxware/_phpdecode.cpython-311-x86_64-linux-gnu.so",
    ]
    wanted = ["wheelhouse/aiohttp-3.9.0-cp311-cp311-manylinux.whl", "src/exporter/cli.py"]
    kept = {p for p in [*listed.stdout.split(), *bait, *wanted] if dockerignore_keeps(p, rules)}
    assert {"pyproject.toml", "README.md", "src/exporter/cli.py", *wanted} <= kept
    assert not kept & set(bait)
    strays = [p for p in kept if not p.startswith(BUILD_INPUTS) and p not in BUILD_INPUTS]
    assert not strays, f"in the build context but not needed: {strays}"


# --- reproducible build ------------------------------------------------------------------------
LOCK = ROOT / "requirements.lock"


def lock_pins() -> dict[str, tuple[str, list[str]]]:
    """name → (version, sha256 hashes) of requirements.lock."""
    pins: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in LOCK.read_text().splitlines():
        pin = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)\s*\\?$", line)
        if pin:
            current = re.sub(r"[-_.]+", "-", pin.group(1)).lower()
            pins[current] = (pin.group(2), [])
            continue
        digest = re.match(r"^\s+--hash=sha256:([0-9a-f]{64})", line)
        if digest and current:
            pins[current][1].append(digest.group(1))
        elif line.strip() and not line.lstrip().startswith("#"):
            raise AssertionError(f"unexpected line in requirements.lock: {line!r}")
    return pins


def test_lock_pins_every_runtime_dependency_with_hashes():
    """requirements.lock (scripts/lock) pins the dependencies of pyproject.toml and theirs,
    each to one version that satisfies pyproject.toml, with the sha256 of its files."""
    from packaging.requirements import Requirement

    pins = lock_pins()
    assert pins, "requirements.lock has no pins"
    for name, (version, hashes) in pins.items():
        assert hashes, f"{name}=={version} has no --hash"
    declared = [
        Requirement(r) for r in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    ]
    for req in declared:
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in pins, f"{req.name} is not in requirements.lock: run scripts/lock"
        assert req.specifier.contains(pins[name][0], prereleases=True), (
            f"{req.name}=={pins[name][0]} in requirements.lock does not satisfy {req}: run scripts/lock"
        )
    assert "pbxware-exporter" not in pins, "the exporter itself is built from exporter/"


def test_dockerfile_installs_the_lock_with_hashes():
    (builder, *_) = dockerfile_stages()
    runs = " ".join(args for instruction, args in builder if instruction == "RUN")
    copies = [shlex.split(args) for instruction, args in builder if instruction == "COPY"]
    assert any("requirements.lock" in c for c in copies)
    assert re.search(r"pip install [^&]*--require-hashes[^&]*-r /src/requirements\.lock", runs)
    # The exporter on top, without resolving anything else: every dependency came from the lock.
    assert re.search(r"pip install [^&]*--no-deps[^&]*/src\b", runs)


def test_base_image_is_pinned_or_documented():
    """FROM takes ARG BASE; its default is a Debian-release tag (bookworm), and docs/deploy.md
    says how to pin it by digest (no registry is reachable here to look one up)."""
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG BASE=(\S+)$", text, re.MULTILINE)
    assert base, "the Dockerfile has no ARG BASE default"
    assert "@sha256:" in base.group(1) or "bookworm" in base.group(1), base.group(1)
    docs = (ROOT / "docs" / "deploy.md").read_text()
    assert "@sha256:" in docs and "requirements.lock" in docs


def test_hadolint_is_clean():
    result = run([tool("hadolint"), "--no-color", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


# --- docker compose ---------------------------------------------------------------------------


def compose_env() -> dict[str, str]:
    # The defaults in the file, not whatever the caller's shell happens to export.
    overrides = {"PBXWARE_API_KEY", "GRAFANA_ADMIN_PASSWORD", "COMPOSE_FILE", "COMPOSE_PROFILES"}
    return {k: v for k, v in os.environ.items() if k not in overrides}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose model as docker compose resolves it (absolute bind sources, defaults)."""
    result = run(
        [tool("docker-compose"), "-f", str(COMPOSE), "config", "--format", "json"],
        env=compose_env(),
    )
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


def binds(service: dict[str, Any]) -> dict[str, Path]:
    """container path -> host path of a service's bind mounts."""
    return {
        v["target"]: Path(v["source"]) for v in service.get("volumes", []) if v["type"] == "bind"
    }


def flag(args: list[str], name: str) -> str:
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"{name}=")]
    assert len(values) == 1, f"{name}= in {args}"
    return values[0]


def published(service: dict[str, Any]) -> dict[int, int]:
    return {int(p["published"]): int(p["target"]) for p in service.get("ports", [])}


def test_compose_file_is_valid():
    result = run([tool("docker-compose"), "-f", str(COMPOSE), "config", "-q"], env=compose_env())
    assert result.returncode == 0, result.stderr


def test_compose_has_the_whole_picture(compose):
    services = compose["services"]
    assert set(services) == {"simulator", "exporter", "prometheus", "alertmanager", "grafana"}
    assert services["simulator"]["image"] == services["exporter"]["image"]
    assert services["simulator"]["entrypoint"][0].endswith("/pbxware-simulator")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["alertmanager"]["image"].startswith("prom/alertmanager:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    assert published(services["grafana"]) == {3000: 3000}
    assert published(services["prometheus"]) == {9090: 9090}
    assert published(services["exporter"]) == {PORT: PORT}


def test_compose_bind_mounts_are_repo_files(compose):
    for name, service in compose["services"].items():
        for target, source in binds(service).items():
            assert source.exists(), f"{name}: {source} (-> {target}) does not exist"
            assert source.resolve().is_relative_to(ROOT), f"{name}: {source} is outside the repo"


def test_compose_exporter_reads_its_config_and_polls_the_simulator(compose, monkeypatch):
    services = compose["services"]
    exporter, simulator = services["exporter"], services["simulator"]
    mounts = binds(exporter)
    config_path = mounts[str(entrypoint_config_file())]
    assert config_path == COMPOSE_DIR / "exporter.yml"
    args = parse_args(exporter["command"])
    assert parse_listen(args.listen)[1] == PORT

    # The same key on both sides, from the environment, never written in the config.
    key = exporter["environment"]["PBXWARE_API_KEY"]
    assert simulator["environment"]["PBXWARE_SIM_API_KEY"] == key
    assert "${PBXWARE_API_KEY}" in config_path.read_text()
    assert key not in config_path.read_text()
    monkeypatch.setenv("PBXWARE_API_KEY", key)
    config = load_config(config_path)

    # The simulator's own parser: a flag it does not know would stop the service.
    sim_args = build_simulator_parser().parse_args(simulator["command"])
    assert sim_args.churn_interval and sim_args.churn_interval == sim_args.tick_seconds
    sim_host, sim_port = flag(simulator["command"], "--listen").rsplit(":", 1)
    assert sim_host == "0.0.0.0", "the simulator must listen beyond its own loopback"
    systems = flag(simulator["command"], "--systems").split(",")
    assert [s.name for s in config.systems] == systems
    for system in config.systems:
        url = urlsplit(system.url)
        assert (url.hostname, url.port) == ("simulator", int(sim_port))
        assert url.path == f"/{system.name}/", "the simulator serves a system under /<name>/"
        assert system.cdr.enabled, f"{system.name}: CDR metrics feed the rules and dashboards"


def prometheus_config(compose: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Path]]:
    prometheus = compose["services"]["prometheus"]
    mounts = binds(prometheus)
    path = mounts[flag(prometheus["command"], "--config.file")]
    return yaml.safe_load(path.read_text()), mounts


def scrape_targets(config: dict[str, Any], job: str) -> list[str]:
    (scrape,) = [s for s in config["scrape_configs"] if s["job_name"] == job]
    return [t for static in scrape["static_configs"] for t in static["targets"]]


def test_compose_prometheus_scrapes_the_exporter_and_alerts_to_alertmanager(compose):
    config, _ = prometheus_config(compose)
    # The rules select job="pbxware".
    assert scrape_targets(config, "pbxware") == [f"exporter:{PORT}"]
    alertmanager = compose["services"]["alertmanager"]
    (am_port,) = published(alertmanager).values()
    targets = [
        t
        for am in config["alerting"]["alertmanagers"]
        for static in am["static_configs"]
        for t in static["targets"]
    ]
    assert targets == [f"alertmanager:{am_port}"]


def rule_files() -> list[Path]:
    """The rule files Prometheus must load: the ones the PrometheusRule is generated from."""
    files = [
        p for pattern in ("alerts/*.rules.yml", "rules/*.rules.yml") for p in ROOT.glob(pattern)
    ]
    assert files
    return sorted(files)


def test_compose_prometheus_loads_every_rule_file(compose, tmp_path):
    config, mounts = prometheus_config(compose)
    loaded: dict[Path, str] = {}
    for host_file in rule_files():
        for target, source in mounts.items():
            if host_file.is_relative_to(source):
                inside = str(PurePosixPath(target) / host_file.relative_to(source).as_posix())
                if any(fnmatch.fnmatchcase(inside, p) for p in config["rule_files"]):
                    loaded[host_file] = inside
    assert set(loaded) == set(rule_files()), f"not loaded: {set(rule_files()) - set(loaded)}"
    # promtool checks the config and the rules it loads, with the container paths mapped back.
    local = dict(config, rule_files=[str(p) for p in loaded])
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(local))
    result = run([require_tool("promtool"), "check", "config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_alertmanager_config_is_valid_and_routes_like_the_example(compose):
    alertmanager = compose["services"]["alertmanager"]
    path = binds(alertmanager)[flag(alertmanager["command"], "--config.file")]
    result = run([require_tool("amtool"), "check-config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    ours = yaml.safe_load(path.read_text())
    example = yaml.safe_load((ROOT / "alertmanager.example.yml").read_text())
    assert ours["route"] == example["route"]
    assert ours["inhibit_rules"] == example["inhibit_rules"]


def test_compose_grafana_provisions_prometheus_and_the_repo_dashboards(compose):
    grafana = compose["services"]["grafana"]
    mounts = binds(grafana)
    provisioning = mounts["/etc/grafana/provisioning"]
    assert provisioning == COMPOSE_DIR / "grafana" / "provisioning"

    (datasource_file,) = (provisioning / "datasources").glob("*.yml")
    (datasource,) = yaml.safe_load(datasource_file.read_text())["datasources"]
    prometheus_port = next(iter(published(compose["services"]["prometheus"]).values()))
    assert datasource["type"] == "prometheus" and datasource["isDefault"] is True
    assert datasource["url"] == f"http://prometheus:{prometheus_port}"

    (provider_file,) = (provisioning / "dashboards").glob("*.yml")
    (provider,) = yaml.safe_load(provider_file.read_text())["providers"]
    dashboards_in_container = provider["options"]["path"]
    assert mounts[dashboards_in_container] == ROOT / "dashboards"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(dashboards_in_container + "/")
    assert (ROOT / "dashboards" / PurePosixPath(home).name).exists()
    # The dashboards choose their data source by type, so the provisioned default is used.
    for path in (ROOT / "dashboards").glob("*.json"):
        variables = json.loads(path.read_text())["templating"]["list"]
        assert any(v["type"] == "datasource" and v["query"] == "prometheus" for v in variables), (
            path.name
        )


# --- Kubernetes -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict[str, Any]]:
    """kind -> manifest, from every file the kustomization lists."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == files, "kustomization.yaml lists every manifest"
    manifests: dict[str, dict[str, Any]] = {}
    for name in files:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc is None:
                continue
            assert doc["kind"] not in manifests, f"one {doc['kind']} expected"
            manifests[doc["kind"]] = doc
    return manifests


# The placeholder Secret: an example only, outside the kustomization, so that
# `kubectl apply -k deploy/kubernetes` can never overwrite the real API keys with it.
SECRET_EXAMPLE = K8S / "examples" / "secret.yaml"


@pytest.fixture(scope="module")
def secret_example() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(SECRET_EXAMPLE.read_text())
    return doc


def container(k8s: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (only,) = k8s["StatefulSet"]["spec"]["template"]["spec"]["containers"]
    return only


def test_k8s_kinds_and_no_namespace(k8s):
    assert set(k8s) == {
        "ConfigMap",
        "Service",
        "StatefulSet",
        "ServiceMonitor",
        "PrometheusRule",
        "PodDisruptionBudget",
    }
    for kind, doc in k8s.items():
        assert "namespace" not in doc["metadata"], f"{kind}: the namespace is the user's choice"


def test_k8s_pod_ordinal_is_the_shard(k8s):
    statefulset = k8s["StatefulSet"]
    replicas = statefulset["spec"]["replicas"]
    assert replicas == 2
    args = container(k8s)["args"]
    assert flag(args, "--shard.count") == str(replicas)
    assert flag(args, "--shard.index") == "$(POD_INDEX)"
    env = {e["name"]: e for e in container(k8s)["env"]}
    field = env["POD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field == "metadata.labels['apps.kubernetes.io/pod-index']"
    # What the kubelet passes to each pod parses as that pod's shard.
    for ordinal in range(replicas):
        parsed = parse_args([a.replace("$(POD_INDEX)", str(ordinal)) for a in args])
        assert (parsed.shard_index, parsed.shard_count) == (ordinal, replicas)
        assert parse_listen(parsed.listen)[1] == PORT


def test_k8s_security_context(k8s):
    pod = k8s["StatefulSet"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == image_uid()
    assert pod.get("automountServiceAccountToken") is False
    own = container(k8s)["securityContext"]
    assert own["readOnlyRootFilesystem"] is True
    assert own["allowPrivilegeEscalation"] is False
    assert own["capabilities"]["drop"] == ["ALL"]


def test_k8s_ports_and_probes(k8s):
    exporter = container(k8s)
    ports = {p["name"]: p["containerPort"] for p in exporter["ports"]}
    assert ports == {"metrics": PORT}
    for probe, path in (("livenessProbe", "/-/healthy"), ("readinessProbe", "/-/ready")):
        get = exporter[probe]["httpGet"]
        assert get["path"] == path
        assert ports.get(get["port"], get["port"]) == PORT


def test_k8s_service_and_servicemonitor_select_the_pods(k8s):
    statefulset, service, monitor = k8s["StatefulSet"], k8s["Service"], k8s["ServiceMonitor"]
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert statefulset["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    # Headless: every replica is scraped, each holds other systems.
    assert service["spec"]["clusterIP"] == "None"
    (port,) = service["spec"]["ports"]
    assert port["port"] == PORT and port["targetPort"] in ("metrics", PORT)

    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == port["name"]
    assert endpoint.get("path", "/metrics") == "/metrics"
    (job,) = [r for r in endpoint["relabelings"] if r["targetLabel"] == "job"]
    exprs = [r["expr"] for g in k8s["PrometheusRule"]["spec"]["groups"] for r in g["rules"]]
    selected = {job for expr in exprs for job in re.findall(r'\bjob="([^"]+)"', expr)}
    assert selected == {job["replacement"]}, "the scrape job is the one the rules select"


def test_k8s_secret_is_not_applied_by_the_kustomization(k8s, secret_example):
    """Following docs/deploy.md (create the Secret, then `kubectl apply -k`) must not replace
    the real keys with placeholders: no Secret among the resources, none generated."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert "Secret" not in k8s
    assert not any("secret" in r.lower() for r in kustomization["resources"])
    assert "secretGenerator" not in kustomization
    volumes = k8s["StatefulSet"]["spec"]["template"]["spec"]["volumes"]
    (secret_volume,) = [v for v in volumes if "secret" in v]
    assert secret_example["kind"] == "Secret"
    assert secret_volume["secret"]["secretName"] == secret_example["metadata"]["name"]
    docs = (ROOT / "docs" / "deploy.md").read_text()
    assert "secretGenerator" in docs and "External Secrets" in docs


def test_k8s_pod_disruption_budget(k8s):
    """A drain takes at most one shard away at a time (each replica polls other systems)."""
    pdb, statefulset = k8s["PodDisruptionBudget"], k8s["StatefulSet"]
    assert pdb["apiVersion"] == "policy/v1"
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in pdb["spec"]


def test_k8s_instance_is_the_pod_name(k8s):
    """instance = pod name (pbxware-exporter-0, -1 …), stable across restarts, not the pod IP:
    alert identities and offset-1w comparisons survive a restart."""
    (endpoint,) = k8s["ServiceMonitor"]["spec"]["endpoints"]
    (instance,) = [r for r in endpoint["relabelings"] if r["targetLabel"] == "instance"]
    assert instance["sourceLabels"] == ["__meta_kubernetes_pod_name"]
    assert instance.get("action", "replace") == "replace"


def test_k8s_config_is_valid_with_keys_from_the_secret(k8s, secret_example, tmp_path):
    exporter = container(k8s)
    mounts = {m["name"]: m["mountPath"] for m in exporter["volumeMounts"]}
    volumes = {v["name"]: v for v in k8s["StatefulSet"]["spec"]["template"]["spec"]["volumes"]}
    config_file = entrypoint_config_file()
    (config_volume,) = [n for n, v in volumes.items() if "configMap" in v]
    assert volumes[config_volume]["configMap"]["name"] == k8s["ConfigMap"]["metadata"]["name"]
    assert mounts[config_volume] == str(config_file.parent)
    (secret_volume,) = [n for n, v in volumes.items() if "secret" in v]
    assert volumes[secret_volume]["secret"]["secretName"] == secret_example["metadata"]["name"]
    key_dir = PurePosixPath(mounts[secret_volume])

    keys = secret_example["stringData"]
    for value in keys.values():
        assert "REPLACE" in value, "the committed Secret holds placeholders only"
    data = yaml.safe_load(k8s["ConfigMap"]["data"][config_file.name])
    # The Secret's files, written where the test can read them; the paths point there.
    for name, value in keys.items():
        (tmp_path / name).write_text(value + "\n")
    for system in data["systems"]:
        key_file = PurePosixPath(system["api_key_file"])
        assert key_file.parent == key_dir, f"{system['name']}: key outside the Secret mount"
        assert key_file.name in keys, f"{system['name']}: no such key in the Secret"
        system["api_key_file"] = str(tmp_path / key_file.name)
    config = parse_config(data, source="configmap", base_dir=tmp_path)
    assert {s.name for s in config.systems} == set(keys)


def test_prometheusrule_is_the_generator_output():
    result = run([sys.executable, str(GENERATOR), "--stdout"])
    assert result.returncode == 0, result.stderr
    assert (K8S / "prometheusrule.yaml").read_text() == result.stdout, (
        "deploy/kubernetes/prometheusrule.yaml is out of date: run scripts/gen-prometheusrule"
    )
    check = run([sys.executable, str(GENERATOR), "--check"])
    assert check.returncode == 0, check.stderr


def test_prometheusrule_groups_pass_promtool(k8s, tmp_path):
    groups = k8s["PrometheusRule"]["spec"]["groups"]
    expected = [g for f in rule_files() for g in yaml.safe_load(f.read_text())["groups"]]
    assert groups == expected
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    result = run([require_tool("promtool"), "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


# --- the image, built and run on a Docker engine of its own ------------------------------------

DOCKER_NETWORK_FLAGS = [
    "--bridge=none",
    "--iptables=false",
    "--ip-forward=false",
    "--ip-masq=false",
]


@pytest.fixture(scope="module")
def docker_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A dockerd on a private socket. The network flags keep it from touching the host's
    bridges, iptables and forwarding (docs/deploy.md): containers use --network none and share
    one network namespace, so no port of the host is used either."""
    dockerd = require_tool("dockerd")
    require_tool("docker")
    if os.geteuid() != 0:
        message = "dockerd needs root"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    # A short path: the socket path must fit in sun_path.
    work = Path(tmp_path_factory.mktemp("dockerd", numbered=True))
    env = dict(os.environ, DOCKER_HOST=f"unix://{work}/docker.sock", DOCKER_CONFIG=str(work))
    log = (work / "dockerd.log").open("w")
    process = subprocess.Popen(
        [
            dockerd,
            f"--data-root={work}/root",
            f"--exec-root={work}/exec",
            f"--pidfile={work}/dockerd.pid",
            f"--host=unix://{work}/docker.sock",
            *DOCKER_NETWORK_FLAGS,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while run(["docker", "info"], env=env, timeout=30).returncode != 0:
            assert process.poll() is None, (work / "dockerd.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "dockerd did not answer within 60 s"
            time.sleep(0.2)
        yield env
    finally:
        containers = run(["docker", "ps", "-aq"], env=env, timeout=30).stdout.split()
        if containers:
            run(["docker", "rm", "-f", *containers], env=env, timeout=60)
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        log.close()
        # dockerd leaves this nsfs mount behind; rmtree would fail on it.
        run(["umount", f"{work}/exec/netns/default"], timeout=30)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def image(docker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The image, built offline (--network none) from a wheelhouse, as docs/deploy.md shows."""
    base = run([str(ROOT / "scripts" / "docker-base")], env=docker_env, timeout=900)
    assert base.returncode == 0, base.stdout + base.stderr
    context = tmp_path_factory.mktemp("context")
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, context / name)
    shutil.copytree(ROOT / "src", context / "src", ignore=shutil.ignore_patterns("*.so"))
    shutil.copy2(LOCK, context / LOCK.name)
    # The locked files themselves (hash-checked in the build), and the build backend of the
    # exporter and of phpserialize's sdist: docs/deploy.md "Offline builds".
    build_system = tomllib.loads(PYPROJECT.read_text())["build-system"]["requires"]
    wheelhouse = str(context / "wheelhouse")
    for args in (["--require-hashes", "-r", str(LOCK)], [*build_system, "wheel"]):
        wheels = run(
            [sys.executable, "-m", "pip", "download", "--quiet", "-d", wheelhouse, *args],
            timeout=600,
        )
        assert wheels.returncode == 0, wheels.stderr
    tag = f"pbxware-exporter:test-{secrets.token_hex(4)}"
    build = run(
        ["docker", "build", "--quiet", "--network", "none", "--tag", tag, str(context)],
        env=docker_env,
        timeout=900,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    return tag


def docker(env: dict[str, str], *args: str, timeout: float = 60) -> str:
    result = run(["docker", *args], env=env, timeout=timeout)
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout.strip()


def test_image_user_and_contents(docker_env, image):
    def inside(*command: str) -> str:
        entrypoint, *rest = command
        return docker(
            docker_env, "run", "--rm", "--network", "none", "--entrypoint", entrypoint, image, *rest
        )

    assert inside("id", "-u") == str(image_uid())
    assert inside("/opt/pbxware-exporter/bin/pbxware-exporter", "--version").startswith(
        "pbxware-exporter "
    )
    listing = inside("ls", "/opt/pbxware-exporter/bin").split()
    assert "pbxware-simulator" in listing
    assert "pip" not in listing, "the installer stays in the builder stage"
    # No config is baked in: it arrives as a mount (compose volume, ConfigMap).
    config = str(entrypoint_config_file())
    assert inside("sh", "-c", f"test -e {config} && echo present || echo absent") == "absent"


SIM_KEY = "test-only-simulator-key"
SIM_PORT = 8080


def wait_until(check: Any, what: str, seconds: float = 90) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def fetch(env: dict[str, str], container: str, url: str) -> tuple[int, str]:
    """GET from inside the shared network namespace (no host port is published)."""
    code = (
        "import sys, urllib.request as u, urllib.error as e\n"
        "try:\n r = u.urlopen(sys.argv[1], timeout=5); print(r.status); print(r.read().decode())\n"
        "except e.HTTPError as x: print(x.code)\n"
    )
    result = run(["docker", "exec", container, "python", "-c", code, url], env=env, timeout=30)
    if result.returncode != 0:
        return 0, result.stderr
    status, _, body = result.stdout.partition("\n")
    return int(status), body


@pytest.fixture(scope="module")
def simulator_container(docker_env: dict[str, str], image: str) -> str:
    name = f"pbxsim-{secrets.token_hex(4)}"
    docker(
        docker_env, "run", "--detach", "--name", name, "--network", "none",
        "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--env", f"PBXWARE_SIM_API_KEY={SIM_KEY}",
        "--entrypoint", "/opt/pbxware-exporter/bin/pbxware-simulator", image,
        f"--listen=127.0.0.1:{SIM_PORT}", "--systems=eu1,us1", "--tenants=2",
        "--extensions-per-tenant=3", "--churn-interval=1",
    )  # fmt: skip
    return name


def exporter_config(tmp_path: Path) -> Path:
    config = {
        "defaults": {
            "interval": "2s",
            "timeout": "1s",
            "api_key": "${PBXWARE_API_KEY}",
            "cdr": {"enabled": True, "interval": "2s"},
        },
        "systems": [
            {"name": name, "url": f"http://127.0.0.1:{SIM_PORT}/{name}/"} for name in ("eu1", "us1")
        ],
    }
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config))
    # The container's user is not the file's owner.
    tmp_path.chmod(0o755)
    path.chmod(0o644)
    return path


def start_exporter(env: dict[str, str], image: str, sim: str, config: Path, *args: str) -> str:
    name = f"pbxexp-{secrets.token_hex(4)}"
    docker(
        env, "run", "--detach", "--name", name, "--network", f"container:{sim}",
        # As in statefulset.yaml: read-only root, no capabilities, no privilege gain.
        "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--health-interval", "1s", "--env", f"PBXWARE_API_KEY={SIM_KEY}",
        "--volume", f"{config}:{entrypoint_config_file()}:ro", image, *args,
    )  # fmt: skip
    return name


def pbxware_up(env: dict[str, str], container: str, port: int) -> dict[str, str]:
    status, body = fetch(env, container, f"http://127.0.0.1:{port}/metrics")
    assert status == 200, body
    return dict(re.findall(r'^pbxware_up\{system="([^"]+)"\} (\S+)$', body, re.M))


def test_image_serves_the_simulator_healthy_and_ready(
    docker_env, image, simulator_container, tmp_path
):
    name = start_exporter(docker_env, image, simulator_container, exporter_config(tmp_path))

    def health() -> str:
        state = docker(
            docker_env, "inspect", "--format", "{{.State.Status}} {{.State.Health.Status}}", name
        )
        assert not state.startswith("exited"), docker(docker_env, "logs", name)
        return state if state == "running healthy" else ""

    # The Dockerfile's own HEALTHCHECK, on the default port.
    wait_until(health, "the container's HEALTHCHECK to pass")
    wait_until(
        lambda: fetch(docker_env, name, f"http://127.0.0.1:{PORT}/-/ready")[0] == 200, "/-/ready"
    )
    both = {"eu1": "1.0", "us1": "1.0"}
    wait_until(lambda: pbxware_up(docker_env, name, PORT) == both, "pbxware_up 1 for both systems")
    _, body = fetch(docker_env, name, f"http://127.0.0.1:{PORT}/metrics")
    assert "pbxware_cdr_calls_total{" in body
    assert SIM_KEY not in docker(docker_env, "logs", name) + body


def test_image_shards_as_the_statefulset_runs_it(
    docker_env, image, simulator_container, k8s, tmp_path
):
    config = exporter_config(tmp_path)
    args = container(k8s)["args"]
    replicas = k8s["StatefulSet"]["spec"]["replicas"]
    seen: dict[str, int] = {}
    for ordinal in range(replicas):
        # Each replica on its own port: here they share one network namespace.
        port = PORT + 1 + ordinal
        pod_args = [
            a.replace("$(POD_INDEX)", str(ordinal)) if not a.startswith("--web.listen-address=")
            else f"--web.listen-address=:{port}"
            for a in args
        ]  # fmt: skip
        name = start_exporter(docker_env, image, simulator_container, config, *pod_args)
        wait_until(
            lambda n=name, p=port: fetch(docker_env, n, f"http://127.0.0.1:{p}/-/ready")[0] == 200,
            "/-/ready",
        )
        for system in pbxware_up(docker_env, name, port):
            assert system not in seen, f"{system} polled by shards {seen.get(system)} and {ordinal}"
            seen[system] = ordinal
    assert set(seen) == {"eu1", "us1"}, "every system is polled by exactly one shard"
