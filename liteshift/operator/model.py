"""The typed `Datastore`: parse and validate a custom resource into frozen models.

The API server validates the CRD's OpenAPI schema and CEL rules before the operator ever sees an
object, but defaults and rules must also hold where no API server checked them (an emulator, an
older CRD left installed, `kubectl --validate=false`). So the models repeat the CRD's defaults,
and `Datastore.parse` repeats its cross-field rules; tests keep both in step with
crds/datastores.liteshift.io.yaml.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from liteshift.errors import LiteshiftError

GROUP = "liteshift.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Datastore"
PLURAL = "datastores"
BACKUP_KIND = "DatastoreBackup"
BACKUP_PLURAL = "datastorebackups"

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_RESOURCE_QUANTITY = re.compile(
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_DURATION = re.compile(r"^([0-9]+(s|m|h))+$")
_RETENTION_AGE = re.compile(r"^[0-9]+(s|m|h|d)$")
_CRON = re.compile(r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$")
_SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# Children are named `<datastore>-postgres` and so on; 52 keeps every derived name a valid
# DNS label and leaves room for the StatefulSet controller's pod and PVC suffixes.
MAX_NAME_LENGTH = 52


class InvalidSpecError(LiteshiftError):
    """A Datastore whose spec breaks the schema or a cross-field rule; `problems` lists each."""

    code = "invalid_spec"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


def _int_to_str(value: object) -> object:
    # Quantities are int-or-string in the CRD: `size: 1073741824` is as valid as `size: 1Gi`.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Quantity = Annotated[str, BeforeValidator(_int_to_str)]


class Resources(_Model):
    requests: dict[str, Quantity] = Field(default_factory=dict)
    limits: dict[str, Quantity] = Field(default_factory=dict)


class Storage(_Model):
    size: Quantity = "1Gi"
    storage_class_name: str | None = None


class SQLite(_Model):
    storage: Storage = Storage()
    synchronous: Literal["FULL", "NORMAL"] = "FULL"


class ManagedPostgres(_Model):
    image: str = "docker.io/library/postgres:16.4"
    storage: Storage = Storage(size="10Gi")
    resources: Resources | None = None


class SecretKeyRef(_Model):
    name: str
    key: str = "dsn"


class ExternalPostgres(_Model):
    dsn_secret_ref: SecretKeyRef | None = None


class Postgres(_Model):
    mode: Literal["none", "managed", "external"] = "none"
    managed: ManagedPostgres = ManagedPostgres()
    external: ExternalPostgres | None = None


class Media(_Model):
    enabled: bool = False


class Retention(_Model):
    keep_last: int = Field(default=7, ge=1, le=1000)
    max_age: str | None = None


class Backup(_Model):
    enabled: bool = True
    schedule: str = "0 3 * * *"
    verify: Literal["quick", "full"] = "quick"
    compression: Literal["none", "gzip", "zstd"] = "zstd"
    retention: Retention = Retention()
    storage: Storage = Storage(size="5Gi")


class Prometheus(_Model):
    url: str | None = None


class Thresholds(_Model):
    lock_wait_p95_seconds: float = Field(default=0.05, ge=0)
    write_latency_p99_seconds: float = Field(default=0.25, ge=0)
    busy_errors_per_second: float = Field(default=1, ge=0)
    database_size: Quantity = "8Gi"


class Promotion(_Model):
    policy: Literal["auto", "manual", "off"] = "manual"
    prometheus: Prometheus = Prometheus()
    window: str = "10m"
    cooldown: str = "30m"
    thresholds: Thresholds = Thresholds()


class SecretRef(_Model):
    name: str


class Auth(_Model):
    secret_ref: SecretRef | None = None


class DatastoreSpec(_Model):
    """`spec` of a Datastore, with the CRD's defaults filled in."""

    image: str | None = Field(default=None, min_length=1, max_length=512)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    replicas: int = Field(default=1, ge=1, le=20)
    engine: Literal["sqlite", "postgres"] = "sqlite"
    sqlite: SQLite = SQLite()
    postgres: Postgres = Postgres()
    media: Media = Media()
    backup: Backup = Backup()
    promotion: Promotion = Promotion()
    auth: Auth = Auth()
    resources: Resources | None = None
    reclaim_policy: Literal["Retain", "Delete"] = "Retain"


class Datastore(_Model):
    """A parsed, validated Datastore: identity plus spec."""

    name: str
    namespace: str
    uid: str
    generation: int = 1
    spec: DatastoreSpec

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> Datastore:
        """Parse a Datastore object (as kopf or the API returns it); raise `InvalidSpecError`."""
        meta = body.get("metadata") or {}
        try:
            spec = DatastoreSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            raise InvalidSpecError([_describe(error) for error in exc.errors()]) from None
        problems = [*_name_problems(str(meta.get("name", ""))), *spec_problems(spec)]
        if problems:
            raise InvalidSpecError(problems)
        return cls(
            name=meta["name"],
            namespace=meta.get("namespace") or "default",
            uid=meta.get("uid") or "",
            generation=int(meta.get("generation") or 1),
            spec=spec,
        )


def spec_problems(spec: DatastoreSpec) -> list[str]:
    """The problems of a spec beyond field types: patterns and the CRD's cross-field rules.

    Each cross-field message is the same text as the CEL rule's message in the CRD, so a person
    sees one explanation whichever side caught it.
    """
    problems: list[str] = []
    for path, value in _quantities(spec):
        if not _QUANTITY.match(value):
            problems.append(f"spec.{path}: {value!r} is not a size such as 1Gi or 500Mi")
    for path, resources in (
        ("resources", spec.resources),
        ("postgres.managed.resources", spec.postgres.managed.resources),
    ):
        if resources is None:
            continue
        for part, values in (("requests", resources.requests), ("limits", resources.limits)):
            for key, value in values.items():
                if not _RESOURCE_QUANTITY.match(value):
                    problems.append(f"spec.{path}.{part}.{key}: {value!r} is not a quantity")
    for path, value in (("promotion.window", spec.promotion.window),
                        ("promotion.cooldown", spec.promotion.cooldown)):  # fmt: skip
        if not _DURATION.match(value):
            problems.append(f"spec.{path}: {value!r} is not a duration such as 10m or 1h30m")
    if spec.backup.retention.max_age is not None and not _RETENTION_AGE.match(
        spec.backup.retention.max_age
    ):
        problems.append(
            f"spec.backup.retention.maxAge: {spec.backup.retention.max_age!r} is not an age"
            " such as 720h or 30d"
        )
    if not _CRON.match(spec.backup.schedule):
        problems.append(
            f"spec.backup.schedule: {spec.backup.schedule!r} is not a cron schedule"
            " (five fields) or a macro such as @daily"
        )
    url = spec.promotion.prometheus.url
    if url is not None and not re.match(r"^https?://[^\s]+$", url):
        problems.append(f"spec.promotion.prometheus.url: {url!r} is not an http(s) URL")
    for path, name in (
        ("auth.secretRef.name", spec.auth.secret_ref.name if spec.auth.secret_ref else None),
        (
            "postgres.external.dsnSecretRef.name",
            spec.postgres.external.dsn_secret_ref.name
            if spec.postgres.external and spec.postgres.external.dsn_secret_ref
            else None,
        ),
    ):
        if name is not None and not _SECRET_NAME.match(name):
            problems.append(f"spec.{path}: {name!r} is not a valid Secret name")

    # The CEL rules of the CRD, one for one.
    if spec.replicas > 1 and spec.engine != "postgres" and spec.promotion.policy == "off":
        problems.append(
            "spec.replicas: replicas > 1 needs Postgres: set engine: postgres, or a promotion"
            " policy other than off (SQLite serves from one pod)"
        )
    if spec.postgres.mode == "external" and not (
        spec.postgres.external and spec.postgres.external.dsn_secret_ref
    ):
        problems.append(
            "spec.postgres.mode: postgres.mode external requires"
            " postgres.external.dsnSecretRef (a Secret holding the DSN)"
        )
    if spec.media.enabled and spec.postgres.mode == "none":
        problems.append(
            "spec.media.enabled: media.enabled requires postgres.mode managed or external"
            " (media tables live in Postgres)"
        )
    if spec.promotion.policy == "auto" and not spec.promotion.prometheus.url:
        problems.append(
            "spec.promotion.policy: promotion.policy auto requires promotion.prometheus.url"
            " (no metrics, no automatic promotion)"
        )
    return problems


def _quantities(spec: DatastoreSpec) -> list[tuple[str, str]]:
    return [
        ("sqlite.storage.size", spec.sqlite.storage.size),
        ("postgres.managed.storage.size", spec.postgres.managed.storage.size),
        ("backup.storage.size", spec.backup.storage.size),
        ("promotion.thresholds.databaseSize", spec.promotion.thresholds.database_size),
    ]


def _name_problems(name: str) -> list[str]:
    if not _DNS_LABEL.match(name):
        return [f"metadata.name: {name!r} must be a DNS label (lower case letters, digits, '-')"]
    if len(name) > MAX_NAME_LENGTH:
        return [f"metadata.name: {name!r} is longer than {MAX_NAME_LENGTH} characters"]
    return []


def _describe(error: Mapping[str, Any]) -> str:
    path = ".".join(to_camel(str(part)) if isinstance(part, str) else f"[{part}]"
                    for part in error["loc"])  # fmt: skip
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    return f"spec.{path}: {message}"
