"""Parsing a Datastore: defaults, readable errors, the cross-field rules."""

from __future__ import annotations

import pytest

from liteshift.operator.model import Datastore, InvalidSpecError


def parse(spec: object, name: str = "shop") -> Datastore:
    meta = {"name": name, "namespace": "apps", "uid": "u", "generation": 4}
    return Datastore.parse({"metadata": meta, "spec": spec})


def test_identity_and_defaults() -> None:
    store = parse({})
    assert (store.name, store.namespace, store.uid, store.generation) == ("shop", "apps", "u", 4)
    assert store.spec.engine == "sqlite"
    assert store.spec.sqlite.storage.size == "1Gi"
    assert store.spec.promotion.policy == "manual"
    assert store.spec.reclaim_policy == "Retain"


def test_integer_quantities_are_accepted() -> None:
    assert parse({"sqlite": {"storage": {"size": 1073741824}}}).spec.sqlite.storage.size == (
        "1073741824"
    )


def test_errors_name_the_field_in_camel_case() -> None:
    with pytest.raises(InvalidSpecError) as raised:
        parse({"sqlite": {"storage": {"storageClass": "x"}}, "engine": "mysql"})
    problems = raised.value.problems
    assert "spec.sqlite.storage.storageClass: unknown field" in problems
    assert any(
        p.startswith("spec.engine: Input should be 'sqlite' or 'postgres'") for p in problems
    )
    assert "\n" not in str(raised.value)


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(InvalidSpecError) as raised:
        parse({"replicas": 2, "promotion": {"policy": "off"}, "media": {"enabled": True}})
    assert len(raised.value.problems) == 2


def test_bad_name() -> None:
    with pytest.raises(InvalidSpecError, match="DNS label"):
        parse({}, name="Shop_1")
