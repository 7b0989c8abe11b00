"""Protected attributes: which column holds each one, its named groups (values, or
numeric bins by edges) and the thresholds its bias metrics are graded by
(``ml.fairness``). An attribute is configured by name (created or replaced), listed,
and retired (kept, inactive: past audits still name it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ml.fairness import (
    DEFAULT_THRESHOLDS,
    METRICS,
    CategoricalGroup,
    Group,
    Level,
    NumericBin,
    check_groups,
)
from ml.fairness.metrics import LOWER_IS_WORSE
from shared.errors import NotFound, ValidationFailed
from shared.ports import Duplicate
from shared.services.fairness_commands import (
    AttributeQuery,
    ConfigureAttribute,
    ConfiguredAttribute,
    GroupConfig,
    GroupView,
    LevelConfig,
    ProtectedAttributeView,
)
from shared.services.pagination import Page, check_page
from shared.timefmt import iso

if TYPE_CHECKING:
    from shared.db.models import ProtectedAttribute
    from shared.ports import Transactions

_BOUND_FIELD = {"low": "min", "high": "max"}  # ml's names, the API's names


@dataclass(frozen=True)
class AttributeSpec:
    """An active attribute as an audit takes it."""

    attribute_name: str
    column_name: str
    groups: tuple[Group, ...]
    thresholds: dict[str, Level]


class ProtectedAttributes:
    def __init__(self, uow: Transactions) -> None:
        self.uow = uow

    def list_attributes(self, query: AttributeQuery) -> Page[ProtectedAttributeView]:
        check_page(query.page, query.page_size)
        with self.uow() as tx:
            found = tx.protected_attributes.page(
                query.page, query.page_size, query.active
            )
            items = [_view(a) for a in found.items]
        return Page(items, found.page, found.page_size, found.total)

    def configure(self, cmd: ConfigureAttribute) -> ConfiguredAttribute:
        """Checked whole before anything is written; a 422 names the field."""
        # a data column is matched exactly as named, surrounding blanks included
        name, column = cmd.attribute_name.strip(), cmd.column_name
        details = _check_names(name, column)
        groups = _check_groups(cmd.groups, details)
        thresholds = _check_thresholds(cmd.thresholds, details)
        if details:
            raise ValidationFailed("The protected attribute is not valid.", details)
        stored = [_group_json(g) for g in groups]
        levels = {
            m: {"warning": t.warning, "critical": t.critical}
            for m, t in thresholds.items()
        }
        try:
            return self._write(name, column, stored, levels, cmd.is_active)
        except Duplicate:  # created meanwhile by another request: replace it
            return self._write(name, column, stored, levels, cmd.is_active)

    def _write(
        self,
        name: str,
        column: str,
        groups: list[dict[str, Any]],
        thresholds: dict[str, dict[str, float]],
        is_active: bool,
    ) -> ConfiguredAttribute:
        from shared.db.models import ProtectedAttribute

        with self.uow(write=True) as tx:
            row = tx.protected_attributes.get(name)
            created = row is None
            if row is None:
                row = ProtectedAttribute(attribute_name=name)
                tx.protected_attributes.add(row)
            row.column_name = column
            row.groups = groups
            row.thresholds = thresholds
            row.is_active = is_active
            tx.flush()
            view = _view(row)
        return ConfiguredAttribute(**vars(view), created=created)

    def retire(self, attribute_name: str) -> ProtectedAttributeView:
        """Inactive from now on (audits leave it out); retiring twice is no error."""
        with self.uow(write=True) as tx:
            row = tx.protected_attributes.get(attribute_name)
            if row is None:
                raise NotFound(f"No protected attribute {attribute_name!r}.")
            row.is_active = False
            tx.flush()
            return _view(row)

    def active(self) -> list[AttributeSpec]:
        """The attributes an audit covers, by name."""
        with self.uow() as tx:
            rows = tx.protected_attributes.active()
            return [
                AttributeSpec(
                    a.attribute_name,
                    a.column_name,
                    tuple(_group(g) for g in a.groups),
                    {
                        m: Level(float(t["warning"]), float(t["critical"]))
                        for m, t in _stored_levels(a.thresholds).items()
                    },
                )
                for a in rows
            ]


def _check_names(name: str, column: str) -> list[dict[str, Any]]:
    details = []
    if not name:
        details.append({"field": "attribute_name", "message": "must not be empty"})
    if not column:
        details.append({"field": "column_name", "message": "must not be empty"})
    return details


def _check_groups(
    configs: Sequence[GroupConfig], details: list[dict[str, Any]]
) -> list[Group]:
    if not configs:
        details.append({"field": "groups", "message": "at least one group is required"})
        return []
    groups: list[Group] = []
    for i, g in enumerate(configs):
        bounded = g.low is not None or g.high is not None
        if (g.values is None) == (not bounded):
            details.append(
                {
                    "field": f"groups.{i}",
                    "message": "give either values or a bin's min and/or max",
                }
            )
            continue
        if g.values is not None:
            groups.append(CategoricalGroup(g.name.strip(), tuple(g.values)))
        else:
            groups.append(NumericBin(g.name.strip(), g.low, g.high))
    if len(groups) < len(configs):
        return groups
    for problem in check_groups(groups):
        where = "groups" if problem.index < 0 else f"groups.{problem.index}"
        part = _BOUND_FIELD.get(problem.field, problem.field)
        field = f"{where}.{part}" if part else where
        details.append({"field": field, "message": problem.message})
    for i, group in enumerate(groups):
        if not group.name:
            details.append(
                {"field": f"groups.{i}.name", "message": "must not be empty"}
            )
    return groups


def _check_thresholds(
    given: Mapping[str, LevelConfig], details: list[dict[str, Any]]
) -> dict[str, Level]:
    levels = dict(DEFAULT_THRESHOLDS)
    for metric, level in given.items():
        if metric not in METRICS:
            details.append(
                {
                    "field": f"thresholds.{metric}",
                    "message": f"unknown metric; known: {', '.join(METRICS)}",
                }
            )
            continue
        for part in ("warning", "critical"):
            value = getattr(level, part)
            if not 0.0 <= value <= 1.0:
                details.append(
                    {
                        "field": f"thresholds.{metric}.{part}",
                        "message": "must be between 0 and 1",
                    }
                )
        lower = metric in LOWER_IS_WORSE
        if (
            (level.critical > level.warning)
            if lower
            else (level.critical < level.warning)
        ):
            side = "at most" if lower else "at least"
            details.append(
                {
                    "field": f"thresholds.{metric}.critical",
                    "message": f"must be {side} the warning threshold",
                }
            )
        levels[metric] = Level(level.warning, level.critical)
    return levels


def _group_json(g: Group) -> dict[str, Any]:
    if isinstance(g, CategoricalGroup):
        return {"name": g.name, "values": list(g.values)}
    return {"name": g.name, "min": g.low, "max": g.high}


def _group(stored: Mapping[str, Any]) -> Group:
    if "values" in stored:
        return CategoricalGroup(str(stored["name"]), tuple(stored["values"]))
    return NumericBin(str(stored["name"]), stored.get("min"), stored.get("max"))


def _stored_levels(stored: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    defaults = {
        m: {"warning": lv.warning, "critical": lv.critical}
        for m, lv in DEFAULT_THRESHOLDS.items()
    }
    return {**defaults, **(stored or {})}


def _view(a: ProtectedAttribute) -> ProtectedAttributeView:
    groups = list(a.groups or [])
    return ProtectedAttributeView(
        id=str(a.id),
        attribute_name=a.attribute_name,
        column_name=a.column_name,
        kind="categorical" if groups and "values" in groups[0] else "numeric",
        groups=[
            GroupView(g["name"], g.get("values"), g.get("min"), g.get("max"))
            for g in groups
        ],
        thresholds={
            m: LevelConfig(float(t["warning"]), float(t["critical"]))
            for m, t in _stored_levels(a.thresholds).items()
        },
        is_active=bool(a.is_active),
        created_at=iso(a.created_at),
    )
