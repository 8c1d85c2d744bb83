"""Prompts files: system prompts and few-shot examples together, or a bare list of
examples under the built-in system prompts; a bad file is a one-line error."""

from pathlib import Path

import pytest
import yaml

from selfcodealign.errors import UserError
from selfcodealign.prompts import PromptBuilder, load_prompts

CANDIDATE = Path(__file__).resolve().parents[2] / "benchmarks" / "prompts" / "checkable.yaml"


def test_a_prompts_file_sets_the_system_prompts_of_chat_requests():
    built_in, candidate = load_prompts(), load_prompts(CANDIDATE)
    assert built_in.system != candidate.system
    chat = PromptBuilder.load("chat", CANDIDATE)
    assert chat.response("Write `f(x)`.", "function")[0] == {"role": "system", "content": candidate.system.responses}
    assert chat.instruction(["loops"], "function", "easy")[0]["content"] == candidate.system.instructions
    assert PromptBuilder.load("chat").concepts("x = 1")[0]["content"] == built_in.system.concepts


def test_a_bare_list_of_examples_keeps_the_built_in_system_prompts(tmp_path):
    f = tmp_path / "shots.yaml"
    f.write_text(yaml.safe_dump([e.model_dump() for e in load_prompts(CANDIDATE).examples[:2]]))
    loaded = load_prompts(f)
    assert loaded.system == load_prompts().system and len(loaded.examples) == 2


def test_a_prompts_file_gives_only_what_it_changes(tmp_path):
    f = tmp_path / "instructions-only.yaml"
    f.write_text("system:\n  instructions: Write one task.\n")
    loaded, built_in = load_prompts(f), load_prompts()
    assert loaded.system.instructions == "Write one task."
    assert loaded.system.responses == built_in.system.responses and loaded.examples == built_in.examples
    stdlib = load_prompts(CANDIDATE.parent / "stdlib.yaml")
    assert "standard library" in stdlib.system.instructions and stdlib.examples == built_in.examples


@pytest.mark.parametrize("text", ["system: {}\nexamples: []\n", "- 1\n", "{not yaml", "examples: []\n"])
def test_a_bad_prompts_file_is_a_one_line_error(tmp_path, text):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(UserError) as err:
        load_prompts(f)
    assert "\n" not in str(err.value) and str(f) in str(err.value)
    with pytest.raises(UserError, match="cannot read"):
        load_prompts(tmp_path / "missing.yaml")
