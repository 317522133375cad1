"""The deployment files, checked offline by real validators.

- ``kustomize build`` (the real binary, see tests/deploy_tools.py) of the k8s base and of
  each overlay; every manifest it produces is validated against the Kubernetes schemas
  bundled by kubernetes-validate (strict: unknown fields fail), Strimzi resources against
  Strimzi's own CRD schemas, made strict the way the API server's strict field validation
  treats them.
- docker-compose.yml against the Compose specification's JSON schema (vendored by
  check-jsonschema); the Dockerfile through hadolint.
- What the validators cannot know: every FIML_* variable is a setting, topics agree with
  the settings everywhere, probes and ports line up, the services are real ``fiml`` commands.
"""

from __future__ import annotations

import ast
import base64
import copy
import dataclasses
import functools
import importlib.resources
import json
import re
import subprocess
import sysconfig
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import typer
import yaml

from fiml.cli import app as cli_app
from gateway.dashboard import CHART_LIBRARY
from runtime.registry import APICURIO_VERSION, CCOMPAT_PATH
from runtime.settings import Settings, TopicSpec
from runtime.settings_checks import ENV_PREFIX
from schemas.news import NewsItem
from schemas.topics import RECORD_TOPICS, TopicRole
from tests.deploy_tools import kustomize, strimzi_crds

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
COMPOSE = ROOT / "docker-compose.yml"
BUILDS = ("base", "overlays/dev", "overlays/prod")
#: Strimzi 0.51's oldest supported Kubernetes, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30", "1.37")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
FIML_VARIABLE = re.compile(r"\bFIML_[A-Z0-9_]+\b")
INTERPOLATION = re.compile(r"^\$\{[A-Z0-9_]+:-(.*)\}$")
SERVICE_PORT_SETTING = {
    "gateway": "gateway_port",
    "ingest": "health_port",
    "arbitration": "health_port",
    "webhooks": "health_port",
    "alerts": "health_port",
}


# ---------------------------------------------------------------- validators


@functools.cache
def build(path: str) -> tuple[dict, ...]:
    """The manifests ``kustomize build k8s/<path>`` produces."""
    result = subprocess.run(
        [str(kustomize()), "build", str(K8S / path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def strict(schema: object) -> object:
    """A copy of a CRD schema in which objects accept only the fields they declare."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if (
        schema.get("type") == "object"
        and "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_validators() -> dict[tuple[str, str], jsonschema.Draft202012Validator]:
    """A validator per (apiVersion, kind) of Strimzi's custom resources."""
    validators = {}
    for kind, crd in strimzi_crds().items():
        for version in crd["spec"]["versions"]:
            api_version = f"{crd['spec']['group']}/{version['name']}"
            schema = strict(version["schema"]["openAPIV3Schema"])
            validators[(api_version, kind)] = jsonschema.Draft202012Validator(schema)
    return validators


def manifest_errors(doc: dict, kubernetes_version: str) -> list[str]:
    """Why ``doc`` is not a valid manifest; empty if it is."""
    name = doc["metadata"]["name"]
    errors = [] if DNS_SUBDOMAIN.match(name) and len(name) <= 253 else [f"bad name {name!r}"]
    if doc["apiVersion"].startswith("kafka.strimzi.io/"):
        validator = crd_validators().get((doc["apiVersion"], doc["kind"]))
        if validator is None:
            return [*errors, f"no Strimzi CRD for {doc['apiVersion']} {doc['kind']}"]
        return errors + [
            f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)
        ]
    try:
        kubernetes_validate.validate(doc, kubernetes_version, strict=True)
    except kubernetes_validate.ValidationError as error:
        errors.append(f"{'.'.join(map(str, error.path))}: {error.message}")
    except kubernetes_validate.SchemaNotFoundError as error:
        errors.append(error.message)
    return errors


@functools.cache
def compose_validator() -> jsonschema.Draft202012Validator:
    """The Compose specification's schema, as vendored by check-jsonschema."""
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "compose-spec.json").read_text())
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


# ---------------------------------------------------------------- helpers


def by_kind(docs: tuple[dict, ...], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def one(docs: tuple[dict, ...], kind: str) -> dict:
    [doc] = by_kind(docs, kind).values()
    return doc


def cluster_env(docs: tuple[dict, ...]) -> dict[str, str]:
    """The FIML_* variables a pod of this build sees: the ConfigMap and the Secret."""
    env = dict(one(docs, "ConfigMap")["data"])
    for secret in by_kind(docs, "Secret").values():
        env.update(
            {
                key: base64.b64decode(value).decode()
                for key, value in (secret.get("data") or {}).items()
            }
        )
    return env


def deployment(docs: tuple[dict, ...], component: str) -> dict:
    return by_kind(docs, "Deployment")[f"fiml-{component}"]


def container(docs: tuple[dict, ...], component: str) -> dict:
    [only] = deployment(docs, component)["spec"]["template"]["spec"]["containers"]
    return only


def compose_env(service: dict) -> dict[str, str]:
    """A compose service's environment with ``${VAR:-default}`` taken at its default."""
    env = {}
    for key, value in (service.get("environment") or {}).items():
        match = INTERPOLATION.match(str(value))
        env[key] = match.group(1) if match else str(value)
    return env


def fiml_commands() -> set[tuple[str, ...]]:
    """Every command line of the ``fiml`` CLI, as argument tuples."""
    found = set()

    def walk(command: object, prefix: tuple[str, ...]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            found.add((*prefix, name))
            walk(sub, (*prefix, name))

    walk(typer.main.get_command(cli_app), ())
    return found


def topics_of(docs: tuple[dict, ...]) -> dict[str, TopicSpec]:
    """The KafkaTopic resources as the TopicSpecs they stand for."""
    specs = {}
    for name, topic in by_kind(docs, "KafkaTopic").items():
        config = topic["spec"]["config"]
        compacted = config["cleanup.policy"] == "compact"
        retention = None if compacted else int(config["retention.ms"])
        specs[topic["spec"].get("topicName", name)] = TopicSpec(
            topic["spec"].get("topicName", name), topic["spec"]["partitions"], retention, compacted
        )
    return specs


def known_variables() -> set[str]:
    return {ENV_PREFIX + field.name.upper() for field in dataclasses.fields(Settings)}


# ---------------------------------------------------------------- Kubernetes


@pytest.mark.parametrize("path", BUILDS)
def test_every_manifest_of_every_build_is_valid(path):
    docs = build(path)
    kinds = {doc["kind"] for doc in docs}
    assert {
        "Kafka",
        "KafkaNodePool",
        "KafkaTopic",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "Secret",
    } <= kinds
    for version in KUBERNETES_VERSIONS:
        problems = {
            f"{doc['kind']}/{doc['metadata']['name']}": errors
            for doc in docs
            if (errors := manifest_errors(doc, version))
        }
        assert problems == {}, f"Kubernetes {version}"


def test_the_validators_reject_what_the_cluster_would_reject():
    docs = build("overlays/prod")
    broken_deployment = copy.deepcopy(deployment(docs, "gateway"))
    broken_deployment["spec"]["replica"] = 2
    broken_probe = copy.deepcopy(deployment(docs, "ingest"))
    broken_probe["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"][
        "port"
    ] = [8081]
    topic = by_kind(docs, "KafkaTopic")["fiml.quotes"]
    wrong_type = copy.deepcopy(topic)
    wrong_type["spec"]["partitions"] = "six"
    unknown_field = copy.deepcopy(topic)
    unknown_field["spec"]["partition"] = 6
    no_listeners = copy.deepcopy(one(docs, "Kafka"))
    del no_listeners["spec"]["kafka"]["listeners"]
    bad_role = copy.deepcopy(one(docs, "KafkaNodePool"))
    bad_role["spec"]["roles"] = ["zookeeper"]
    for doc in (broken_deployment, broken_probe, wrong_type, unknown_field, no_listeners, bad_role):
        assert manifest_errors(doc, KUBERNETES_VERSIONS[-1]), doc["kind"]
    assert manifest_errors({**topic, "apiVersion": "kafka.strimzi.io/v2"}, "1.37")
    bad_compose = compose()
    bad_compose["services"]["gateway"]["healthcheck"]["tset"] = ["CMD", "true"]
    assert list(compose_validator().iter_errors(bad_compose))


@pytest.mark.parametrize("path", BUILDS)
def test_kafka_is_kraft_through_strimzi_and_the_services_find_it(path):
    docs = build(path)
    kafka, pool = one(docs, "Kafka"), one(docs, "KafkaNodePool")
    cluster = kafka["metadata"]["name"]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == cluster
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}
    assert kafka["spec"]["kafka"]["version"] == Settings().kafka_version
    env = cluster_env(docs)
    [listener] = [
        listener
        for listener in kafka["spec"]["kafka"]["listeners"]
        if env["FIML_KAFKA_BOOTSTRAP"] == f"{cluster}-kafka-bootstrap:{listener['port']}"
    ]
    assert listener["type"] == "internal"
    settings = Settings.from_env(env)
    if settings.kafka_security_protocol == "SASL_SSL":  # prod: TLS, SCRAM users, ACLs
        assert listener["tls"] and listener["authentication"]["type"] == "scram-sha-512"
        assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
        assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
        assert "userOperator" in kafka["spec"]["entityOperator"]
    else:
        assert settings.kafka_security_protocol == "PLAINTEXT" and not listener["tls"]
    config = kafka["spec"]["kafka"]["config"]
    brokers = pool["spec"]["replicas"]
    replication = int(env["FIML_REPLICATION_FACTOR"])
    assert config["auto.create.topics.enable"] is False
    assert config["default.replication.factor"] == replication <= brokers
    assert config["offsets.topic.replication.factor"] <= brokers
    assert config["min.insync.replicas"] <= replication
    for topic in by_kind(docs, "KafkaTopic").values():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == cluster
        assert topic["spec"]["replicas"] == replication


@pytest.mark.parametrize("path", BUILDS)
def test_the_services_have_probes_resources_and_a_graceful_stop(path):
    docs = build(path)
    settings = Settings.from_env(cluster_env(docs))
    generated = set(by_kind(docs, "ConfigMap")) | set(by_kind(docs, "Secret"))
    commands = fiml_commands()
    for component, port_setting in SERVICE_PORT_SETTING.items():
        spec = deployment(docs, component)["spec"]["template"]["spec"]
        box = container(docs, component)
        assert tuple(box["args"]) in commands
        for source in box["envFrom"]:
            reference = source.get("configMapRef") or source.get("secretRef")
            assert reference["name"] in generated
        ports = {port["name"]: port["containerPort"] for port in box["ports"]}
        for probe, endpoint in (
            ("startupProbe", "/healthz"),
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
        ):
            get = box[probe]["httpGet"]
            assert get["path"] == endpoint
            assert ports[get["port"]] == getattr(settings, port_setting)
        for bound in ("requests", "limits"):
            assert set(box["resources"][bound]) >= {"cpu", "memory"}
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert box["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {mount["mountPath"] for mount in box["volumeMounts"]}
        assert {"/tmp", "/var/lib/fiml"} <= mounts
    assert settings.health_host == settings.gateway_host == "0.0.0.0"

    gateway = deployment(docs, "gateway")
    pod = gateway["spec"]["template"]["spec"]
    [_, pause] = container(docs, "gateway")["lifecycle"]["preStop"]["exec"]["command"]
    assert int(pause) >= 10 and pod["terminationGracePeriodSeconds"] >= int(pause) + 30
    assert "replicas" not in gateway["spec"]
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "fiml-gateway",
    }
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    service = by_kind(docs, "Service")["fiml-gateway"]
    pod_labels = gateway["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    [service_port] = service["spec"]["ports"]
    assert service_port["port"] == settings.gateway_port and service_port["targetPort"] == "http"
    for budget in by_kind(docs, "PodDisruptionBudget").values():
        target = deployment(docs, budget["metadata"]["name"].removeprefix("fiml-"))
        selector = budget["spec"]["selector"]["matchLabels"]
        assert selector.items() <= target["spec"]["template"]["metadata"]["labels"].items()

    for worker in ("arbitration", "alerts"):  # a Faust consumer group each
        assert 1 <= deployment(docs, worker)["spec"]["replicas"] <= settings.partitions
    ingest = deployment(docs, "ingest")["spec"]
    assert ingest["replicas"] == 1 and ingest["strategy"] == {"type": "Recreate"}
    secret_keys = {key for secret in by_kind(docs, "Secret").values() for key in secret["data"]}
    assert all(value == "" for key, value in cluster_env(docs).items() if key in secret_keys)


@pytest.mark.parametrize("path", BUILDS)
def test_keys_come_from_secrets_and_each_component_has_a_network_policy(path):
    """API keys are never in the ConfigMap; each component's pods are fenced by a policy
    admitting only its own port, and Kafka's listener admits only FIML's pods."""
    docs = build(path)
    config = one(docs, "ConfigMap")["data"]
    assert not {"FIML_API_KEYS", "FIML_ALPHAVANTAGE_API_KEY", "FIML_FMP_API_KEY"} & set(config)
    secrets = by_kind(docs, "Secret")
    [gateway_keys] = [name for name in secrets if "FIML_API_KEYS" in secrets[name]["data"]]
    sources = [
        ref.get("secretRef", {}).get("name") for ref in container(docs, "gateway")["envFrom"]
    ]
    assert gateway_keys in sources
    assert "FIML_ALERT_WEBHOOK_SECRET" not in config
    [signing] = [name for name in secrets if "FIML_ALERT_WEBHOOK_SECRET" in secrets[name]["data"]]
    for component in ("gateway", "webhooks"):
        envs = container(docs, component)["envFrom"]
        assert signing in [ref.get("secretRef", {}).get("name") for ref in envs]
    policies = by_kind(docs, "NetworkPolicy")
    [outside] = [
        rule
        for rule in policies["fiml-webhooks"]["spec"]["egress"]
        for peer in rule["to"]
        if "ipBlock" in peer
    ]
    assert [port["port"] for port in outside["ports"]] == [443]
    [block] = [peer["ipBlock"] for peer in outside["to"]]
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"} <= set(block["except"])
    settings = Settings.from_env(cluster_env(docs))
    [registry_port] = [
        port["containerPort"] for port in container(docs, "schema-registry")["ports"]
    ]
    for component, port_setting in SERVICE_PORT_SETTING.items():
        labels = deployment(docs, component)["spec"]["template"]["metadata"]["labels"]
        [policy] = [
            p["spec"]
            for p in policies.values()
            if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
            and p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
            == component
        ]
        assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
        [ingress] = policy["ingress"]
        assert [port["port"] for port in ingress["ports"]] == [getattr(settings, port_setting)]
        reachable = {
            (peer["podSelector"]["matchLabels"].get("app.kubernetes.io/component"), port["port"])
            for rule in policy["egress"]
            for peer in rule.get("to", [])
            if "podSelector" in peer
            for port in rule["ports"]
        }
        assert ("schema-registry", registry_port) in reachable
    [listener] = one(docs, "Kafka")["spec"]["kafka"]["listeners"]
    [peer] = listener["networkPolicyPeers"]
    pod_labels = deployment(docs, "gateway")["spec"]["template"]["metadata"]["labels"]
    assert peer["podSelector"]["matchLabels"].items() <= pod_labels.items()


@pytest.mark.parametrize("path", BUILDS)
def test_prometheus_scrapes_metrics_of_every_service(path):
    """Each pod is annotated for Prometheus with the port that serves its /metrics: the one
    of its health probes (ingest and arbitration serve /metrics beside /healthz)."""
    docs = build(path)
    settings = Settings.from_env(cluster_env(docs))
    for component, port_setting in SERVICE_PORT_SETTING.items():
        annotations = deployment(docs, component)["spec"]["template"]["metadata"]["annotations"]
        box = container(docs, component)
        ports = {port["name"]: port["containerPort"] for port in box["ports"]}
        probed = ports[box["readinessProbe"]["httpGet"]["port"]]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        assert int(annotations["prometheus.io/port"]) == probed == getattr(settings, port_setting)


# ---------------------------------------------------------------- Kafka users and ACLs

#: Each component's KafkaUser (k8s/overlays/prod/kafka-users.yaml), the module its command
#: runs, and its consumer group (None: it assigns partitions itself).
KAFKA_USERS = {
    "ingest": ("fiml-ingest", "ingest.service", None),
    "arbitration": ("fiml-arbitration", "arbitration.app", "{prefix}-arbitration"),  # Faust app id
    "gateway": ("fiml-gateway", "gateway.app", None),
    "webhooks": ("fiml-webhooks", "arbitration.webhook_worker", "{prefix}-webhooks"),
    "alerts": ("fiml-alerts", "arbitration.alerts_app", "{prefix}-alerts"),  # Faust app id
}
#: Topics a component writes whose records its own package does not build: the alerts
#: worker writes the alerts the shared domain builds, and its checkpoints (not Avro).
WRITTEN_NOT_BUILT = {"alerts": {"alerts.fired", "alerts.state"}}
PROJECT_PACKAGES = ("ingest", "arbitration", "gateway", "runtime", "domain")
#: Modules that list every topic (creation, settings, registry subjects), not a component's.
EVERY_TOPIC = {"runtime.settings", "runtime.topics", "runtime.schema_ids"}


def imported_modules(entry: str) -> dict[str, ast.Module]:
    """The syntax trees of ``entry`` and every project module it imports, transitively."""
    trees: dict[str, ast.Module] = {}
    todo = [entry]
    while todo:
        name = todo.pop()
        path = ROOT.joinpath(*name.split("."))
        files = [f for f in (path.with_suffix(".py"), path / "__init__.py") if f.exists()]
        if name in trees or name in EVERY_TOPIC or not files:
            continue
        trees[name] = tree = ast.parse(files[0].read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            todo += [m for m in modules if m.split(".")[0] in PROJECT_PACKAGES]
    return trees


def topics_in_code(entry: str) -> tuple[set[str], set[str], set[str]]:
    """The topic roles a component's code names (``TopicRole.X``, or a role as a call's first
    argument), those of the records it builds (``RECORD_TOPICS``; a NewsItem goes to news.raw
    first, which it names), and those of the records its own package builds (what it
    writes; the shared domain also builds records it parses)."""
    roles = {role.value for role in TopicRole}
    built_types = {kind.__name__: role.value for kind, role in RECORD_TOPICS.items()}
    del built_types[NewsItem.__name__]
    named, built, own = set(), set(), set()
    for module, tree in imported_modules(entry).items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and getattr(node.value, "id", "") == "TopicRole":
                named.add(TopicRole[node.attr].value)
            elif isinstance(node, ast.Call) and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and first.value in roles:
                    named.add(first.value)
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in built_types:
                built.add(built_types[node.func.id])
                if module.split(".")[0] == entry.split(".")[0]:
                    own.add(built_types[node.func.id])
    return named, built, own


def test_each_component_has_a_kafka_user_with_acls_for_exactly_its_topics():
    """Prod: every component connects as its own SCRAM user, whose ACLs cover the topics its
    code names, no topic its code never touches, Write on the topics it builds records
    for, and only its own consumer group; the credentials come from Strimzi's Secrets."""
    docs = build("overlays/prod")
    cluster = one(docs, "Kafka")["metadata"]["name"]
    users = by_kind(docs, "KafkaUser")
    settings = Settings.from_env(cluster_env(docs))
    prefix = settings.topic_prefix
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert set(users) == {user for user, _, _ in KAFKA_USERS.values()} | {"fiml-registry"}
    for component, (user, entry, group) in KAFKA_USERS.items():
        spec = users[user]["spec"]
        assert users[user]["metadata"]["labels"]["strimzi.io/cluster"] == cluster
        assert spec["authentication"]["type"] == "scram-sha-512"
        acls: dict[tuple[str, str], set[str]] = {}
        for acl in spec["authorization"]["acls"]:
            assert (
                acl.get("type", "allow") == "allow" and acl["resource"]["patternType"] == "literal"
            )
            key = (acl["resource"]["type"], acl["resource"]["name"])
            acls.setdefault(key, set()).update(acl["operations"])
        topics = {
            name.removeprefix(f"{prefix}."): ops
            for (kind, name), ops in acls.items()
            if kind == "topic"
        }
        groups = {name for kind, name in acls if kind == "group"}
        named, built, writes = topics_in_code(entry)
        writes |= WRITTEN_NOT_BUILT.get(component, set())
        assert named <= set(topics) <= named | built, component
        assert writes and all("Write" in topics[role] for role in writes), component
        assert all(ops <= {"Read", "Write", "Describe"} for ops in topics.values()), component
        assert groups == ({group.format(prefix=prefix)} if group else set()), component
        box = container(docs, component)
        env = {item["name"]: item for item in box["env"]}
        assert env["FIML_KAFKA_SASL_USERNAME"]["value"] == user
        secret = env["FIML_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert (secret["name"], secret["key"]) == (user, "password")
        volumes = deployment(docs, component)["spec"]["template"]["spec"]["volumes"]
        [ca] = [
            v
            for v in volumes
            if v.get("secret", {}).get("secretName") == f"{cluster}-cluster-ca-cert"
        ]
        [mount] = [m for m in box["volumeMounts"] if m["name"] == ca["name"]]
        assert settings.kafka_ssl_cafile == f"{mount['mountPath']}/ca.crt"
    # every component reaches the brokers on the TLS listener's port only
    port = int(settings.kafka_bootstrap.rpartition(":")[2])
    to_kafka = 0
    for policy in by_kind(docs, "NetworkPolicy").values():
        for rule in policy["spec"].get("egress", []):
            if any(
                peer.get("podSelector", {}).get("matchLabels", {}).get("strimzi.io/kind") == "Kafka"
                for peer in rule.get("to", [])
            ):
                to_kafka += 1
                assert [p["port"] for p in rule["ports"]] == [port], policy["metadata"]["name"]
    assert to_kafka >= len(KAFKA_USERS), "a component has no egress rule to the brokers"


# ---------------------------------------------------------------- everywhere


def test_every_fiml_variable_is_a_setting():
    known = known_variables()
    places: dict[str, set[str]] = {}
    files = [COMPOSE, ROOT / "Dockerfile", *sorted(p for p in K8S.rglob("*") if p.is_file())]
    for file in files:
        for variable in FIML_VARIABLE.findall(file.read_text()):
            places.setdefault(variable, set()).add(str(file.relative_to(ROOT)))
    for path in BUILDS:
        for doc in build(path):
            for key in doc.get("data") or {}:
                places.setdefault(key, set()).add(f"k8s/{path}")
    unknown = {
        variable: where
        for variable, where in places.items()
        if variable.startswith(ENV_PREFIX) and variable not in known
    }
    assert unknown == {}
    assert {"FIML_KAFKA_BOOTSTRAP", "FIML_GATEWAY_HOST", "FIML_HEALTH_PORT"} <= set(places)
    for service in compose()["services"].values():
        Settings.from_env(compose_env(service))
    for path in BUILDS:
        Settings.from_env(cluster_env(build(path)))


def test_topics_agree_between_settings_compose_and_kubernetes():
    expected = {spec.name: spec for spec in Settings().topics().values()}
    creator = compose()["services"]["topics"]
    from_compose = Settings.from_env(compose_env(creator)).topics().values()
    assert {spec.name: spec for spec in from_compose} == expected
    for path in BUILDS:
        docs = build(path)
        assert topics_of(docs) == expected, path
        from_cluster = Settings.from_env(cluster_env(docs)).topics().values()
        assert {spec.name: spec for spec in from_cluster} == expected, path


REGISTRY_SETTINGS = {
    "ENABLE_CCOMPAT_CANONICAL_HASH_MODE": "false",
    "ENABLE_CCOMPAT_LEGACY_ID_MODE": "false",
    "REGISTRY_ALLOW_DYNAMIC_CONFIG": "false",
}


def test_the_schema_registry_is_the_local_release_and_every_service_uses_it():
    """Compose and Kubernetes run the Apicurio release of ``fiml registry start`` with the
    ccompat settings it needs, seed it with ``fiml registry seed`` at its root URL, and give
    every service its Confluent API as FIML_SCHEMA_REGISTRY_URL."""
    image = f"apicurio/apicurio-registry-kafkasql:{APICURIO_VERSION}"
    commands = fiml_commands()
    services = compose()["services"]
    registry = services["registry"]
    assert registry["image"] == image
    assert REGISTRY_SETTINGS.items() <= registry["environment"].items()
    assert registry["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    seed = services["registry-seed"]["command"]
    assert tuple(seed[:2]) in commands and seed[2:] == ["--url", "http://registry:8080"]
    fiml = {name: s for name, s in services.items() if s.get("image", "").startswith("fiml")}
    assert set(fiml) >= {"registry-seed", "topics", *SERVICE_PORT_SETTING}
    for name, service in fiml.items():
        url = Settings.from_env(compose_env(service)).schema_registry_url
        assert url == "http://registry:8080" + CCOMPAT_PATH
        if name != "registry-seed":
            assert service["depends_on"]["registry-seed"] == {
                "condition": "service_completed_successfully"
            }

    for path in BUILDS:
        docs = build(path)
        box = container(docs, "schema-registry")
        env = {item["name"]: item.get("value") for item in box["env"]}
        assert box["image"] == image and REGISTRY_SETTINGS.items() <= env.items()
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == cluster_env(docs)["FIML_KAFKA_BOOTSTRAP"]
        service = by_kind(docs, "Service")["fiml-schema-registry"]
        [port] = service["spec"]["ports"]
        root = f"http://fiml-schema-registry:{port['port']}"
        assert Settings.from_env(cluster_env(docs)).schema_registry_url == root + CCOMPAT_PATH
        [job] = by_kind(docs, "Job").values()
        [seeder] = job["spec"]["template"]["spec"]["containers"]
        assert tuple(seeder["args"][:2]) in commands and seeder["args"][2:] == ["--url", root]
        labels = deployment(docs, "schema-registry")["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()


# ---------------------------------------------------------------- docker compose


def test_compose_file_matches_the_compose_specification():
    errors = [
        f"{'.'.join(map(str, error.path))}: {error.message}"
        for error in compose_validator().iter_errors(compose())
    ]
    assert errors == []


def test_compose_runs_the_system_like_make_run():
    """The same services as ``fiml up``, on the same host ports: the gateway's, and the
    /metrics ports ``fiml up`` gives ingest, arbitration, the webhook and alerts workers."""
    spec = compose()
    services = spec["services"]
    kafka = services["kafka"]
    assert kafka["image"] == f"apache/kafka:{Settings().kafka_version}"
    assert kafka["image"].startswith("apache/kafka:4.1.")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert len(base64.urlsafe_b64decode(kafka["environment"]["CLUSTER_ID"] + "==")) == 16
    [volume] = kafka["volumes"]
    assert volume.split(":") == ["kafka-data", kafka["environment"]["KAFKA_LOG_DIRS"]]
    assert "kafka-data" in spec["volumes"]
    assert "healthcheck" in kafka and kafka["restart"] == "unless-stopped"

    commands = fiml_commands()
    creator = services["topics"]
    assert tuple(creator["command"]) == ("topics", "create") in commands
    assert creator["restart"] == "no"
    assert creator["depends_on"]["kafka"]["condition"] == "service_healthy"
    bootstrap = {
        compose_env(service)["FIML_KAFKA_BOOTSTRAP"]
        for name, service in services.items()
        if name not in ("kafka", "registry")
    }
    assert bootstrap == {"kafka:9092"}
    assert "PLAINTEXT://kafka:9092" in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]

    for name, port_setting in SERVICE_PORT_SETTING.items():
        service = services[name]
        settings = Settings.from_env(compose_env(service))
        assert tuple(service["command"]) in commands
        assert service["image"] == creator["image"] and service["build"] == creator["build"]
        assert service["restart"] == "unless-stopped"
        assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        check = service["healthcheck"]["test"]
        port = getattr(settings, port_setting)
        assert check == ["CMD", "python", "-m", "fiml.health", f"http://127.0.0.1:{port}/readyz"]
    gateway = Settings.from_env(compose_env(services["gateway"]))
    assert gateway.gateway_host == "0.0.0.0"
    [published] = services["gateway"]["ports"]
    address, host_port, container_port = published.rsplit(":", 2)
    assert INTERPOLATION.match(address).group(1) == "127.0.0.1"  # loopback unless opened
    assert host_port == container_port == str(gateway.gateway_port)
    defaults = Settings()
    for name, host_port in (
        ("ingest", defaults.up_ingest_health_port),
        ("arbitration", defaults.up_arbitration_health_port),
        ("webhooks", defaults.up_webhooks_health_port),
        ("alerts", defaults.up_alerts_health_port),
    ):
        settings = Settings.from_env(compose_env(services[name]))
        assert settings.health_host == "0.0.0.0"
        assert services[name]["ports"] == [f"127.0.0.1:{host_port}:{settings.health_port}"]


def test_the_image_is_slim_non_root_and_built_from_the_packages():
    dockerfile = (ROOT / "Dockerfile").read_text()
    hadolint = Path(sysconfig.get_path("scripts")) / "hadolint"
    lint = subprocess.run(
        [str(hadolint), "--no-color", "-"], input=dockerfile, capture_output=True, text=True
    )
    assert lint.returncode == 0 and lint.stdout == "", lint.stdout + lint.stderr
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.\d+-slim", dockerfile, re.M)
    [user] = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert not user.startswith(("0", "root"))
    assert re.search(r'^ENTRYPOINT \["fiml"\]$', dockerfile, re.M)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [
        pattern.rstrip("*")
        for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    allowed = (ROOT / ".dockerignore").read_text().split()
    for package in packages:
        assert f"!{package}/" in allowed
        assert f"COPY {package} ./{package}" in dockerfile
    assert {"!pyproject.toml", "!README.md"} <= set(allowed)
    assert compose()["services"]["topics"]["build"] == "."


def test_the_image_carries_the_dashboard_chart_library_the_makefile_pins():
    dockerfile = (ROOT / "Dockerfile").read_text()
    [pinned] = re.findall(r"(lightweight-charts@\S+)$", (ROOT / "Makefile").read_text(), re.M)
    [installed] = re.findall(r"npm install .*--prefix /opt/dashboard (\S+)$", dockerfile, re.M)
    assert installed == pinned
    assert f"FIML_DASHBOARD_CHART_LIBRARY=/opt/dashboard/{CHART_LIBRARY}" in dockerfile
