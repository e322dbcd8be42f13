"""A small, strict subset of ``kustomize build``, enough to render ``deploy/k8s`` offline.

Supported kustomization fields: ``resources`` (files and directories), ``namespace``,
``images`` and ``patches`` (strategic-merge patches, optionally with a ``target``, and JSON
6902 patches with a ``target``). Any other field is an error, so the manifests cannot
silently rely on something this renderer ignores. Semantics follow kustomize's:

- strategic merge: maps merge recursively, ``null`` deletes a key; lists of built-in kinds
  merge by their Kubernetes patch-merge key (containers/env/volumes by ``name``, ports by
  ``containerPort``, volumeMounts by ``mountPath``); lists in custom resources are replaced;
- a patch (or target) that matches no resource is an error (kustomize fails on the former);
- ``target.name`` is an anchored regular expression, as in kustomize;
- ``namespace`` is set on every namespaced resource (not on ``Namespace`` itself).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

ALLOWED_FIELDS = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PriorityClass",
    "StorageClass",
}
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}


class KustomizeError(Exception):
    pass


def load_docs(path: Path) -> list[Resource]:
    with path.open(encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def is_builtin(resource: Resource) -> bool:
    """Built-in API groups have no dot (``v1``, ``apps/v1``, ``policy/v1``...) or end in
    ``.k8s.io`` (``networking.k8s.io/v1``)."""
    group = resource.get("apiVersion", "").rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def res_id(resource: Resource) -> tuple[str, str, str]:
    meta = resource.get("metadata", {})
    return (resource.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""))


# -- strategic merge -------------------------------------------------------------------------


def strategic_merge(base: Any, patch: Any, *, builtin: bool, key: str | None = None) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = strategic_merge(out[k], v, builtin=builtin, key=k)
            else:
                out[k] = copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list) and builtin and key in MERGE_KEYS:
        merge_key = MERGE_KEYS[key]
        out_list = [copy.deepcopy(item) for item in base]
        for item in patch:
            if not isinstance(item, dict) or merge_key not in item:
                raise KustomizeError(f"list {key!r} items need {merge_key!r} to merge")
            for i, existing in enumerate(out_list):
                if isinstance(existing, dict) and existing.get(merge_key) == item[merge_key]:
                    out_list[i] = strategic_merge(existing, item, builtin=builtin)
                    break
            else:
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(patch)


# -- JSON 6902 -------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer must start with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(doc: Resource, ops: list[dict[str, Any]]) -> Resource:
    out = copy.deepcopy(doc)
    for op in ops:
        kind = op.get("op")
        parts = _pointer(op["path"])
        parent: Any = out
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if kind in ("add", "replace"):
            value = copy.deepcopy(op["value"])
            if isinstance(parent, list):
                if last == "-":
                    parent.append(value)
                elif kind == "add":
                    parent.insert(int(last), value)
                else:
                    parent[int(last)] = value
            else:
                if kind == "replace" and last not in parent:
                    raise KustomizeError(f"replace of missing {op['path']}")
                parent[last] = value
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                del parent[last]
        else:
            raise KustomizeError(f"unsupported JSON patch op {kind!r}")
    return out


# -- kustomization ---------------------------------------------------------------------------


def _matches(resource: Resource, target: dict[str, Any]) -> bool:
    for field in ("kind", "name", "namespace"):
        if field not in target:
            continue
        value = resource.get("kind") if field == "kind" else resource["metadata"].get(field, "")
        if not re.fullmatch(str(target[field]), value or ""):
            return False
    selector = target.get("labelSelector")
    if selector:
        labels = resource["metadata"].get("labels", {})
        for term in str(selector).split(","):
            k, _, v = term.partition("=")
            if labels.get(k.strip()) != v.strip():
                return False
    return True


def _apply_patch(resources: list[Resource], spec: dict[str, Any], root: Path) -> None:
    if "path" in spec:
        body = yaml.safe_load((root / spec["path"]).read_text(encoding="utf-8"))
    elif "patch" in spec:
        body = yaml.safe_load(spec["patch"])
    else:
        raise KustomizeError(f"patch needs path or patch: {spec}")
    target = spec.get("target")
    if isinstance(body, list):
        if not target:
            raise KustomizeError("a JSON 6902 patch needs a target")
        hits = [i for i, r in enumerate(resources) if _matches(r, target)]
        if not hits:
            raise KustomizeError(f"JSON patch target matches nothing: {target}")
        for i in hits:
            resources[i] = json_patch(resources[i], body)
        return
    if not isinstance(body, dict):
        raise KustomizeError(f"unreadable patch {spec}")
    if not target:
        target = {"kind": re.escape(body["kind"]), "name": re.escape(body["metadata"]["name"])}
    hits = [i for i, r in enumerate(resources) if _matches(r, target)]
    if not hits:
        raise KustomizeError(f"patch matches no resource: {target}")
    for i in hits:
        patch = copy.deepcopy(body)
        patch.setdefault("metadata", {})["name"] = resources[i]["metadata"]["name"]
        resources[i] = strategic_merge(resources[i], patch, builtin=is_builtin(resources[i]))


def _pod_specs(resource: Resource) -> list[dict[str, Any]]:
    spec = resource.get("spec", {})
    if resource.get("kind") == "Pod":
        return [spec]
    if resource.get("kind") == "CronJob":
        return [spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})]
    template = spec.get("template", {})
    return [template.get("spec", {})] if isinstance(template, dict) and "spec" in template else []


def split_image(ref: str) -> tuple[str, str]:
    """``registry:5000/x/y:tag@sha256:...`` → (``registry:5000/x/y``, ``:tag@sha256:...``)."""
    name, at, digest = ref.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon:] + at + digest
    return name, at + digest


def _apply_images(resources: list[Resource], images: list[dict[str, Any]]) -> None:
    for image in images:
        used = False
        for resource in resources:
            for pod in _pod_specs(resource):
                for container in pod.get("containers", []) + pod.get("initContainers", []):
                    name, suffix = split_image(container.get("image", ""))
                    if name != image["name"]:
                        continue
                    used = True
                    if "newTag" in image:
                        suffix = f":{image['newTag']}"
                    if "digest" in image:
                        suffix = f"@{image['digest']}"
                    container["image"] = image.get("newName", name) + suffix
        if not used:
            raise KustomizeError(f"image {image['name']!r} is used by no container")


def build(directory: Path) -> list[Resource]:
    """Render the kustomization in ``directory`` (recursively) to a list of resources."""
    directory = directory.resolve()
    kfile = directory / "kustomization.yaml"
    if not kfile.exists():
        raise KustomizeError(f"no kustomization.yaml in {directory}")
    kust = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
    unknown = set(kust) - ALLOWED_FIELDS
    if unknown:
        raise KustomizeError(f"{kfile}: unsupported fields {sorted(unknown)}")
    if kust.get("kind", "Kustomization") != "Kustomization":
        raise KustomizeError(f"{kfile}: kind must be Kustomization")

    resources: list[Resource] = []
    for entry in kust.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources.extend(build(path))
        elif path.is_file():
            resources.extend(load_docs(path))
        else:
            raise KustomizeError(f"{kfile}: resource {entry!r} not found")

    for spec in kust.get("patches", []):
        _apply_patch(resources, spec, directory)
    _apply_images(resources, kust.get("images", []))
    namespace = kust.get("namespace")
    if namespace:
        for resource in resources:
            if resource.get("kind") not in CLUSTER_SCOPED:
                resource.setdefault("metadata", {})["namespace"] = namespace

    seen: set[tuple[str, str, str]] = set()
    for resource in resources:
        rid = res_id(resource)
        if rid in seen:
            raise KustomizeError(f"{kfile}: duplicate resource {rid}")
        seen.add(rid)
    return resources
