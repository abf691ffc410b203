"""Routing rules: which series of a ready study go to which workflow step.

Sites differ in what they send (scouts, dose reports, our own SEG/SR coming back), so the
routing is data, not code: a YAML file of rules, checked in full when it is loaded so that a
typo stops the gateway at start-up instead of silently skipping a step at 3 a.m. The first
rule that matches a series decides its steps; ``assemble`` is not routable because it
always runs and collects whatever the other steps produced.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml  # type: ignore[import-untyped,unused-ignore]  # stubs (types-PyYAML) are optional
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from pydantic_core import ErrorDetails

from medgate_common.errors import ConfigError
from medgate_common.schemas.workflow import StepName

ROUTABLE_STEPS: tuple[StepName, ...] = (StepName.iqa, StepName.segmentation, StepName.reasoning)
QualityGate = Literal["enforce", "advisory"]


def _routable(value: object) -> object:
    """Reject ``assemble`` and unknown names with a message that lists what is allowed."""
    if isinstance(value, str) and value in ROUTABLE_STEPS:
        return StepName(value)
    allowed = ", ".join(ROUTABLE_STEPS)
    raise ValueError(f"unknown step {value!r}; routable steps are {allowed} (assemble always runs)")


RoutableStep = Annotated[StepName, BeforeValidator(_routable)]


def _unique_steps(steps: list[StepName]) -> list[StepName]:
    """Duplicates are refused; the rest is put in workflow order, which is how a job runs them."""
    seen = [s for i, s in enumerate(steps) if s in steps[:i]]
    if seen:
        raise ValueError(f"step {seen[0].value!r} is listed twice")
    return sorted(steps, key=ROUTABLE_STEPS.index)


@dataclass(frozen=True, slots=True)
class SeriesFacts:
    """What routing may look at: series-level header values, never patient data."""

    series_uid: str
    modality: str
    body_part: str = ""
    description: str = ""
    num_instances: int = 0


class Match(BaseModel):
    """Conditions on one series; every condition given must hold, none given matches all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    modality: list[str] | None = Field(default=None, min_length=1, description="case-insensitive equality")
    body_part: list[str] | None = Field(default=None, min_length=1, description="case-insensitive globs")
    series_description: str | None = Field(default=None, description="regex searched case-insensitively")
    calling_ae: list[str] | None = Field(default=None, min_length=1, description="exact AE titles")
    min_instances: int | None = Field(default=None, ge=0)

    _description_re: re.Pattern[str] | None = PrivateAttr(default=None)

    @field_validator("modality", "body_part")
    @classmethod
    def _upper(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else [v.strip().upper() for v in values]

    @field_validator("series_description")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value

    def model_post_init(self, context: Any, /) -> None:
        if self.series_description is not None:
            self._description_re = re.compile(self.series_description, re.IGNORECASE)

    def matches(self, series: SeriesFacts, calling_ae: str = "") -> bool:
        if self.modality is not None and series.modality.strip().upper() not in self.modality:
            return False
        if self.body_part is not None:
            part = series.body_part.strip().upper()
            if not any(fnmatch.fnmatchcase(part, pattern) for pattern in self.body_part):
                return False
        if self._description_re is not None and not self._description_re.search(series.description):
            return False
        # DICOM pads AE titles with spaces; the padding is not part of the name.
        if self.calling_ae is not None and calling_ae.strip() not in self.calling_ae:
            return False
        return self.min_instances is None or series.num_instances >= self.min_instances


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    match: Match = Field(default_factory=Match)
    steps: list[RoutableStep]
    quality_gate: QualityGate = "enforce"

    _check_steps = field_validator("steps")(_unique_steps)


class RoutingRules(BaseModel):
    """The routing of a gateway; frozen, so one loaded instance can be shared by every thread."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    rules: list[Rule]
    # ``default`` in the file; the attribute has another name because ``default()`` loads the packaged rules.
    default_steps: list[RoutableStep] = Field(
        default_factory=list, alias="default", description="steps when no rule matches"
    )

    _check_default = field_validator("default_steps")(_unique_steps)

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list[Rule]) -> list[Rule]:
        names = [r.name for r in rules]
        twice = [n for i, n in enumerate(names) if n in names[:i]]
        if twice:
            raise ValueError(f"rule name {twice[0]!r} is used twice; names must be unique")
        return rules

    @classmethod
    def load(cls, path: Path) -> RoutingRules:
        """Read and check a rules file; every problem is a ConfigError naming the file and field."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read routing rules: {exc.strerror or exc}", file=str(path)) from None
        try:
            data = _parse_yaml(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}", file=str(path)) from None
        if not isinstance(data, dict):
            raise ConfigError(
                f"{path}: routing rules must be a mapping with 'rules' (got {type(data).__name__})", file=str(path)
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors()
            fields = [_field(err["loc"]) for err in errors]
            problems = [_describe(err, data) for err in errors]
            raise ConfigError(
                f"{path}: invalid routing rules: {'; '.join(problems)}", file=str(path), fields=fields
            ) from None

    @classmethod
    def default(cls) -> RoutingRules:
        """The rules shipped with the gateway (``default_rules.yaml`` beside this module)."""
        return _packaged_default()

    @classmethod
    def from_settings(cls, path: Path | None) -> RoutingRules:
        return cls.default() if path is None else cls.load(path)


@cache
def _packaged_default() -> RoutingRules:
    with resources.as_file(resources.files(__package__ or "medgate_gateway.workflow") / "default_rules.yaml") as p:
        return RoutingRules.load(p)


def _parse_yaml(text: str) -> object:
    """Safe YAML that refuses a key given twice, which plain YAML resolves by keeping the last."""
    stack = [yaml.compose(text, Loader=yaml.SafeLoader)]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value in seen:
                    raise yaml.MarkedYAMLError(problem=f"key {key.value!r} is given twice", problem_mark=key.start_mark)
                seen.add(key.value)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    data: object = yaml.safe_load(text)
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return str(exc)


def _field(loc: tuple[int | str, ...]) -> str:
    """``rules[1].match.modality`` for pydantic's ``('rules', 1, 'match', 'modality')``."""
    where = ""
    for part in loc:
        if isinstance(part, int):
            where += f"[{part}]"
        elif not part.startswith("function-"):  # pydantic's name for a validator step
            where += f".{part}" if where else part
    return where or "file"


def _describe(err: ErrorDetails, data: dict[str, Any]) -> str:
    """``rules[1].match.modality (rule 'ct'): <message>``: the rule's name finds it faster than its index."""
    name = _rule_name(data, err["loc"])
    where = _field(err["loc"]) + (f" (rule {name!r})" if name else "")
    message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
    return f"{where}: {message}"


def _rule_name(data: dict[str, Any], loc: tuple[int | str, ...]) -> str | None:
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rules = data.get("rules")
        if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
            name = rules[loc[1]].get("name")
            return name if isinstance(name, str) else None
    return None


class SeriesDecision(BaseModel):
    series_uid: str
    modality: str
    description: str
    rule: str | None = Field(description="the rule that matched; None when the default applied")
    steps: list[StepName]


class WorkflowPlan(BaseModel):
    """The routing of one study, stored with its job and shown by ``medgate workflow plan``."""

    series: list[SeriesDecision]
    steps: dict[StepName, list[str]] = Field(description="routable step -> series UIDs; empty means skipped")
    quality_gate: QualityGate

    def summary(self) -> str:
        header = ("series", "modality", "description", "rule", "steps")
        rows = [
            (
                _short_uid(d.series_uid),
                d.modality or "-",
                d.description or "-",
                d.rule or "(default)",
                ", ".join(d.steps) or "none",
            )
            for d in self.series
        ]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
        lines = [
            "  ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)), r[-1]]) for r in [header, *rows]
        ]
        if not rows:
            lines.append("(no series)")
        lines.append("")
        step_width = max(len(s) for s in self.steps) if self.steps else 0
        for step, uids in self.steps.items():
            lines.append(f"{step.value.ljust(step_width)}  {f'{len(uids)} series' if uids else 'skipped'}")
        lines.append(f"quality gate: {self.quality_gate}")
        return "\n".join(lines)


def _short_uid(uid: str, keep: int = 8) -> str:
    return uid if len(uid) <= 2 * keep + 1 else f"{uid[:keep]}…{uid[-keep:]}"


def plan_study(rules: RoutingRules, series: Sequence[SeriesFacts], calling_ae: str = "") -> WorkflowPlan:
    """Route every series by the first rule that matches it, else by the rules' default.

    The quality gate is ``enforce`` when any series sent to IQA came through an enforcing
    rule: a poor image must then stop the job. Series routed by the default, or plans
    without IQA, are advisory because no rule asked for the gate.
    """
    decisions: list[SeriesDecision] = []
    steps: dict[StepName, list[str]] = {s: [] for s in ROUTABLE_STEPS}
    enforce = False
    for facts in series:
        rule = next((r for r in rules.rules if r.match.matches(facts, calling_ae)), None)
        chosen = list(rule.steps if rule else rules.default_steps)
        decisions.append(
            SeriesDecision(
                series_uid=facts.series_uid,
                modality=facts.modality,
                description=facts.description,
                rule=rule.name if rule else None,
                steps=chosen,
            )
        )
        for step in chosen:
            steps[step].append(facts.series_uid)
        if rule is not None and rule.quality_gate == "enforce" and StepName.iqa in chosen:
            enforce = True
    return WorkflowPlan(series=decisions, steps=steps, quality_gate="enforce" if enforce else "advisory")
