"""Routing rules: what each series of a study is sent to, how a bad rules file fails, the dry run."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
import typer
from pydicom.uid import generate_uid
from typer.testing import CliRunner

from medgate_common.cli import build_app
from medgate_common.errors import ConfigError, InputError, NotFoundError
from medgate_common.schemas.workflow import StepName
from medgate_common.synth import generate_study, write_dataset
from medgate_gateway.context import GatewayContext
from medgate_gateway.ingest.ingestor import Source
from medgate_gateway.workflow.plan_cli import add_plan_command, plan_for_study, read_dicom_series
from medgate_gateway.workflow.rules import Match, RoutingRules, SeriesFacts, WorkflowPlan, plan_study

ALL = [StepName.iqa, StepName.segmentation, StepName.reasoning]


def facts(modality: str = "CT", **kw: object) -> SeriesFacts:
    uid = str(kw.pop("series_uid", generate_uid()))
    return SeriesFacts(series_uid=uid, modality=modality, **kw)  # type: ignore[arg-type]


def rules_from(text: str, tmp_path: Path) -> RoutingRules:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return RoutingRules.load(path)


# -- the packaged rules ------------------------------------------------------------------------


@pytest.mark.parametrize("modality", ["CT", "MR", "ct"])
def test_default_rules_send_ct_and_mr_to_every_step(modality: str) -> None:
    series = facts(modality, description="Axial 3mm", num_instances=120)
    plan = plan_study(RoutingRules.default(), [series])
    assert plan.series[0].steps == ALL
    assert plan.series[0].rule == modality.lower()
    assert plan.steps == {step: [series.series_uid] for step in ALL}
    assert plan.quality_gate == "enforce"


@pytest.mark.parametrize("modality", ["SEG", "SR", "PR", "KO", "REG", "RTSTRUCT", "DOC", "OT"])
def test_default_rules_never_process_derived_objects(modality: str) -> None:
    plan = plan_study(RoutingRules.default(), [facts(modality)])
    assert plan.series[0].rule == "derived-objects"
    assert plan.series[0].steps == []
    assert plan.steps == {step: [] for step in ALL}
    assert plan.quality_gate == "advisory"


@pytest.mark.parametrize("description", ["Localizer", "SCOUT 0.6", "Topogram  0.6  T20f", "Surview", "3-pl localiser"])
def test_default_rules_skip_localizers(description: str) -> None:
    scout, axial = facts("CT", description=description), facts("CT", description="Thorax 1.0 B31f")
    plan = plan_study(RoutingRules.default(), [scout, axial])
    assert [(d.rule, d.steps) for d in plan.series] == [("localizers", []), ("ct", ALL)]
    assert plan.steps[StepName.iqa] == [axial.series_uid]


def test_default_rules_leave_other_modalities_to_the_default_of_none() -> None:
    plan = plan_study(RoutingRules.default(), [facts("US"), facts("XA")])
    assert [(d.rule, d.steps) for d in plan.series] == [(None, []), (None, [])]
    assert all(uids == [] for uids in plan.steps.values())


def test_from_settings_is_the_packaged_default_unless_a_path_is_given(tmp_path: Path) -> None:
    assert RoutingRules.from_settings(None) == RoutingRules.default()
    own = rules_from("rules: []\ndefault: [iqa]\n", tmp_path)
    assert RoutingRules.from_settings(tmp_path / "rules.yaml") == own
    assert own.default_steps == [StepName.iqa]


# -- matching --------------------------------------------------------------------------------------


def test_first_matching_rule_wins(tmp_path: Path) -> None:
    rules = rules_from(
        """
rules:
  - {name: ct-head, match: {modality: [CT], body_part: [HEAD]}, steps: [iqa]}
  - {name: ct, match: {modality: [CT]}, steps: [iqa, segmentation, reasoning]}
  - {name: head-anything, match: {body_part: [HEAD]}, steps: [reasoning]}
""",
        tmp_path,
    )
    head, chest, mr_head = facts("CT", body_part="HEAD"), facts("CT", body_part="CHEST"), facts("MR", body_part="HEAD")
    plan = plan_study(rules, [head, chest, mr_head])
    assert [(d.rule, d.steps) for d in plan.series] == [
        ("ct-head", [StepName.iqa]),
        ("ct", ALL),
        ("head-anything", [StepName.reasoning]),
    ]
    assert plan.steps == {
        StepName.iqa: [head.series_uid, chest.series_uid],
        StepName.segmentation: [chest.series_uid],
        StepName.reasoning: [chest.series_uid, mr_head.series_uid],
    }


def test_modality_is_case_insensitive() -> None:
    match = Match(modality=["mr"])
    assert match.matches(facts("MR")) and match.matches(facts("mr "))
    assert not match.matches(facts("CT"))


@pytest.mark.parametrize(
    ("pattern", "body_part", "expected"),
    [
        ("CHEST", "chest", True),
        ("*CHEST*", "CHEST_TO_PELVIS", True),
        ("abd*", "ABDOMEN", True),
        ("abd*", "PELVIS", False),
        ("H?AD", "HEAD", True),
        ("CHEST", "", False),
    ],
)
def test_body_part_is_a_case_insensitive_glob(pattern: str, body_part: str, expected: bool) -> None:
    assert Match(body_part=[pattern]).matches(facts(body_part=body_part)) is expected


@pytest.mark.parametrize(
    ("regex", "description", "expected"),
    [
        ("t1", "Ax T1 SE", True),  # searched, not matched from the start, case ignored
        (r"^ax\b", "Ax T1 SE", True),
        (r"^ax\b", "Sag T1", False),
        (r"(?<!non-)contrast", "non-contrast", False),
        (r"(?<!non-)contrast", "post contrast", True),
    ],
)
def test_series_description_is_a_case_insensitive_regex_search(regex: str, description: str, expected: bool) -> None:
    assert Match(series_description=regex).matches(facts(description=description)) is expected


def test_calling_ae_is_exact_and_case_sensitive_but_ignores_dicom_padding() -> None:
    match = Match(calling_ae=["CT_ROOM1", "CT_ROOM2"])
    assert match.matches(facts(), "CT_ROOM2")
    assert match.matches(facts(), "CT_ROOM1  ")
    assert not match.matches(facts(), "ct_room1")
    assert not match.matches(facts(), "CT_ROOM")
    assert not match.matches(facts(), "")


def test_min_instances() -> None:
    match = Match(min_instances=20)
    assert match.matches(facts(num_instances=20))
    assert not match.matches(facts(num_instances=19))


def test_every_given_condition_must_hold_and_none_given_matches_all() -> None:
    match = Match(modality=["CT"], body_part=["CHEST"], calling_ae=["CT1"], min_instances=10)
    good = facts("CT", body_part="CHEST", num_instances=10)
    assert match.matches(good, "CT1")
    assert not match.matches(good, "CT2")
    assert not match.matches(facts("CT", body_part="HEAD", num_instances=10), "CT1")
    assert not match.matches(facts("CT", body_part="CHEST", num_instances=9), "CT1")
    assert Match().matches(facts("XA"), "")


def test_plan_study_passes_the_calling_ae_to_the_rules(tmp_path: Path) -> None:
    rules = rules_from(
        """
rules:
  - {name: research-scanner, match: {calling_ae: [RESEARCH]}, steps: []}
  - {name: ct, match: {modality: [CT]}, steps: [iqa]}
""",
        tmp_path,
    )
    series = facts("CT")
    assert plan_study(rules, [series], calling_ae="RESEARCH").series[0].rule == "research-scanner"
    assert plan_study(rules, [series], calling_ae="CLINIC").series[0].rule == "ct"


# -- the plan ----------------------------------------------------------------------------------------


def test_skipped_steps_are_present_with_no_series_and_steps_keep_input_order(tmp_path: Path) -> None:
    rules = rules_from("rules:\n  - {name: any, steps: [reasoning, iqa]}\n", tmp_path)
    first, second = facts("CT"), facts("MR")
    plan = plan_study(rules, [first, second])
    assert list(plan.steps) == ALL
    assert plan.steps[StepName.segmentation] == []
    assert plan.steps[StepName.iqa] == [first.series_uid, second.series_uid]
    assert plan.series[0].steps == [StepName.iqa, StepName.reasoning]  # workflow order, as the job runs them
    assert plan_study(rules, []).steps == {step: [] for step in ALL}


QUALITY_RULES = """
rules:
  - {name: strict-ct, match: {modality: [CT]}, steps: [iqa, segmentation], quality_gate: enforce}
  - {name: lenient-mr, match: {modality: [MR]}, steps: [iqa, segmentation], quality_gate: advisory}
  - {name: strict-no-iqa, match: {modality: [DX]}, steps: [reasoning]}
default: [iqa]
"""


@pytest.mark.parametrize(
    ("modalities", "gate"),
    [
        (["MR"], "advisory"),  # the only IQA series came through an advisory rule
        (["MR", "CT"], "enforce"),  # one enforcing rule with IQA is enough
        (["DX"], "advisory"),  # enforcing, but nothing goes to IQA
        (["US"], "advisory"),  # the default is not a rule, so it never enforces
        ([], "advisory"),
    ],
)
def test_quality_gate(modalities: list[str], gate: str, tmp_path: Path) -> None:
    rules = rules_from(QUALITY_RULES, tmp_path)
    assert plan_study(rules, [facts(m) for m in modalities]).quality_gate == gate


def test_summary_names_each_series_rule_and_step() -> None:
    ct = facts("CT", series_uid="1.2.826.0.1.3680043.8.498.10000000000000000000001", description="Axial 3mm")
    plan = plan_study(RoutingRules.default(), [ct, facts("SEG", series_uid="1.2.3", description="MedGate SEG")])
    lines = plan.summary().splitlines()
    assert lines[0].split() == ["series", "modality", "description", "rule", "steps"]
    assert lines[1].split() == ["1.2.826.…00000001", "CT", "Axial", "3mm", "ct", "iqa,", "segmentation,", "reasoning"]
    assert lines[2].split() == ["1.2.3", "SEG", "MedGate", "SEG", "derived-objects", "none"]
    assert [line.split() for line in lines[4:]] == [
        ["iqa", "1", "series"],
        ["segmentation", "1", "series"],
        ["reasoning", "1", "series"],
        ["quality", "gate:", "enforce"],
    ]
    skipped = plan_study(RoutingRules.default(), [facts("SR")]).summary()
    assert "iqa           skipped" in skipped and "reasoning     skipped" in skipped


def test_plan_round_trips_as_json() -> None:
    plan = plan_study(RoutingRules.default(), [facts("CT"), facts("SR")])
    data = json.loads(plan.model_dump_json())
    assert set(data["steps"]) == {"iqa", "segmentation", "reasoning"}
    assert WorkflowPlan.model_validate(data) == plan


# -- bad rules files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules: [\n  {name: a, steps: [iqa]\n", "not valid YAML: line 3"),
        ("rules: []\nrouting: []\n", "routing: unknown field"),
        (
            "rules:\n  - {name: ct, match: {modalities: [CT]}, steps: [iqa]}\n",
            "rules[0].match.modalities (rule 'ct'): unknown field",
        ),
        ("rules:\n  - {name: ct, steps: [iqa]}\n  - {name: ct, steps: []}\n", "rule name 'ct' is used twice"),
        (
            "rules:\n  - {name: ct, steps: [iqa, segmentaton]}\n",
            "rules[0].steps[1] (rule 'ct'): unknown step 'segmentaton'",
        ),
        (
            "rules:\n  - {name: ct, steps: [assemble]}\n",
            "unknown step 'assemble'; routable steps are iqa, segmentation, reasoning",
        ),
        ("rules:\n  - {name: ct, steps: [iqa, iqa]}\n", "rules[0].steps (rule 'ct'): step 'iqa' is listed twice"),
        ("rules: []\ndefault: [everything]\n", "default[0]: unknown step 'everything'"),
        (
            "rules:\n  - {name: x, match: {series_description: 'scout(('}, steps: []}\n",
            "rules[0].match.series_description (rule 'x'): invalid regular expression",
        ),
        ("rules:\n  - {name: x, match: {min_instances: -1}, steps: []}\n", "rules[0].match.min_instances"),
        ("rules:\n  - {name: x, match: {modality: []}, steps: []}\n", "rules[0].match.modality"),
        ("rules:\n  - {name: x, steps: [], quality_gate: strict}\n", "rules[0].quality_gate"),
        ("rules:\n  - name: x\n    steps: [iqa]\n    steps: []\n", "key 'steps' is given twice"),
        ("version: 2\nrules: []\n", "version"),
        ("default: []\n", "rules: Field required"),
        ("- name: x\n", "must be a mapping"),
        ("", "must be a mapping"),
    ],
)
def test_bad_rules_file_is_a_config_error_naming_file_and_field(text: str, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "site-rules.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        RoutingRules.load(path)
    assert caught.value.message.startswith(f"{path}: ")
    assert expected in caught.value.message
    assert caught.value.details["file"] == str(path)


def test_every_problem_of_a_rules_file_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n  - {name: ct, match: {modality: [CT], body: [HEAD]}, steps: [iqa, segmentaton]}\ndefault: [x]\n"
    )
    with pytest.raises(ConfigError) as caught:
        RoutingRules.load(path)
    assert caught.value.details["fields"] == ["rules[0].match.body", "rules[0].steps[1]", "default[0]"]
    assert caught.value.exit_code == 2


def test_missing_rules_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read routing rules"):
        RoutingRules.from_settings(tmp_path / "nope.yaml")


# -- the dry run ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A 3-slice 32x32 synthetic CT and a one-image topogram beside it, in one study folder."""
    out = tmp_path_factory.mktemp("tiny_ct")
    study = generate_study("CT", seed=3, slices=3, matrix=32, lesion_count=0)
    write_dataset(study, out)
    slices = sorted((out / "dicom").glob("*.dcm"))
    scout = pydicom.dcmread(slices[0])
    scout.SeriesInstanceUID = generate_uid()
    scout.SOPInstanceUID = scout.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    scout.SeriesDescription = "Topogram 0.6 T20f"
    scout.SeriesNumber = 0
    scout.save_as(out / "dicom" / "scout.dcm", enforce_file_format=True)
    uids = {
        "study": str(study.header.study_uid),
        "axial": str(study.header.series_uid),
        "scout": str(scout.SeriesInstanceUID),
    }
    return out, uids


def cli() -> typer.Typer:
    """The real root app, with ``workflow plan`` mounted unless the gateway already registers it."""
    app = build_app()
    if not any(g.name == "workflow" for g in app.registered_groups):
        workflow = typer.Typer()
        add_plan_command(workflow)
        app.add_typer(workflow, name="workflow")
    return app


def invoke(args: list[str], home: Path, **env: str) -> tuple[int, str, BaseException | None]:
    runner = CliRunner()
    result = runner.invoke(
        cli(), ["workflow", "plan", *args], env={"MEDGATE_HOME": str(home), "MEDGATE_GW_ROUTING_RULES": None, **env}
    )
    # What the command prints goes to stdout; warnings a library prints to stderr must not
    # break parsing. Errors are on stderr, so a failure returns both.
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output, result.exception


def test_read_dicom_series_groups_files_and_skips_what_is_not_dicom(tiny_study: tuple[Path, dict[str, str]]) -> None:
    folder, uids = tiny_study
    study_uid, series = read_dicom_series(folder)  # labels/*.nii.gz and study.json lie beside the files
    assert study_uid == uids["study"]
    assert series == [
        SeriesFacts(uids["scout"], "CT", "ABDOMEN", "Topogram 0.6 T20f", 1),  # series number 0 comes first
        SeriesFacts(uids["axial"], "CT", "ABDOMEN", "Axial 3mm", 3),
    ]


def test_dry_run_of_dicom_folder_prints_plan_as_json(tiny_study: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    folder, uids = tiny_study
    code, output, _ = invoke(["--dicom", str(folder), "--json"], tmp_path)
    assert code == 0, output
    plan = json.loads(output)
    assert [(s["series_uid"], s["rule"], s["steps"]) for s in plan["series"]] == [
        (uids["scout"], "localizers", []),
        (uids["axial"], "ct", ["iqa", "segmentation", "reasoning"]),
    ]
    assert plan["steps"] == {"iqa": [uids["axial"]], "segmentation": [uids["axial"]], "reasoning": [uids["axial"]]}
    assert plan["quality_gate"] == "enforce"
    assert not (tmp_path / "gateway.db").exists()  # no database was opened


def test_dry_run_with_own_rules_and_calling_ae_prints_table(
    tiny_study: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, uids = tiny_study
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - {name: triage, match: {calling_ae: [ER_CT], min_instances: 2}, steps: [iqa], quality_gate: advisory}\n"
    )
    code, output, _ = invoke(
        [uids["study"], "--dicom", str(folder), "--rules", str(rules), "--calling-ae", "ER_CT"], tmp_path
    )
    assert code == 0, output
    lines = output.splitlines()
    assert lines[1].split()[1:] == ["CT", "Topogram", "0.6", "T20f", "(default)", "none"]
    assert lines[2].split()[1:] == ["CT", "Axial", "3mm", "triage", "iqa"]
    assert [line.split() for line in lines[4:]] == [
        ["iqa", "1", "series"],
        ["segmentation", "skipped"],
        ["reasoning", "skipped"],
        ["quality", "gate:", "advisory"],
    ]
    code, output, _ = invoke(["--dicom", str(folder), "--rules", str(rules), "--calling-ae", "OTHER"], tmp_path)
    assert code == 0 and "triage" not in output


def test_rules_named_by_settings_are_used(tiny_study: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    folder, _ = tiny_study
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules: []\ndefault: [reasoning]\n")
    code, output, _ = invoke(["--dicom", str(folder), "--json"], tmp_path, MEDGATE_GW_ROUTING_RULES=str(rules))
    assert code == 0, output
    assert [s["steps"] for s in json.loads(output)["series"]] == [["reasoning"], ["reasoning"]]


def test_dry_run_errors(tiny_study: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    folder, _ = tiny_study
    code, _, exc = invoke(["1.2.3.4", "--dicom", str(folder)], tmp_path)
    assert isinstance(exc, NotFoundError) and code == NotFoundError.exit_code == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [{name: x, steps: [iqa], colour: red}]\n")
    code, _, exc = invoke(["--dicom", str(folder), "--rules", str(bad)], tmp_path)
    assert isinstance(exc, ConfigError) and str(bad) in exc.message and "rules[0].colour" in exc.message
    _, _, exc = invoke([], tmp_path)
    assert isinstance(exc, InputError)
    two = tmp_path / "two"
    two.mkdir()
    for path, study in ((folder / "dicom" / "IM0001.dcm", "1.2.3.1"), (folder / "dicom" / "IM0002.dcm", "1.2.3.2")):
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID = study
        ds.save_as(two / f"{study}.dcm", enforce_file_format=True)
    _, _, exc = invoke(["--dicom", str(two)], tmp_path)
    assert isinstance(exc, InputError) and "holds 2 studies" in exc.message
    code, _, exc = invoke(["--dicom", str(tmp_path / "two"), "1.2.3.2", "--json"], tmp_path)
    assert code == 0


def test_unknown_study_without_database_leaves_no_file(tmp_path: Path) -> None:
    code, _, exc = invoke(["1.2.3.4"], tmp_path)
    assert isinstance(exc, NotFoundError) and code == 1
    assert not (tmp_path / "gateway.db").exists()


# -- from the gateway database -------------------------------------------------------------------


def ingest_folder(context: GatewayContext, folder: Path, calling_ae: str) -> None:
    source = Source(transport="dimse", actor=f"ae:{calling_ae}", calling_ae=calling_ae)
    for path in sorted((folder / "dicom").glob("*.dcm")):
        context.ingestor.ingest(path.read_bytes(), source)


@pytest.mark.integration
def test_plan_for_study_reads_series_and_calling_ae_from_the_database(
    context: GatewayContext, tiny_study: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, uids = tiny_study
    ingest_folder(context, folder, "ER_CT")
    rules = rules_from(
        "rules:\n"
        "  - {name: er, match: {calling_ae: [ER_CT], modality: [ct], min_instances: 3}, steps: [iqa, reasoning]}\n"
        "default: [segmentation]\n",
        tmp_path,
    )
    plan = plan_for_study(context.db, uids["study"], rules)  # calling AE: the study's last sender
    assert [(d.series_uid, d.rule, d.steps) for d in plan.series] == [
        (uids["scout"], None, [StepName.segmentation]),
        (uids["axial"], "er", [StepName.iqa, StepName.reasoning]),
    ]
    assert plan.steps == {
        StepName.iqa: [uids["axial"]],
        StepName.segmentation: [uids["scout"]],
        StepName.reasoning: [uids["axial"]],
    }
    other = plan_for_study(context.db, uids["study"], rules, calling_ae="WARD")
    assert [d.rule for d in other.series] == [None, None]
    default = plan_for_study(context.db, uids["study"], RoutingRules.default())
    assert [d.rule for d in default.series] == ["localizers", "ct"]
    with pytest.raises(NotFoundError):
        plan_for_study(context.db, "1.2.3.4", rules)


@pytest.mark.integration
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the command finds it by URL in the env
def test_plan_command_reads_the_gateway_database(
    context: GatewayContext, tiny_study: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, uids = tiny_study
    ingest_folder(context, folder, "CT1")
    url = context.settings.resolved_database_url()
    code, output, _ = invoke([uids["study"], "--json"], tmp_path / "home", MEDGATE_GW_DATABASE_URL=url)
    assert code == 0, output
    plan = json.loads(output)
    assert [s["rule"] for s in plan["series"]] == ["localizers", "ct"]
    assert plan["steps"]["segmentation"] == [uids["axial"]]
    code, _, exc = invoke(["1.2.3.4"], tmp_path / "home", MEDGATE_GW_DATABASE_URL=url)
    assert isinstance(exc, NotFoundError) and code == 1
