"""deploy/ as the tests see it: the Kustomize overlays rendered by kubectl, and every
rendered object checked against its schema.

- Kubernetes' own kinds: `kubernetes-validate` (the API's OpenAPI schemas as JSON schemas,
  strict: an unknown field is an error, as a typo in a manifest would be).
- KEDA and CloudNativePG: the `@kubernetes-models` npm packages (deploy/k8s/validate,
  installed by `npm ci`), generated from those operators' CRDs.
- RabbitmqCluster: our own closed schema of the fields we use (tests/deploy/
  rabbitmq_cluster_schema.json): no registry package ships the operator's CRD schema.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "production")
# The Kubernetes version the manifests are written for (its API schemas are checked).
KUBERNETES_VERSION = "1.32.0"
CRD_VALIDATOR = K8S / "validate"
RABBITMQ_CLUSTER_SCHEMA = Path(__file__).with_name("rabbitmq_cluster_schema.json")

Obj = dict[str, Any]


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl is not installed: the Kustomize overlays cannot be rendered")
    return found


@cache
def _render(target: str) -> str:
    done = subprocess.run(
        [kubectl(), "kustomize", target], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise AssertionError(f"kubectl kustomize {target} failed:\n{done.stderr}")
    return done.stdout


def render(overlay: str) -> list[Obj]:
    """The objects `kubectl kustomize deploy/k8s/overlays/<overlay>` renders (fresh copies)."""
    text = _render(str(K8S / "overlays" / overlay))
    return [doc for doc in yaml.safe_load_all(text) if doc]


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


@dataclass
class Verdict:
    """One object's schema check: which validator knew its kind, and what it found."""

    kind: str
    name: str
    validator: str | None
    errors: list[str] = field(default_factory=list)


def _node_validator() -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: KEDA and CloudNativePG objects cannot be checked")
    if not (CRD_VALIDATOR / "node_modules").is_dir():
        message = f"run `npm ci --prefix {CRD_VALIDATOR.relative_to(REPO)}` (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return [node, str(CRD_VALIDATOR / "validate.mjs")]


def _crd_verdicts(objects: list[Obj]) -> list[dict[str, Any]]:
    done = subprocess.run(
        _node_validator(),
        input=json.dumps(objects),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=CRD_VALIDATOR,
    )
    if done.returncode != 0:
        raise AssertionError(f"validate.mjs failed:\n{done.stderr}")
    verdicts: list[dict[str, Any]] = json.loads(done.stdout)
    return verdicts


@cache
def _rabbitmq_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(RABBITMQ_CLUSTER_SCHEMA.read_text("utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def validate(objects: list[Obj]) -> list[Verdict]:
    """Every object checked by the validator that knows its kind; validator None (and an
    error) for an object none knows, so nothing passes unchecked."""
    verdicts: list[Verdict] = []
    custom: list[tuple[int, Obj]] = []
    for index, obj in enumerate(objects):
        kind, name = obj.get("kind", "?"), obj.get("metadata", {}).get("name", "?")
        if obj.get("apiVersion") == "rabbitmq.com/v1beta1" and kind == "RabbitmqCluster":
            errors = [
                f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in _rabbitmq_validator().iter_errors(obj)
            ]
            verdicts.append(Verdict(kind, name, "hrcase RabbitmqCluster schema", errors))
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            custom.append((index, obj))
            verdicts.append(Verdict(kind, name, None, ["no schema"]))
            continue
        except kubernetes_validate.ValidationError as exc:
            verdicts.append(Verdict(kind, name, "kubernetes", [str(exc)]))
            continue
        verdicts.append(Verdict(kind, name, "kubernetes"))
    if custom:
        for (index, _), found in zip(custom, _crd_verdicts([o for _, o in custom]), strict=True):
            if found["status"] != "unknown":
                verdicts[index] = Verdict(
                    found["kind"], found["name"], "@kubernetes-models", found["errors"]
                )
    return verdicts
