"""deploy/k8s, validated offline: rendered with a small kustomize subset (kustomize_lite),
built-in kinds checked against the Kubernetes JSON schemas bundled in ``kubernetes-validate``,
KEDA and Strimzi resources checked field by field, everything cross-checked with the code.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.registry import SERVICES
from shared.topics import ALL_TOPICS, topic_plan
from tests.deploy.conftest import REPO
from tests.deploy.kustomize_lite import (
    KustomizeError,
    build,
    is_builtin,
    json_patch,
    strategic_merge,
)

K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("single-node", "city")
TOPIC_PARTITIONS = {t.name: t.partitions for t in ALL_TOPICS}
DNS_1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
Resource = dict[str, Any]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Resource]]:
    out = {name: build(K8S / "overlays" / name) for name in OVERLAYS}
    out["city-topics"] = build(K8S / "overlays" / "city" / "kafka-topics")
    return out


@pytest.fixture(scope="module")
def gen_topics() -> ModuleType:
    name = "jiandu_deploy_gen_topics"
    spec = importlib.util.spec_from_file_location(name, K8S / "gen_topics.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def of_kind(resources: list[Resource], kind: str) -> dict[str, Resource]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def config(resources: list[Resource]) -> dict[str, str]:
    data: dict[str, str] = of_kind(resources, "ConfigMap")["jiandu-config"]["data"]
    return data


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# -- schema validation ------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_builtin_resources_match_the_kubernetes_schemas(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    kv = pytest.importorskip("kubernetes_validate")
    from kubernetes_validate.utils import latest_version

    builtins = [r for r in rendered[overlay] if is_builtin(r)]
    assert {r["kind"] for r in builtins} >= {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ConfigMap",
        "Namespace",
        "Ingress",
        "NetworkPolicy",
    }
    for version in ("1.30.0", latest_version()):
        for resource in builtins:
            kv.validate(resource, version, strict=True)  # raises on any unknown/invalid field

    # and the validation is not vacuous: a misspelt probe field is refused
    broken = copy.deepcopy(of_kind(builtins, "Deployment")["gateway"])
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"path": "/readyz"}
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, "1.30.0", strict=True)


def test_nothing_but_known_kinds_and_no_hpa(rendered: dict[str, list[Resource]]) -> None:
    for name, resources in rendered.items():
        kinds = {r["kind"] for r in resources}
        assert "HorizontalPodAutoscaler" not in kinds, name  # KEDA owns scaling
        assert "StatefulSet" not in kinds, name  # Kafka and MongoDB are existing clusters
        custom = {(r["apiVersion"], r["kind"]) for r in resources if not is_builtin(r)}
        assert custom <= {
            ("keda.sh/v1alpha1", "ScaledObject"),
            ("kafka.strimzi.io/v1beta2", "KafkaTopic"),
            ("kafka.strimzi.io/v1beta2", "KafkaUser"),
        }, custom
        assert "Secret" not in kinds, name  # secrets are created out of band, never in git


# -- the five services ------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_deployment_is_complete(
    rendered: dict[str, list[Resource]], overlay: str, service_facts: dict[str, dict[str, Any]]
) -> None:
    resources = rendered[overlay]
    deployments = of_kind(resources, "Deployment")
    services = of_kind(resources, "Service")
    pdbs = of_kind(resources, "PodDisruptionBudget")
    assert set(deployments) == set(SERVICES)
    namespaces = {r["metadata"]["name"] for r in resources if r["kind"] == "Namespace"}
    for name, dep in deployments.items():
        assert dep["metadata"]["namespace"] in namespaces
        assert "replicas" not in dep["spec"], f"{name}: KEDA owns the replica count"
        pod = dep["spec"]["template"]
        labels = pod["metadata"]["labels"]
        assert selects(dep["spec"]["selector"]["matchLabels"], labels)
        (container,) = pod["spec"]["containers"]
        assert container["command"] == ["python", "-m", f"services.{name}"]
        assert importlib.util.find_spec(f"services.{name}.__main__") is not None
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["http"] == service_facts[name]["http_port"]
        env = {e["name"]: e for e in container["env"]}
        assert env["JIANDU_HTTP_PORT"]["value"] == str(ports["http"])
        assert env["JIANDU_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"

        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}, (name, kind)

        refs = {(k, v["name"]) for src in container["envFrom"] for k, v in src.items()}
        assert refs == {("configMapRef", "jiandu-config")}
        # its own MongoDB and Kafka users; every secret a file from a Secret, none a value
        assert env["JIANDU_MONGO_USERNAME"]["value"] == f"jiandu_{name}"
        assert env["JIANDU_KAFKA_USERNAME"]["value"] == name
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        files = {
            f"{mounts[v]}/{item['path']}": (src["secret"]["name"], item["key"])
            for v in mounts
            for src in volumes[v].get("projected", {}).get("sources", [])
            for item in src["secret"]["items"]
        }
        assert files == {
            "/run/secrets/jiandu/mongo-password": (f"jiandu-{name}", "mongo-password"),
            "/run/secrets/jiandu/kafka-password": (f"jiandu-{name}", "kafka-password"),
            "/run/secrets/jiandu/jwt-secret": ("jiandu-jwt", "jwt-secret"),
        }
        for key in ("MONGO_PASSWORD", "KAFKA_PASSWORD", "JWT_SECRET"):
            assert env[f"JIANDU_{key}_FILE"]["value"] in files, (name, key)
            assert f"JIANDU_{key}" not in env, (name, key)

        # pod security "restricted" (the namespaces enforce it)
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert pod["spec"]["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]

        svc = services[name]
        assert selects(svc["spec"]["selector"], labels)
        (svc_port,) = svc["spec"]["ports"]
        assert svc_port["port"] == ports["http"] and svc_port["targetPort"] == "http"

        pdb = pdbs[name]
        assert selects(pdb["spec"]["selector"]["matchLabels"], labels)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configuration_names_real_settings_and_reachable_peers(
    rendered: dict[str, list[Resource]], overlay: str, service_facts: dict[str, dict[str, Any]]
) -> None:
    resources = rendered[overlay]
    data = config(resources)
    known = {"JIANDU_PEERS"} | {
        f"JIANDU_{field.upper()}" for f in service_facts.values() for field in f["settings_fields"]
    }
    assert set(data) <= known, set(data) - known
    assert data["JIANDU_HTTP_HOST"] == "0.0.0.0"
    peers = dict(p.split("=", 1) for p in data["JIANDU_PEERS"].split(","))
    services = of_kind(resources, "Service")
    assert set(peers) == set(SERVICES)
    for name, url in peers.items():
        parts = urlsplit(url)
        assert parts.hostname == name and parts.port == services[name]["spec"]["ports"][0]["port"]
    for image in {
        c["image"]
        for r in resources
        if r["kind"] in ("Deployment", "Job")
        for c in r["spec"]["template"]["spec"]["containers"]
    }:
        assert ":" in image and not image.endswith(":latest"), image  # a pinned tag


def test_mongo_uri_names_existing_clusters_without_credentials(
    rendered: dict[str, list[Resource]],
) -> None:
    uris = {name: config(rendered[name])["JIANDU_MONGO_URI"] for name in OVERLAYS}
    for uri in uris.values():
        parts = urlsplit(uri)
        assert parts.username is None and parts.password is None  # users come per service
        assert parse_qs(parts.query)["authSource"] == ["admin"]
    single = urlsplit(uris["single-node"])
    assert parse_qs(single.query)["replicaSet"] == ["rs0"]  # transactions need a replica set
    city = urlsplit(uris["city"])
    assert city.hostname and city.hostname.endswith("-mongos.mongodb.svc.cluster.local")
    assert "replicaSet" not in parse_qs(city.query)  # a mongos router, not a replica set


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gateway_is_published(rendered: dict[str, list[Resource]], overlay: str) -> None:
    resources = rendered[overlay]
    for name, svc in of_kind(resources, "Service").items():
        assert svc["spec"].get("type", "ClusterIP") == "ClusterIP", name
    backends = {
        path["backend"]["service"]["name"]
        for ing in of_kind(resources, "Ingress").values()
        for rule in ing["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"gateway"}
    (policy,) = of_kind(resources, "NetworkPolicy").values()
    (expr,) = policy["spec"]["podSelector"]["matchExpressions"]
    assert expr["key"] == "app.kubernetes.io/name" and expr["operator"] == "In"
    assert set(expr["values"]) == set(SERVICES) - {"gateway"}
    (rule,) = policy["spec"]["ingress"]
    sources = [next(iter(f)) for f in rule["from"]]
    assert sources == ["podSelector", "namespaceSelector"]  # Jiandu pods, Prometheus
    assert rule["from"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/part-of": "jiandu"}


def test_city_kafka_users_have_only_their_topics(rendered: dict[str, list[Resource]]) -> None:
    from shared.topics import acl_plan

    users = of_kind(rendered["city-topics"], "KafkaUser")
    plan = acl_plan()
    assert set(users) == set(SERVICES) == set(plan)
    for name, user in users.items():
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        acls = user["spec"]["authorization"]["acls"]
        reads = {a["resource"]["name"] for a in acls if "Read" in a["operations"]}
        writes = {a["resource"]["name"] for a in acls if "Write" in a["operations"]}
        groups = {a["resource"]["name"] for a in acls if a["resource"]["type"] == "group"}
        assert reads - groups == set(plan[name]["read"]) and writes == set(plan[name]["write"])
        assert groups == {name}


def test_single_node_creates_topics_with_the_cli(rendered: dict[str, list[Resource]]) -> None:
    job = of_kind(rendered["single-node"], "Job")["jiandu-topics"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "shared.cli", "topics"]
    assert container["envFrom"] == [{"configMapRef": {"name": "jiandu-config"}}]
    images = {
        c["image"]
        for d in of_kind(rendered["single-node"], "Deployment").values()
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {container["image"]}
    assert "Job" not in {r["kind"] for r in rendered["city"]}  # Strimzi creates them there


# -- KEDA -------------------------------------------------------------------------------------


def partitions_in(rendered: dict[str, list[Resource]], overlay: str) -> dict[str, int]:
    if overlay == "city":
        return {
            t["spec"]["topicName"]: t["spec"]["partitions"]
            for t in of_kind(rendered["city-topics"], "KafkaTopic").values()
        }
    return topic_plan()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaled_objects_scale_each_service_on_its_consumer_lag(
    rendered: dict[str, list[Resource]], overlay: str, service_facts: dict[str, dict[str, Any]]
) -> None:
    resources = rendered[overlay]
    scaled = of_kind(resources, "ScaledObject")
    deployments = of_kind(resources, "Deployment")
    bootstrap = config(resources)["JIANDU_KAFKA_BOOTSTRAP"]
    partitions = partitions_in(rendered, overlay)
    assert set(scaled) == set(deployments)
    for name, so in scaled.items():
        spec = so["spec"]
        assert so["metadata"]["namespace"] == deployments[name]["metadata"]["namespace"]
        assert spec["scaleTargetRef"]["name"] == name
        assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
        low, high = spec["minReplicaCount"], spec["maxReplicaCount"]
        assert isinstance(low, int) and isinstance(high, int) and 1 <= low <= high
        assert spec["triggers"], name
        topics = set()
        for trigger in spec["triggers"]:
            meta = trigger["metadata"]
            assert trigger["type"] == "kafka"
            assert meta["bootstrapServers"] == bootstrap  # the same cluster the pods use
            assert meta["consumerGroup"] == service_facts[name]["group_id"] == name
            assert meta["topic"] in TOPIC_PARTITIONS, meta["topic"]
            assert all(isinstance(v, str) for v in meta.values())  # KEDA metadata is strings
            assert int(meta["lagThreshold"]) > 0
            assert meta["offsetResetPolicy"] == "earliest"  # as the consumers (shared.service)
            topics.add(meta["topic"])
        # every topic the code consumes is watched (the code may not consume them all yet)
        assert set(service_facts[name]["consumes"]) <= topics, name
        # more replicas than partitions would sit idle (KEDA caps there anyway)
        assert high <= max(partitions[t] for t in topics), name


def test_scaled_objects_and_topics_are_generated_and_current(gen_topics: ModuleType) -> None:
    for rel, text in gen_topics.render_all().items():
        assert (K8S / rel).read_text(encoding="utf-8") == text, (
            f"{rel} is stale: run python deploy/k8s/gen_topics.py"
        )


def test_city_runs_more_replicas_than_single_node(rendered: dict[str, list[Resource]]) -> None:
    single = of_kind(rendered["single-node"], "ScaledObject")
    city = of_kind(rendered["city"], "ScaledObject")
    for name in SERVICES:
        assert city[name]["spec"]["minReplicaCount"] >= 2
        assert city[name]["spec"]["minReplicaCount"] > single[name]["spec"]["minReplicaCount"]
        assert city[name]["spec"]["maxReplicaCount"] > single[name]["spec"]["maxReplicaCount"]
    spread = of_kind(rendered["city"], "Deployment")["hotline"]["spec"]["template"]["spec"]
    assert {c["topologyKey"] for c in spread["topologySpreadConstraints"]} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }


# -- Strimzi ----------------------------------------------------------------------------------


def test_city_kafka_topics_cover_every_topic_with_more_partitions(
    rendered: dict[str, list[Resource]],
) -> None:
    topics = list(of_kind(rendered["city-topics"], "KafkaTopic").values())
    by_name = {t["spec"]["topicName"]: t for t in topics}
    assert len(by_name) == len(topics)
    assert set(by_name) == set(topic_plan())  # every topic and every .dlt twin
    clusters = {t["metadata"]["labels"]["strimzi.io/cluster"] for t in topics}
    assert len(clusters) == 1
    bootstrap = config(rendered["city"])["JIANDU_KAFKA_BOOTSTRAP"]
    (cluster,) = clusters
    assert bootstrap.startswith(f"{cluster}-kafka-bootstrap.")  # Strimzi's bootstrap service
    namespace = bootstrap.split(".")[1]
    for topic in topics:
        meta, spec = topic["metadata"], topic["spec"]
        assert topic["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert meta["namespace"] == namespace  # where the Topic Operator watches
        assert DNS_1123_SUBDOMAIN.fullmatch(meta["name"]) and len(meta["name"]) <= 253
        assert isinstance(spec["partitions"], int) and spec["partitions"] >= 1
        assert spec["replicas"] >= 3
        assert 1 <= spec["config"]["min.insync.replicas"] < spec["replicas"]
        assert spec["config"]["retention.ms"] > 0
    for t in ALL_TOPICS:
        city = by_name[t.name]["spec"]["partitions"]
        assert city >= t.partitions
        if t.dead_letter:  # the work topics grow with the city
            assert city > t.partitions, t.name


# -- the renderer itself ----------------------------------------------------------------------


def test_strategic_merge_follows_kubernetes_merge_keys() -> None:
    base = {
        "spec": {
            "containers": [
                {"name": "a", "image": "x", "env": [{"name": "K", "value": "1"}]},
                {"name": "b", "image": "y"},
            ],
            "drop": 1,
        }
    }
    patch = {
        "spec": {"containers": [{"name": "a", "env": [{"name": "L", "value": "2"}]}], "drop": None}
    }
    merged = strategic_merge(base, patch, builtin=True)
    a, b = merged["spec"]["containers"]
    assert a["image"] == "x" and [e["name"] for e in a["env"]] == ["K", "L"]
    assert b == {"name": "b", "image": "y"} and "drop" not in merged["spec"]
    # custom resources: lists are replaced, as kustomize does without a schema
    crd = strategic_merge(
        {"triggers": [{"name": "a"}, {"name": "b"}]}, {"triggers": [{"name": "c"}]}, builtin=False
    )
    assert crd == {"triggers": [{"name": "c"}]}
    assert base["spec"]["containers"][0]["env"] == [{"name": "K", "value": "1"}]  # no mutation


def test_json_patch_and_strictness(tmp_path: Path) -> None:
    doc = {"spec": {"items": [1, 2]}}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/spec/items/-", "value": 3},
            {"op": "replace", "path": "/spec/items/0", "value": 0},
            {"op": "add", "path": "/spec/new", "value": {"a": 1}},
        ],
    )
    assert out == {"spec": {"items": [0, 2, 3], "new": {"a": 1}}}
    with pytest.raises(KustomizeError):
        json_patch(doc, [{"op": "replace", "path": "/spec/missing", "value": 1}])

    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    (tmp_path / "kustomization.yaml").write_text("resources: [cm.yaml]\ncommonLabels: {a: b}\n")
    with pytest.raises(KustomizeError, match="unsupported"):
        build(tmp_path)
    (tmp_path / "p.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: zz}\n")
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [cm.yaml]\npatches: [{path: p.yaml}]\n"
    )
    with pytest.raises(KustomizeError, match="matches no resource"):
        build(tmp_path)
