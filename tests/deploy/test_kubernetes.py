"""deploy/k8s: both overlays render with `kubectl kustomize`, every object (CRDs included)
matches its schema, a broken object is caught, and the manifests say what the services
need: their real health endpoints and ports, secrets by reference, the network they may
reach, a KEDA scaler per consumer queue, odd-sized broker and database clusters."""

from __future__ import annotations

import copy
import re
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest

from hrcase.services import QUEUES
from services.audit.config import AuditSettings
from shared.settings import DEFAULT_HTTP_PORTS, SERVICES, Settings, db_role
from shared.topology import PUBLISHES
from tests.deploy.manifests import OVERLAYS, REPO, Obj, named, of_kind, render, validate

SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN)$")


def deployments(objects: list[Obj]) -> dict[str, Obj]:
    """Service name -> its Deployment."""
    return {
        d["metadata"]["name"].removeprefix("hrcase-"): d
        for d in of_kind(objects, "Deployment")
        if d["metadata"]["name"].removeprefix("hrcase-") in SERVICES
    }


def container(deployment: Obj) -> Obj:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    found: Obj = containers[0]
    return found


def env_of(c: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in c.get("env", [])}


def config_map(objects: list[Obj]) -> dict[str, str]:
    (found,) = [
        c
        for c in of_kind(objects, "ConfigMap")
        if c["metadata"]["name"].startswith("hrcase-config")
    ]
    return dict(found["data"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_matches_its_schema(overlay: str) -> None:
    objects = render(overlay)
    verdicts = validate(objects)
    unchecked = [f"{v.kind}/{v.name}" for v in verdicts if v.validator is None]
    assert not unchecked, f"no schema checked these: {unchecked}"
    invalid = {f"{v.kind}/{v.name}": v.errors for v in verdicts if v.errors}
    assert not invalid
    checked_by = {v.kind: v.validator for v in verdicts}
    # The custom resources really went through their operators' schemas.
    assert checked_by["ScaledObject"] == "@kubernetes-models"
    assert checked_by["TriggerAuthentication"] == "@kubernetes-models"
    assert checked_by["Cluster"] == "@kubernetes-models"
    assert checked_by["RabbitmqCluster"] == "hrcase RabbitmqCluster schema"
    assert checked_by["Deployment"] == "kubernetes"


def _break(objects: list[Obj], kind: str, path: tuple[Any, ...], value: Any) -> Obj:
    target = copy.deepcopy(of_kind(objects, kind)[0])
    node = target
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return target


BROKEN = {
    "Deployment replicas as text": ("Deployment", ("spec", "replicas"), "two", "replicas"),
    "misspelt probe field (strict)": (
        "Deployment",
        ("spec", "template", "spec", "containers", 0, "readinesProbe"),
        {"httpGet": {"path": "/health/ready", "port": "http"}},
        "readinesProbe",
    ),
    "NetworkPolicy port as a list": (
        "NetworkPolicy",
        ("spec", "egress", 0, "ports", 0, "port"),
        [5672],
        "port",
    ),
    "ScaledObject maxReplicaCount as text": (
        "ScaledObject",
        ("spec", "maxReplicaCount"),
        "many",
        "maxReplicaCount",
    ),
    "TriggerAuthentication secretTargetRef as text": (
        "TriggerAuthentication",
        ("spec", "secretTargetRef"),
        "hrcase-keda-rabbitmq",
        "secretTargetRef",
    ),
    "CNPG Cluster instances as text": ("Cluster", ("spec", "instances"), "three", "instances"),
    "RabbitmqCluster replicas as text": (
        "RabbitmqCluster",
        ("spec", "replicas"),
        "three",
        "replicas",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_object_is_caught(case: str) -> None:
    kind, path, value, field_name = BROKEN[case]
    broken = _break(render("production"), kind, path, value)
    (verdict,) = validate([broken])
    assert verdict.validator is not None
    assert verdict.errors, f"{case}: passed validation"
    assert field_name in " ".join(verdict.errors)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_runs_hardened_and_probes_its_real_health_endpoints(overlay: str) -> None:
    objects = render(overlay)
    found = deployments(objects)
    assert set(found) == set(SERVICES)
    for service, deployment in found.items():
        pod = deployment["spec"]["template"]["spec"]
        c = container(deployment)
        assert c["command"] == ["python", "-m", f"services.{service}"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        # The ports the service binds by default (shared.settings), metrics = HTTP + 1000.
        assert ports["http"] == DEFAULT_HTTP_PORTS[service]
        assert ports["metrics"] == DEFAULT_HTTP_PORTS[service] + 1000
        assert c["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
        assert c["startupProbe"]["httpGet"]["path"] == "/health/live"
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert pod["automountServiceAccountToken"] is False
        # A writable /tmp for the read-only root (uploads spooled by python-multipart).
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]
        pdbs = [
            p
            for p in of_kind(objects, "PodDisruptionBudget")
            if p["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        ]
        assert len(pdbs) == 1, service
    intake = container(found["intake"])
    assert {p["name"]: p["containerPort"] for p in intake["ports"]}["smtp"] == 2525


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_never_written(overlay: str) -> None:
    objects = render(overlay)
    assert not of_kind(objects, "Secret")
    config = config_map(objects)
    assert not [k for k in config if SECRET_NAME.search(k)]
    for key in ("RABBITMQ_URL", "DATABASE_URL"):
        assert urlsplit(config[key]).password is None, key
    pods = [d["spec"]["template"]["spec"] for d in of_kind(objects, "Deployment")]
    pods += [j["spec"]["template"]["spec"] for j in of_kind(objects, "Job")]
    for pod in pods:
        for c in pod.get("initContainers", []) + pod["containers"]:
            for name, entry in env_of(c).items():
                if SECRET_NAME.search(name):
                    assert "secretKeyRef" in entry.get("valueFrom", {}), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_config_map_names_only_settings_the_services_read(overlay: str) -> None:
    known = {name.upper() for name in Settings.model_fields}
    known |= {f"AUDIT_{name.upper()}" for name in AuditSettings.model_fields}
    # Read by name (services/intake/config.py, <SERVICE>_... in shared.settings).
    known |= {"INTAKE_SMTP_HOST", "INTAKE_SMTP_PORT", "INTAKE_MAILBOX", "INTAKE_MAIL_ALIASES"}
    # Single sign-on (services/intake/config.py OidcConfig.from_env).
    known |= {"OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_SCOPES", "OIDC_ROLE_MAP"}
    # The dashboard's analytics replica (services/intake/config.py AnalyticsConfig).
    known |= {"ANALYTICS_WARM_AT_START"}
    unknown = set(config_map(render(overlay))) - known
    assert not unknown


def _ports(rule: Obj) -> set[int]:
    return {p["port"] for p in rule.get("ports", [])}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_let_each_service_reach_only_broker_postgres_and_dns(
    overlay: str,
) -> None:
    objects = render(overlay)
    policies = of_kind(objects, "NetworkPolicy")
    for service, deployment in deployments(objects).items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        mine = [
            p for p in policies if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(mine) == 1, service
        spec = mine[0]["spec"]
        assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
        reached: dict[str, set[int]] = {}
        for rule in spec["egress"]:
            for peer in rule["to"]:
                if "ipBlock" in peer:
                    target = "anywhere"
                else:
                    target = "/".join(sorted(peer["podSelector"]["matchLabels"].values()))
                reached.setdefault(target, set()).update(_ports(rule))
        expected = {"hrcase-rabbitmq": {5672}, "hrcase-db": {5432}, "kube-dns": {53}}
        if service == "intake":
            expected["anywhere"] = {443}  # the OpenID Connect provider
        if service == "notifications":
            expected["anywhere"] = {25, 465, 587}
            if overlay == "dev":
                expected["hrcase-mailpit"] = {1025}
        assert reached == expected, service
        metrics = DEFAULT_HTTP_PORTS[service] + 1000
        open_ports: set[int] = set()
        for rule in spec["ingress"]:
            if "from" in rule:
                (peer,) = rule["from"]
                assert peer == {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                    }
                }
                assert _ports(rule) == {metrics}
            else:
                open_ports |= _ports(rule)
        public = {"intake": {8000, 2525}, "audit": {8003}}.get(service, set())
        assert open_ports == public, service


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_pod_announces_its_real_metrics_port_to_prometheus(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prometheus in `monitoring` finds the pods by their prometheus.io/* annotations (its
    kubernetes_sd job keeps annotated pods): each must name the port the service binds for
    /metrics, as Settings.metrics_port computes it from the pod's own environment."""
    objects = render(overlay)
    config = config_map(objects)
    for service, deployment in deployments(objects).items():
        c = container(deployment)
        with monkeypatch.context() as env:
            # Only the pod's environment counts, not this test process's.
            own = [f"{service.upper()}_HTTP_PORT", f"{service.upper()}_METRICS_PORT"]
            for name in [*config, *env_of(c), *own]:
                env.delenv(name, raising=False)
            for name, value in config.items():
                env.setenv(name, value)
            for name, entry in env_of(c).items():
                if "value" in entry:
                    env.setenv(name, entry["value"])
            metrics_port = Settings().metrics_port(service)
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", service
        assert annotations.get("prometheus.io/port") == str(metrics_port), service
        assert annotations.get("prometheus.io/path") == "/metrics", service
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports["metrics"] == metrics_port, service


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_scales_each_consumer_on_its_own_queue(overlay: str) -> None:
    objects = render(overlay)
    auths = {a["metadata"]["name"]: a for a in of_kind(objects, "TriggerAuthentication")}
    scaled: dict[str, str] = {}
    for so in of_kind(objects, "ScaledObject"):
        target = so["spec"]["scaleTargetRef"]["name"]
        named(objects, "Deployment", target)
        (trigger,) = so["spec"]["triggers"]
        assert trigger["type"] == "rabbitmq"
        assert trigger["metadata"]["mode"] == "QueueLength"
        assert trigger["metadata"].get("useRegex") == "true"
        assert trigger["metadata"].get("operation") == "sum"
        scaled[target.removeprefix("hrcase-")] = trigger["metadata"]["queueName"]
        auth = auths[trigger["authenticationRef"]["name"]]["spec"]
        assert set(auth) == {"secretTargetRef"}  # by reference only
    # Every partitioned consumer, on the sum of its partitions (any count); audit's one
    # queue has a single active consumer.
    partitioned = {s: q for s, q in QUEUES.items() if q.partitioned}
    assert set(scaled) == set(partitioned)
    for service, pattern in scaled.items():
        for name in partitioned[service].with_partitions(64).queue_names:
            assert re.search(pattern, name), (pattern, name)
        assert not re.search(pattern, partitioned[service].dead_letter_queue)
    assert QUEUES["audit"].single_active_consumer
    assert named(objects, "Deployment", "hrcase-audit")["spec"]["strategy"]["type"] == "Recreate"


def test_production_runs_odd_quorum_clusters_and_dev_runs_one_of_each() -> None:
    production, dev = render("production"), render("dev")
    rabbit = named(production, "RabbitmqCluster", "hrcase-rabbitmq")["spec"]
    assert rabbit["replicas"] == 3
    assert "default_queue_type = quorum" in rabbit["rabbitmq"]["additionalConfig"]
    assert named(production, "Cluster", "hrcase-db")["spec"]["instances"] == 3
    assert named(production, "Cluster", "hrcase-db")["spec"]["backup"]["barmanObjectStore"]
    assert named(production, "ScheduledBackup", "hrcase-db-nightly")
    assert config_map(production)["ENVIRONMENT"] == "production"
    assert named(dev, "RabbitmqCluster", "hrcase-rabbitmq")["spec"]["replicas"] == 1
    assert named(dev, "Cluster", "hrcase-db")["spec"]["instances"] == 1
    assert config_map(dev)["ENVIRONMENT"] == "development"
    for objects in (production, dev):
        assert named(objects, "RabbitmqCluster", "hrcase-rabbitmq")["spec"]["replicas"] % 2 == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_logs_in_to_postgres_as_its_own_managed_role(overlay: str) -> None:
    objects = render(overlay)
    roles = {
        r["name"]: r["passwordSecret"]["name"]
        for r in named(objects, "Cluster", "hrcase-db")["spec"]["managed"]["roles"]
    }
    # The services' roles, and the key store's (shared/privacy/keys.py) every service uses.
    assert set(roles) == {db_role(s) for s in SERVICES} | {db_role("keys")}
    for service, deployment in deployments(objects).items():
        ref = env_of(container(deployment))[f"{service.upper()}_DATABASE_PASSWORD"]
        assert ref["valueFrom"]["secretKeyRef"]["name"] == roles[db_role(service)]
        keys_ref = env_of(container(deployment))["KEYS_DATABASE_PASSWORD"]
        assert keys_ref["valueFrom"]["secretKeyRef"]["name"] == roles[db_role("keys")]
    assert urlsplit(config_map(objects)["DATABASE_URL"]).hostname == "hrcase-db-rw"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_setup_job_migrates_and_gives_every_broker_user_its_password(overlay: str) -> None:
    job = named(render(overlay), "Job", "hrcase-setup")["spec"]["template"]["spec"]
    (migrate,) = job["initContainers"]
    assert migrate["command"] == ["hrcase", "migrate"]
    assert "secretKeyRef" in env_of(migrate)["DATABASE_URL"]["valueFrom"]
    (topology,) = job["containers"]
    assert topology["command"] == ["hrcase", "topology"]
    env = env_of(topology)
    # In production `hrcase topology` refuses a publisher without its password.
    for publisher in PUBLISHES:
        assert "secretKeyRef" in env[f"{publisher.upper()}_RABBITMQ_PASSWORD"]["valueFrom"]
    assert env["RABBITMQ_URL"]["value"].startswith("amqp://$(RABBITMQ_ADMIN_USER):")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_audit_keeps_checkpoints_on_a_volume_and_its_signing_key_in_a_secret(
    overlay: str,
) -> None:
    objects = render(overlay)
    config = config_map(objects)
    audit = named(objects, "Deployment", "hrcase-audit")
    pod = audit["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in container(audit)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    checkpoints = volumes[mounts[config["AUDIT_CHECKPOINT_DIR"]]["name"]]
    claim = checkpoints["persistentVolumeClaim"]["claimName"]
    named(objects, "PersistentVolumeClaim", claim)
    key_dir = str(PurePosixPath(config["AUDIT_SIGNING_KEY_FILE"]).parent)
    assert mounts[key_dir]["readOnly"] is True
    assert volumes[mounts[key_dir]["name"]]["secret"]["secretName"] == "hrcase-audit-signing-key"


def _referenced_secrets(objects: list[Obj]) -> set[str]:
    """Every Secret name the rendered objects point at, wherever they point at one."""
    found: set[str] = set()

    def walk(node: Any, parent: str = "") -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("secretKeyRef", "passwordSecret") or (
                    parent in ("s3Credentials", "accessKeyId", "secretAccessKey") and key == "name"
                ):
                    found.add(value["name"] if isinstance(value, dict) else value)
                elif key == "secret" and isinstance(value, dict) and "secretName" in value:
                    found.add(value["secretName"])
                elif key == "secretTargetRef":
                    found.update(ref["name"] for ref in value)
                else:
                    walk(value, key)
        elif isinstance(node, list):
            for item in node:
                walk(item, parent)

    walk(objects)
    return found


def test_the_readme_lists_every_secret_to_create() -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    table = readme[readme.index("| used by | Secret | keys |") :].split("\n\n", 1)[0]
    listed: set[str] = set()
    for row in table.splitlines()[2:]:
        cell = row.strip("|").split("|")[1]
        names = re.findall(r"`([^`]+)`", cell)
        stem = names[0].rsplit("-", 1)[0]
        listed |= {n if n.startswith("hrcase-") else stem + n for n in names}
    # The operators make these two themselves (CloudNativePG, RabbitMQ Cluster Operator).
    made_by_operators = {"hrcase-db-app", "hrcase-rabbitmq-default-user"}
    assert listed == _referenced_secrets(render("production")) - made_by_operators


def test_production_signs_in_through_the_company_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Production has no development sign-in (services/intake/config.py): its portal needs
    an https issuer, a client and a role map of known roles, read as intake reads them, and
    the client secret by reference."""
    from services.intake.config import OidcConfig
    from shared.settings import Settings

    objects = render("production")
    config = config_map(objects)
    for key, value in config.items():
        if key.startswith("OIDC_"):
            monkeypatch.setenv(key, value)
    settings = Settings.model_construct(
        environment=config["ENVIRONMENT"], portal_base_url=config["PORTAL_BASE_URL"]
    )
    oidc = OidcConfig.from_env(settings)
    assert oidc is not None
    assert oidc.issuer.startswith("https://")
    assert {role for _, role in oidc.role_map} >= {"employee", "hr_agent", "privacy_officer"}
    (intake,) = deployments(objects)["intake"]["spec"]["template"]["spec"]["containers"]
    assert env_of(intake)["OIDC_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "hrcase-intake",
        "key": "oidc-client-secret",
        "optional": True,
    }
