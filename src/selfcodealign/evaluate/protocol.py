"""EvalPlus's prompting protocol (evalplus 0.3.1, ``codegen.py`` and ``provider/``).

Instruct models (a chat template): the task goes in a user message between bare fences
after an instruction; the assistant's reply is pre-filled with a sentence and an opening
```python fence, and the model continues the code until a closing fence. Base models
(no template): the task prompt is completed directly, with extra stop strings that end
the function. Sanitisation is evalplus's own ``sanitize``.
"""

from __future__ import annotations

from dataclasses import dataclass

INSTRUCTION_PREFIX = (
    "Please provide a self-contained Python script that solves the following problem "
    "in a markdown code block:"
)
RESPONSE_PREFIX = (
    "Below is a Python script with a self-contained function that solves the problem "
    "and passes corresponding tests:"
)
# evalplus.provider.utility.EOS
EOS = ("<|endoftext|>", "<|endofmask|>", "</s>", "\nif __name__", "\ndef main(", "\nprint(")
CHAT_STOP = EOS + ("\n```\n",)
DIRECT_STOP = {
    "humaneval": ("\ndef ", "\nclass ", "\nimport ", "\nfrom ", "\nassert "),
    "mbpp": ('\n"""', "\nassert"),
}


@dataclass(frozen=True)
class Request:
    prompt: str | list[dict]
    prefill: str
    stop: tuple[str, ...]
    direct: bool  # completion of the task prompt (base-model protocol)
    task_prompt: str


def task_prompt(problem: dict) -> str:
    return problem["prompt"].strip() + "\n"


def make_request(problem: dict, dataset: str, chat: bool) -> Request:
    if dataset == "selfval":  # the instruction as the user turn: the training format
        return Request([{"role": "user", "content": problem["instruction"]}], "", (), False, "")
    tp = task_prompt(problem)
    if not chat:
        return Request(tp, "", EOS + DIRECT_STOP[dataset], True, tp)
    user = f"{INSTRUCTION_PREFIX}\n```\n{tp.strip()}\n```\n"
    prefill = f"{RESPONSE_PREFIX}\n```python\n"
    return Request([{"role": "user", "content": user}], prefill, CHAT_STOP, False, tp)


def solution_of(req: Request, text: str) -> str:
    """The program EvalPlus scores, before sanitising: the model's code (after the
    pre-filled part), or the task prompt plus its completion for base models."""
    if req.prefill and text.startswith(req.prefill):
        text = text[len(req.prefill) :]
    # Backends already stop at these; a backend that ignores stop strings gets the
    # same cut here (evalplus's HF provider does this too).
    cut = min((text.find(s) for s in req.stop if s in text), default=-1)
    if cut >= 0:
        text = text[:cut]
    text = text.replace("\t", "    ")
    return req.task_prompt + text if req.direct else text


def sanitize(solution: str, entry_point: str) -> str:
    from evalplus.sanitize import sanitize as _sanitize

    return _sanitize(solution, entrypoint=entry_point)
