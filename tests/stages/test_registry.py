"""The stage registry is the one list of stages: run's order, the single-stage commands,
the record types each stage passes on and the run directory's files all come from it."""

from selfcodealign.cli import build_parser
from selfcodealign.config import RunConfig
from selfcodealign.stages import BY_NAME, STAGES
from selfcodealign.stages.base import Stage, WholeStage


def test_each_stage_reads_earlier_stages_whose_records_it_takes():
    names = [s.name for s in STAGES]
    assert names == ["seeds", "concepts", "instructions", "responses", "execute", "verify", "judge", "select"]
    assert len({s.file for s in STAGES}) == len(STAGES)
    for k, spec in enumerate(STAGES):
        assert issubclass(spec.cls, Stage)
        assert all(names.index(r) < k for r in spec.cls.reads), spec.name
        # verify groups the executed records it reads; judge takes one requirement of one each
        if spec.cls.reads and spec.name not in ("verify", "judge"):
            assert spec.cls.input_type is BY_NAME[spec.cls.reads[0]].cls.output_type, spec.name
    assert BY_NAME["seeds"].cls.reads == () and issubclass(BY_NAME["seeds"].cls, WholeStage)


def test_every_stage_is_a_command_with_its_registry_help_and_files():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for spec in STAGES:
        assert spec.name in sub.choices, spec.name
        p = sub.choices[spec.name]
        if spec.name != "seeds":  # seeds has its own command (the corpus, not a file, is its input)
            assert spec.file in p.format_help() and spec.help.split(":")[0] in p.description
    assert "--verified" in sub.choices["select"].format_help()  # select's second input
    assert "--judged" in sub.choices["select"].format_help()  # and its third
    assert "--limit" not in sub.choices["verify"].format_help()  # its inputs are groups


def test_every_stage_says_which_settings_change_its_output():
    default, changed = RunConfig(), RunConfig()
    for spec in STAGES:
        assert spec.cls.settings(default) == spec.cls.settings(RunConfig()), spec.name
    changed.execute.timeout = 99.0
    assert BY_NAME["execute"].cls.settings(changed) != BY_NAME["execute"].cls.settings(default)
    assert BY_NAME["verify"].cls.settings(changed) != BY_NAME["verify"].cls.settings(default)
    assert BY_NAME["concepts"].cls.settings(changed) == BY_NAME["concepts"].cls.settings(default)
    changed.backend.engine = "generate"
    assert BY_NAME["responses"].cls.settings(changed) != BY_NAME["responses"].cls.settings(default)
