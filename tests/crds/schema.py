"""What the API server does with a CRD schema, done in Python for tests.

- `structural_problems`: the structural-schema rules of apiextensions.k8s.io/v1;
- `apply_defaults`: defaulting (a default applies where the parent object exists);
- `validate`: OpenAPI validation with strict field validation (unknown fields rejected, as
  `kubectl apply` does by default since 1.27), then every CEL rule evaluated by cel-python.

The real API server runs the same CRDs in the control-plane tests (issue 8).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRDS = {
    "Datastore": ROOT / "crds" / "datastores.liteshift.io.yaml",
    "DatastoreBackup": ROOT / "crds" / "datastorebackups.liteshift.io.yaml",
}

_ALLOWED_KEYS = {
    "type", "description", "properties", "required", "items", "additionalProperties",
    "default", "enum", "pattern", "minimum", "maximum", "minLength", "maxLength",
    "minItems", "maxItems", "format", "anyOf", "nullable", "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-validations", "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
}  # fmt: skip


def load_crd(kind: str) -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load(CRDS[kind].read_text())
    return crd


def version_schema(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in (schema.get("properties") or {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def structural_problems(schema: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for path, node in walk(schema):
        unknown = set(node) - _ALLOWED_KEYS
        if unknown:
            problems.append(f"{path or '<root>'}: keys not allowed in a CRD schema: {unknown}")
        int_or_string = node.get("x-kubernetes-int-or-string") is True
        if "type" not in node and not int_or_string and path != ".metadata":
            problems.append(f"{path}: no type (a structural schema types every node)")
        if int_or_string and "type" in node:
            problems.append(f"{path}: int-or-string must not set a type")
        if int_or_string and node.get("anyOf") not in (
            None,
            [{"type": "integer"}, {"type": "string"}],
        ):
            problems.append(f"{path}: int-or-string anyOf must be [integer, string]")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{path}: properties and additionalProperties are exclusive")
        if path == ".metadata" and set(node) - {"type"}:
            problems.append(".metadata: only `type: object` is allowed at the root")
        if node.get("type") == "array" and "items" not in node:
            problems.append(f"{path}: an array needs items")
        if node.get("x-kubernetes-list-type") == "map":
            keys = node.get("x-kubernetes-list-map-keys") or []
            required = set(node["items"].get("required") or [])
            if not keys or not set(keys) <= required:
                problems.append(f"{path}: list-map keys must be required fields of the items")
        if "default" in node:
            try:
                _strict_validator(node).validate(node["default"])
            except jsonschema.ValidationError as exc:
                problems.append(f"{path}: default {node['default']!r} is invalid: {exc.message}")
    return problems


def apply_defaults(schema: dict[str, Any], obj: Any) -> Any:
    """Defaults where the API server would put them: missing fields of present objects."""
    if not isinstance(obj, dict):
        if isinstance(obj, list) and isinstance(schema.get("items"), dict):
            return [apply_defaults(schema["items"], item) for item in obj]
        return obj
    out = dict(obj)
    for name, sub in (schema.get("properties") or {}).items():
        if name not in out and "default" in sub:
            out[name] = copy.deepcopy(sub["default"])
        if name in out:
            out[name] = apply_defaults(sub, out[name])
    return out


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema for jsonschema: unknown fields rejected, x-kubernetes keys dropped."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes"):
            continue
        if key == "properties":
            out[key] = {name: _strict(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _strict(value)
        else:
            out[key] = value
    if "properties" in schema and "additionalProperties" not in schema:
        out["additionalProperties"] = False
    return out


def _strict_validator(schema: dict[str, Any]) -> jsonschema.Validator:
    strict = _strict(schema)
    validator: jsonschema.Validator = jsonschema.Draft202012Validator(
        strict, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return validator


def cel_rules(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(path, rule, node) for every x-kubernetes-validations rule in the schema."""
    for path, node in walk(schema):
        for rule in node.get("x-kubernetes-validations") or []:
            yield path, rule, node


def _at(obj: Any, path: str) -> Any:
    node = obj
    for part in path.strip(".").split("."):
        if not part:
            continue
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@functools.cache
def _program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def evaluate_cel(rule: str, value: Any, old: Any = None) -> bool:
    program = _program(rule)
    activation = {"self": celpy.json_to_cel(value)}
    if old is not None:
        activation["oldSelf"] = celpy.json_to_cel(old)
    return bool(program.evaluate(activation))


def validate(kind: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """What the API server would say about `obj` (after defaulting): [] when it is accepted."""
    schema = version_schema(load_crd(kind))
    defaulted = apply_defaults(schema, obj)
    problems = [
        f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in _strict_validator(schema).iter_errors(defaulted)
    ]
    if problems:
        return problems  # like the API server: CEL runs only on schema-valid objects
    old_defaulted = apply_defaults(schema, old) if old is not None else None
    for path, rule, _ in cel_rules(schema):
        value = _at(defaulted, path)
        if value is None:
            continue
        uses_old = "oldSelf" in rule["rule"]
        if uses_old and old_defaulted is None:
            continue  # transition rules run on updates only
        previous = _at(old_defaulted, path) if uses_old else None
        if not evaluate_cel(rule["rule"], value, previous):
            problems.append(f"{path.lstrip('.')}: {rule['message']}")
    return problems
