"""docker-compose.yml and its configs, checked offline (there is no Docker engine here).

The compose file is loaded with PyYAML (anchors and ``<<`` merges resolved as Compose does)
and cross-checked against the code: the services' modules, ports and settings names, the
topic CLI, the MongoDB databases, and the collector/Prometheus/Grafana wiring.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from shared.registry import SERVICES
from tests.deploy.conftest import REPO

DEPLOY = REPO / "deploy"
ONE_SHOT_CONDITION = "service_completed_successfully"
# Images without a shell or HTTP client; their health is watched from Prometheus instead.
HEALTHCHECK_EXEMPT = {"otel-collector", "jaeger"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(REPO / "docker-compose.yml")
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    svcs: dict[str, dict[str, Any]] = compose["services"]
    return svcs


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def interpolation_vars(text: str) -> dict[str, str]:
    """``${NAME}``, ``${NAME:-default}``, ``${NAME:?error}`` → {NAME: operator}."""
    return {m[0]: m[1] for m in re.findall(r"\$\{([A-Z0-9_]+)(:[-?])?[^}]*\}", text)}


def host_port(address: str) -> tuple[str, int]:
    parts = urlsplit(address if "//" in address else f"//{address}")
    assert parts.hostname and parts.port, address
    return parts.hostname, parts.port


def jiandu_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if "SERVICE" in env_of(s)}


def is_one_shot(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "no")) == "no"


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    """Schema from github.com/compose-spec/compose-spec (schema/compose-spec.json, commit
    170098ba, Apache-2.0), vendored so the check runs offline."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).parent / "compose-spec.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []
    broken = {**compose, "services": {**compose["services"], "x": {"image": "a", "helthcheck": {}}}}
    assert list(validator.iter_errors(broken))  # a misspelt key is refused


# -- the five services ------------------------------------------------------------------------


def test_the_five_services_run_from_the_one_image(services: dict[str, dict[str, Any]]) -> None:
    ours = jiandu_services(services)
    assert set(ours) == set(SERVICES)
    images = {s["image"] for s in ours.values()}
    assert len(images) == 1
    for name, svc in ours.items():
        assert env_of(svc)["SERVICE"] == name
        assert svc["build"]["dockerfile"] == "Dockerfile"
        assert (REPO / svc["build"]["context"] / "Dockerfile").exists()
        # the image's entrypoint runs `python -m services.$SERVICE`: the module must exist
        assert importlib.util.find_spec(f"services.{name}.__main__") is not None, name


def advertised(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    env = env_of(services["kafka"])
    return dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))


def test_every_service_points_at_the_compose_hosts(services: dict[str, dict[str, Any]]) -> None:
    clients = advertised(services)["SASL_PLAINTEXT"]
    for name, svc in jiandu_services(services).items():
        env = env_of(svc)
        assert env["JIANDU_KAFKA_BOOTSTRAP"] == clients == "kafka:9092", name
        assert env["JIANDU_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT", name

        uri = env["JIANDU_MONGO_URI"]
        # no credentials in the file: user and password file are added by the settings
        assert "@" not in uri and "${" not in uri, name
        mongo = urlsplit(uri)
        assert mongo.scheme == "mongodb"
        assert (mongo.hostname, mongo.port) == ("mongo1", 27017), name
        query = parse_qs(mongo.query)
        assert query["replicaSet"] == ["rs0"] and query["authSource"] == ["admin"], name
        assert "retryWrites=false" not in mongo.query  # that is only for SecantusDB

        assert host_port(env["JIANDU_OTLP_ENDPOINT"]) == ("otel-collector", 4318), name
        assert env["JIANDU_HTTP_HOST"] == "0.0.0.0", name
        for host in ("kafka", "mongo1", "otel-collector"):
            assert host in services, host


def test_ports_match_the_settings_and_the_image(
    services: dict[str, dict[str, Any]], service_facts: dict[str, dict[str, Any]]
) -> None:
    entrypoint = (DEPLOY / "docker" / "entrypoint.sh").read_text(encoding="utf-8")
    entry_ports = {k: int(v) for k, v in re.findall(r"^\s*(\w+)\) port=(\d+) ;;", entrypoint, re.M)}
    spec = importlib.util.spec_from_file_location(
        "healthcheck", DEPLOY / "docker" / "healthcheck.py"
    )
    assert spec and spec.loader
    healthcheck = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(healthcheck)
    for name, svc in jiandu_services(services).items():
        port = int(env_of(svc)["JIANDU_HTTP_PORT"])
        assert port == service_facts[name]["http_port"], name
        assert entry_ports[name] == port, name
        assert healthcheck.DEFAULT_PORTS[name] == port, name
    assert set(entry_ports) == set(SERVICES) == set(healthcheck.DEFAULT_PORTS)


def test_peers_name_every_service_at_its_compose_address(
    services: dict[str, dict[str, Any]],
) -> None:
    ours = jiandu_services(services)
    for name, svc in ours.items():
        peers = dict(p.split("=", 1) for p in env_of(svc)["JIANDU_PEERS"].split(","))
        assert set(peers) == set(SERVICES), name
        for peer, url in peers.items():
            assert host_port(url) == (peer, int(env_of(ours[peer])["JIANDU_HTTP_PORT"]))


def test_every_jiandu_variable_is_a_setting(
    services: dict[str, dict[str, Any]], service_facts: dict[str, dict[str, Any]]
) -> None:
    # JIANDU_PEERS is read by the gateway (health of its peers) and set by devtools.runner too.
    known = {"JIANDU_PEERS"} | {
        f"JIANDU_{field.upper()}" for f in service_facts.values() for field in f["settings_fields"]
    }
    image = services["gateway"]["image"]
    for name, svc in services.items():
        if svc.get("image") != image:
            continue  # e.g. mongo-init's JIANDU_MONGO_APP_* are read by its script
        for key in env_of(svc):
            if key.startswith("JIANDU_"):
                assert key in known, f"{name}: {key} is not a setting (typo?)"


def test_only_the_gateway_is_published_through_the_edge(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in jiandu_services(services):
        assert "ports" not in services[name], f"{name} publishes a port"
    gateway_port = env_of(services["gateway"])["JIANDU_HTTP_PORT"]
    assert [p.rsplit(":", 2)[-2:] for p in services["edge"]["ports"]] == [
        [gateway_port, gateway_port]
    ]
    edge_conf = (DEPLOY / "nginx" / "edge.conf").read_text(encoding="utf-8")
    upstreams = set(re.findall(r"http://([a-z]+):\d+", edge_conf))
    assert upstreams == {"gateway"}
    assert re.findall(r"listen (\d+);", edge_conf) == [gateway_port]
    assert "location = /metrics { return 404; }" in edge_conf  # internal only
    assert (
        "./deploy/nginx/edge.conf:/etc/nginx/conf.d/default.conf:ro" in services["edge"]["volumes"]
    )
    # everything else that publishes is an operators' tool on loopback
    for name, svc in services.items():
        if name == "edge":
            continue
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


# -- dependencies and health ------------------------------------------------------------------


def test_depends_on_targets_exist_and_conditions_make_sense(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, svc in services.items():
        for target, rule in (svc.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = rule["condition"]
            if condition == ONE_SHOT_CONDITION:
                assert is_one_shot(services[target]), f"{target} is not a one-shot job"
            elif condition == "service_healthy":
                assert "test" in services[target].get("healthcheck", {}), target
            else:
                assert condition == "service_started", condition

    # no cycles (compose would refuse to start)
    state: dict[str, int] = {}

    def visit(node: str) -> None:
        assert state.get(node) != 1, f"dependency cycle through {node}"
        if state.get(node) == 2:
            return
        state[node] = 1
        for dep in services[node].get("depends_on") or {}:
            visit(dep)
        state[node] = 2

    for node in services:
        visit(node)


def test_services_wait_for_topics_replica_set_and_collector(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, svc in jiandu_services(services).items():
        deps = svc["depends_on"]
        assert deps["kafka-topics"]["condition"] == ONE_SHOT_CONDITION, name
        assert deps["kafka-acls"]["condition"] == ONE_SHOT_CONDITION, name
        assert deps["mongo-init"]["condition"] == ONE_SHOT_CONDITION, name
        assert "otel-collector" in deps, name


def test_long_running_services_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if is_one_shot(svc) or name in HEALTHCHECK_EXEMPT:
            continue
        check = svc.get("healthcheck")
        assert check and not check.get("disable") and check.get("test"), name
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
    for name in jiandu_services(services):
        test = services[name]["healthcheck"]["test"]
        assert test[-2:] == ["/usr/local/lib/jiandu/healthcheck.py", "readyz"]
    # the exempt ones are watched from Prometheus
    prometheus = (DEPLOY / "prometheus.yml").read_text(encoding="utf-8")
    assert "otel-collector:8888" in prometheus
    dashboard = (DEPLOY / "grafana" / "dashboards" / "jiandu-overview.json").read_text(
        encoding="utf-8"
    )
    assert "otlp/jaeger" in dashboard


# -- Kafka, topics, MongoDB ----------------------------------------------------------------


def test_kafka_runs_in_kraft_mode(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    env = env_of(kafka)
    assert kafka["image"].startswith("apache/kafka:")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "zookeeper" not in json.dumps(kafka).lower()
    listeners = dict(
        (item.split("://")[0], item.split("://")[1]) for item in env["KAFKA_LISTENERS"].split(",")
    )
    voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split("@")[1]
    assert voter == listeners[env["KAFKA_CONTROLLER_LISTENER_NAMES"]] == "127.0.0.1:9093"
    assert advertised(services) == {
        "SASL_PLAINTEXT": "kafka:9092",  # the only listener other containers reach
        "ADMIN": "127.0.0.1:9094",  # loopback of the broker's own network namespace
    }
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # topics come from shared/topics.py
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"].split(":-")[-1].rstrip("}"))
    assert "kafka-data:/var/lib/kafka/data" in kafka["volumes"]


def test_topic_job_runs_the_cli_against_compose_kafka(
    services: dict[str, dict[str, Any]],
) -> None:
    job = services["kafka-topics"]
    assert job["command"] == ["python", "-m", "shared.cli", "topics"]
    assert job["image"] == services["gateway"]["image"]
    assert env_of(job)["JIANDU_KAFKA_BOOTSTRAP"] == "127.0.0.1:9094"
    assert job["network_mode"] == "service:kafka"  # the loopback admin listener
    assert job["depends_on"]["kafka"]["condition"] == "service_healthy"
    from shared.cli import app

    commands = {
        c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands
    }
    assert "topics" in commands


def test_mongo_is_a_replica_set_with_keyfile_auth(
    services: dict[str, dict[str, Any]], service_facts: dict[str, dict[str, Any]]
) -> None:
    mongo = services["mongo1"]
    command = mongo["command"]
    assert command[command.index("--replSet") + 1] == "rs0"
    keyfile = command[command.index("--keyFile") + 1]
    assert any(
        v.startswith("mongo-keys:") and keyfile.startswith(v.split(":")[1])
        for v in mongo["volumes"]
    )
    assert "mongo-keys:/keys" in services["mongo-keyfile"]["volumes"]
    assert env_of(mongo)["MONGO_INITDB_ROOT_PASSWORD_FILE"] == "/run/secrets/mongo_root_password"

    init = services["mongo-init"]
    assert init["depends_on"]["mongo1"]["condition"] == "service_healthy"
    script_name = init["entrypoint"][-1].rsplit("/", 1)[1]
    script = (DEPLOY / "mongo" / script_name).read_text(encoding="utf-8")
    assert "replSetInitiate" in script and "createUser" in script and "updateUser" in script
    host = env_of(init)["MONGO_HOST"]
    assert host == "mongo1:27017"
    # one user per service, readWrite on its own database only
    listed = env_of(init)["JIANDU_SERVICES"].split(",")
    assert {f"jiandu_{s}" for s in listed} == {f["database"] for f in service_facts.values()}
    assert "user = `jiandu_${service}`" in script
    assert '[{ role: "readWrite", db: `jiandu_${service}` }]' in script
    assert set(init["secrets"]) == {"mongo_root_password"} | {f"mongo_{s}" for s in listed}
    for name, svc in jiandu_services(services).items():
        env = env_of(svc)
        assert env["JIANDU_MONGO_USERNAME"] == f"jiandu_{name}"
        assert env["JIANDU_MONGO_PASSWORD_FILE"] == f"/run/secrets/mongo_{name}"
    keyfile_script = (DEPLOY / "mongo" / "make-keyfile.sh").read_text(encoding="utf-8")
    assert "chmod 400" in keyfile_script


def test_secrets_are_files_never_defaults(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    assert not re.search(r"PASSWORD[A-Z_]*:\s*\$\{", text)  # no password from .env
    assert not re.search(r"(PASSWORD|SECRET)[A-Z_]*:-", text)  # and no default one
    declared = compose["secrets"]
    assert all(d["file"] == f"./secrets/{n}" for n, d in declared.items())
    maker = (DEPLOY / "make-secrets.sh").read_text(encoding="utf-8")
    assert set(declared) <= set(re.findall(r"[a-z_]+", maker))
    assert "secrets/" in (REPO / ".gitignore").read_text(encoding="utf-8").split()
    for name, svc in services.items():
        for secret in svc.get("secrets", []):
            assert secret in declared, (name, secret)
        mounted = {f"/run/secrets/{s}" for s in svc.get("secrets", [])}
        for key, value in env_of(svc).items():
            if key.endswith("_FILE") and value.startswith("/run/secrets/"):
                assert value in mounted, (name, key)
    for name, svc in jiandu_services(services).items():
        assert set(svc["secrets"]) == {"jwt_secret", f"mongo_{name}", f"kafka_{name}"}
        assert env_of(svc)["JIANDU_JWT_SECRET_FILE"] == "/run/secrets/jwt_secret"
        assert "JIANDU_JWT_SECRET" not in env_of(svc)


def test_kafka_has_one_user_per_service_with_only_its_topics(
    services: dict[str, dict[str, Any]],
) -> None:
    from shared.topics import CONSUMES, acl_plan, kafka_acl_script

    kafka = env_of(services["kafka"])
    assert kafka["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert "StandardAuthorizer" in kafka["KAFKA_AUTHORIZER_CLASS_NAME"]
    script = (DEPLOY / "kafka" / "acls.sh").read_text(encoding="utf-8")
    assert script == kafka_acl_script(), "deploy/kafka/acls.sh is stale: jiandu kafka-acls"
    job = services["kafka-acls"]
    assert job["network_mode"] == "service:kafka"
    assert job["entrypoint"] == ["sh", "/scripts/acls.sh"]
    assert "./deploy/kafka:/scripts:ro" in job["volumes"]
    plan = acl_plan()
    for name, svc in jiandu_services(services).items():
        env = env_of(svc)
        assert env["JIANDU_KAFKA_USERNAME"] == name
        assert env["JIANDU_KAFKA_PASSWORD_FILE"] == f"/run/secrets/kafka_{name}"
        assert f"kafka_{name}" in job["secrets"]
        assert f"--entity-name {name} --add-config" in script
        granted = re.findall(
            rf"User:{name} --operation (Read|Write) --operation Describe --topic (\S+)", script
        )
        assert {t for op, t in granted if op == "Read"} == set(plan[name]["read"])
        assert {t for op, t in granted if op == "Write"} == set(plan[name]["write"])
        # a service reads only what it consumes (the gateway also the dead letters)
        consumed = {t.name for t in CONSUMES[name]}
        extra = {t for t in plan[name]["read"] if t not in consumed}
        assert all(t.endswith(".dlt") for t in extra) and (name == "gateway" or not extra)
    assert "hotline.complaint.events" not in plan["notify"]["write"]
    assert "casereview.case.events" not in plan["hotline"]["read"]


# -- observability ----------------------------------------------------------------------------


def test_collector_pipelines_are_wired() -> None:
    cfg = load_yaml(DEPLOY / "otel-collector.yaml")
    assert cfg["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    assert cfg["exporters"]["otlp/jaeger"]["endpoint"] == "jaeger:4317"
    pipelines = cfg["service"]["pipelines"]
    components = {
        "receivers": set(cfg["receivers"]) | set(cfg["connectors"]),
        "processors": set(cfg["processors"]),
        "exporters": set(cfg["exporters"]) | set(cfg["connectors"]),
    }
    for pipeline in pipelines.values():
        for kind, names in pipeline.items():
            assert set(names) <= components[kind], (kind, names)
    assert "spanmetrics" in pipelines["traces"]["exporters"]
    assert "spanmetrics" in pipelines["metrics"]["receivers"]
    assert "otlp/jaeger" in pipelines["traces"]["exporters"]
    assert set(cfg["service"]["extensions"]) <= set(cfg["extensions"])


def test_compose_mounts_existing_config_files(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name}: {source} missing"


def test_prometheus_scrapes_every_service_and_the_collector(
    services: dict[str, dict[str, Any]],
) -> None:
    cfg = load_yaml(DEPLOY / "prometheus.yml")
    jobs = {job["job_name"]: job for job in cfg["scrape_configs"]}
    scraped = {
        (name, sd["port"]) for sd in jobs["jiandu"]["dns_sd_configs"] for name in sd["names"]
    }
    expected = {
        (n, int(env_of(s)["JIANDU_HTTP_PORT"])) for n, s in jiandu_services(services).items()
    }
    assert scraped == expected
    assert jobs["jiandu"].get("metrics_path", "/metrics") == "/metrics"
    collector = load_yaml(DEPLOY / "otel-collector.yaml")
    spanmetrics_port = host_port(collector["exporters"]["prometheus"]["endpoint"])[1]
    targets = {t for sc in jobs["otel-collector"]["static_configs"] for t in sc["targets"]}
    assert f"otel-collector:{spanmetrics_port}" in targets
    for job in jobs.values():
        for sc in job.get("static_configs", []):
            for target in sc["targets"]:
                host = target.split(":")[0]
                assert host == "localhost" or host in services, target


def test_grafana_dashboard_queries_real_metrics(
    services: dict[str, dict[str, Any]], service_facts: dict[str, dict[str, Any]]
) -> None:
    sources = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yaml")
    uids = {d["uid"]: d for d in sources["datasources"]}
    for source in uids.values():
        assert host_port(source["url"])[0] in services
    providers = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "dashboards.yaml")
    mount = providers["providers"][0]["options"]["path"]
    assert f"./deploy/grafana/dashboards:{mount}:ro" in services["grafana"]["volumes"]

    dashboard = json.loads(
        (DEPLOY / "grafana" / "dashboards" / "jiandu-overview.json").read_text(encoding="utf-8")
    )
    ours = {m for f in service_facts.values() for m in f["metrics"]}
    panel_ids = [p["id"] for p in dashboard["panels"]]
    assert len(panel_ids) == len(set(panel_ids)) >= 6
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] in uids
        for target in panel["targets"]:
            names = set(re.findall(r"\b([a-z_:][a-z0-9_:]*)\s*[{\[]", target["expr"]))
            for name in names:
                if name.startswith(("faststream_", "jiandu_")):
                    assert name in ours, f"{panel['title']}: {name} is exported by no service"
    exprs = json.dumps(dashboard)
    assert "kafka_consumergroup_lag" in exprs and "kafka-exporter" in services


# -- the image ---------------------------------------------------------------------------------


def test_dockerfile_builds_a_non_root_image_with_a_healthcheck() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    froms = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", dockerfile, re.M)
    assert base and base.group(1).startswith("python:3.11-slim")
    assert all(f.startswith("${PYTHON_IMAGE}") for f in froms)
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert re.search(r"pip install (--no-deps )?\.\s", dockerfile)
    health = re.search(r"^HEALTHCHECK .*\n?.*CMD (\[.*\])", dockerfile, re.M)
    assert health and "healthz" in health.group(1)
    # every file the Dockerfile copies from the context is let through .dockerignore
    allowed = [
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    ]
    for source in re.findall(r"^COPY (?:--chmod=\S+ )?(?!--from)(\S+)", dockerfile, re.M):
        assert (REPO / source).exists(), source
        assert any(source == a or source.startswith(a + "/") for a in allowed), source
    entrypoint = (DEPLOY / "docker" / "entrypoint.sh").read_text(encoding="utf-8")
    assert 'exec python -m "services.${SERVICE}"' in entrypoint
