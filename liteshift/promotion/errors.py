"""Typed errors of the promotion engine; `str()` is one line a person can act on."""

from __future__ import annotations

from liteshift.errors import LiteshiftError


class PromotionError(LiteshiftError):
    """Base class of every error the promotion engine raises on purpose."""

    code = "promotion_error"


class BadPromotionSetting(PromotionError):
    """A promotion setting (window, cooldown, threshold, policy) that cannot be used."""

    code = "bad_promotion_setting"

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid {field}: {reason}")


class MetricsUnavailable(PromotionError):
    """Prometheus cannot answer: unreachable, an error, or no data for a query."""

    code = "metrics_unavailable"

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(detail)


class LooseData(PromotionError):
    """Values SQLite accepted that Postgres would reject or change: the promotion refuses."""

    code = "loose_data"

    def __init__(self, report: object, summary: str) -> None:
        self.report = report
        super().__init__(summary)


class VerificationFailed(PromotionError):
    """Row counts or checksums differ between SQLite and Postgres after the copy."""

    code = "verification_failed"

    def __init__(self, tables: list[str], detail: str) -> None:
        self.tables = tables
        super().__init__(detail)


class TargetNotEmpty(PromotionError):
    """The Postgres tables already hold rows; copying would mix two data sets."""

    code = "target_not_empty"

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        rows = ", ".join(f"{t}={n}" for t, n in counts.items() if n)
        super().__init__(
            f"the target Postgres already has rows ({rows}); promote into an empty database"
        )


class ReadinessFailed(PromotionError):
    """A readiness check failed: no data moves until it passes."""

    code = "readiness_failed"

    def __init__(self, failed: list[str], detail: str) -> None:
        self.failed = failed
        super().__init__(detail)


class InvalidPromotionTransition(PromotionError):
    """An event that does not apply to the promotion's current state."""

    code = "invalid_promotion_transition"

    def __init__(self, state: str, event: str, detail: str = "") -> None:
        self.state = state
        self.event = event
        super().__init__(
            f"promotion in state {state} cannot take {event}" + (f": {detail}" if detail else "")
        )


class AlreadyPromoted(PromotionError):
    """The SQLite file carries the promoted marker: it is the read-only rollback point."""

    code = "already_promoted"

    def __init__(self, path: str, target: str | None) -> None:
        self.path = path
        self.target = target
        super().__init__(
            f"{path} was already promoted to {target or 'Postgres'}; it is read-only now "
            "(the rollback point) and cannot be promoted or aborted again"
        )


class PromotionAborted(PromotionError):
    """The run was stopped on request (`OnlinePromotion.cancel()` or `abort()`)."""

    code = "aborted"

    def __init__(self) -> None:
        super().__init__("the promotion was aborted on request; SQLite stays the primary")


class PromotionNotPrepared(PromotionError):
    """`finish()` without a completed `prepare()` on the same object."""

    code = "promotion_not_prepared"

    def __init__(self) -> None:
        super().__init__("finish() needs a completed prepare() on the same OnlinePromotion")
