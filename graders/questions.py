"""Answer exercises: the learner answers questions in a YAML file, the grader checks each answer against a fact.

Two uses share this module: *observation* exercises (read a value off the live cluster: a node's pod range, a
route, an MTU) and *predict* questions (say what the cluster will do before running it). Either way the lab
module declares its ``Question``s and gathers ``Fact``s from the cluster at grading time; a fact is never
stored with the course, because pod ranges and node addresses change from one cluster to the next.

What the learner reads back never contains the live value of a wrong answer: that is the last level of
``hint()``, so a first failure explains the cause without handing over the answer.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from graders.errors import CheckFailed, Problem, SubmissionError
from graders.model import Evidence, StepResult

MAX_ANSWERS_BYTES = 64 * 1024  # an answers file is a handful of lines; anything larger is not one
KINDS = ("cidr", "ip-or-node", "number", "name", "choice")
NO_NEXT_HOP = "none"  # how a route without a gateway is written (direct, or through a tunnel device)
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$")
_NONE_WORDS = {"none", "direct", "-", "no gateway"}


@dataclass(frozen=True)
class Question:
    """One question of an answers file. ``kind`` says how an answer is read and compared:
    cidr (a network, host bits 0), ip-or-node (an address, or the name of the node that has it, or "none"),
    number, name (a node, device or pod name; case-insensitive), choice (one of ``choices``)."""

    id: str
    prompt: str
    kind: str
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"question {self.id}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}")


@dataclass(frozen=True)
class Answer:
    question: Question
    value: Any  # normalised (see normalise); None when the learner left it empty
    line: int = 0
    file: str = ""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.file and self.line else self.file


@dataclass(frozen=True)
class Fact:
    """What the cluster shows for one question: every normalised value that is right (more than one where the
    question allows several correct spellings, e.g. a next hop as an address or as its node's name), or why it
    could not be observed here — then the question earns nothing, and the learner is told why."""

    accepted: tuple[Any, ...] = ()
    unobservable: str = ""
    # why a wrong answer is wrong, in words that teach without revealing the value: {normalised answer: why},
    # then ``explain(answer)`` for whole families of wrong answers ("" when it has nothing to say)
    because: Mapping[Any, str] = field(default_factory=dict)
    explain: Callable[[Any], str] | None = None


def observed(*values: Any, because: Mapping[Any, str] | None = None,
             explain: Callable[[Any], str] | None = None) -> Fact:
    return Fact(accepted=tuple(v for v in values if v is not None), because=dict(because or {}), explain=explain)


def not_observable(reason: str) -> Fact:
    return Fact(unobservable=reason)


def seen_fact(seen: Any, usual: Any, because: Mapping[Any, str], *, unseen: str, who: str = "the cluster") -> Fact:
    """The fact one observation gives: "not verifiable" (``unseen`` says why) when nothing was seen; the usual
    answer with why each other choice is wrong; an unusual answer as it was seen, the table telling the rest."""
    if seen is None:
        return not_observable(unseen)
    if seen == usual:
        return observed(usual, because=because)
    return observed(seen, explain=lambda _: f"not what {who} answered (see the table)")


# ------------------------------------------------------------------------------------------ reading

def normalise(question: Question, raw: Any) -> Any:
    """The answer as compared, or raises ValueError with what is wrong with how it is written."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool):  # YAML reads an unquoted yes/no/true/false/on/off as a boolean
        for word in (("yes", "no"), ("true", "false"), ("on", "off")):
            if question.kind == "choice" and word[not raw] in question.choices:
                return word[not raw]
        raise ValueError(f"YAML read this answer as the boolean {str(raw).lower()} (an unquoted yes, no, true, "
                         f"false, on or off): write one of the expected values"
                         + (f" ({' | '.join(question.choices)})" if question.choices else ""))
    if isinstance(raw, (list, dict)):
        raise ValueError(f"must be a single value, got {raw!r}")
    text = str(raw).strip()
    if question.kind == "cidr":
        if "/" not in text:
            try:
                ipaddress.ip_address(text)
            except ValueError:
                raise ValueError(f"{text!r} is not an address range in CIDR notation (like 10.0.0.0/8)") from None
            raise ValueError(f"{text!r} is one address; a range has a prefix length (like 10.0.0.0/8)")
        try:
            return str(ipaddress.ip_network(text, strict=True))
        except ValueError:
            try:
                network = ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ValueError(f"{text!r} is not an address range in CIDR notation (like 10.0.0.0/8)") from None
            raise ValueError(f"{text!r} has host bits set: a range starts at its network address "
                             f"({network.network_address}/{network.prefixlen})") from None
    if question.kind == "ip-or-node":
        if text.lower() in _NONE_WORDS:
            return NO_NEXT_HOP
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            pass
        if not _NAME.match(text.lower()):
            raise ValueError(f"{text!r} is neither an IP address nor a node name (or \"none\" for no next hop)")
        return text.lower()
    if question.kind == "number":
        if isinstance(raw, int) or re.fullmatch(r"[0-9]+", text):
            return int(text)
        raise ValueError(f"{text!r} is not a whole number")
    if question.kind == "choice":
        options = {c.lower(): c for c in question.choices}
        if text.lower() not in options:
            raise ValueError(f"{text!r} is not one of the choices: {', '.join(question.choices)}")
        return options[text.lower()]
    if not _NAME.match(text.lower()):
        raise ValueError(f"{text!r} is not a name (letters, digits, '-', '.', '_')")
    return text.lower()


def parse_answers(sources: Sequence[Path], questions: Sequence[Question], file_name: str) -> dict[str, Answer]:
    """Read ``file_name`` from the first source that has it. Raises SubmissionError naming every problem
    (YAML, unknown or missing questions, values that cannot be an answer) with file:line; empty answers are
    allowed (they are graded as unanswered, so a half-done file still shows what is right so far)."""
    path = next((Path(s) / file_name for s in sources if (Path(s) / file_name).is_file()), None)
    if path is None:
        path = next((Path(s) for s in sources if Path(s).is_file()), None)
    if path is None:
        raise SubmissionError([Problem(f"{file_name} is missing: the answers go in "
                                       f"{Path(sources[0]) / file_name if sources else file_name}")])
    label = path.name
    if path.stat().st_size > MAX_ANSWERS_BYTES:
        raise SubmissionError([Problem(f"is {path.stat().st_size} bytes: an answers file holds a few short values "
                                       f"(limit {MAX_ANSWERS_BYTES})", file=label)])
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise SubmissionError([Problem(f"invalid YAML: {getattr(error, 'problem', None) or error}", file=label,
                                       line=mark.line + 1 if mark else 0)]) from None
    if not isinstance(data, dict):
        raise SubmissionError([Problem("must be a mapping of question: answer (as in the starter file)", file=label)])
    lines = _key_lines(node)
    written = _plain_scalars(node)
    by_id = {q.id: q for q in questions}
    problems: list[Problem] = []
    answers: dict[str, Answer] = {}
    for key, raw in data.items():
        line = lines.get(str(key), 0)
        question = by_id.get(str(key))
        if question is None:
            problems.append(Problem(f"{key!r} is not a question of this exercise (questions: {', '.join(by_id)})",
                                    file=label, line=line))
            continue
        if question.kind == "number" and re.fullmatch(r"0[0-9]+", written.get(str(key), "")):
            raw = written[str(key)]  # YAML 1.1 reads 0050 as octal (40): take the digits as the learner wrote them
        try:
            answers[question.id] = Answer(question, normalise(question, raw), line, label)
        except ValueError as error:
            problems.append(Problem(f"{question.id}: {error}", file=label, line=line))
    missing = [q.id for q in questions if q.id not in answers and q.id not in data]
    if missing:
        problems.append(Problem(f"questions missing from the file: {', '.join(missing)} (keep every key of the "
                                f"starter file; leave an answer empty rather than deleting it)", file=label))
    if problems:
        raise SubmissionError(problems)
    return answers


def _plain_scalars(node: Any) -> dict[str, str]:
    """Each key's value as written, for unquoted scalars (what YAML resolved it to may differ: 0050 is octal)."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(key.value): value.value for key, value in node.value
            if isinstance(value, yaml.ScalarNode) and value.style is None}


def _key_lines(node: Any) -> dict[str, int]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(key.value): key.start_mark.line + 1 for key, _ in node.value}


# ------------------------------------------------------------------------------------------ judging

@dataclass(frozen=True)
class Verdict:
    answer: Answer
    right: bool
    why: str  # empty when right


def verdicts(answers: Mapping[str, Answer], facts: Mapping[str, Fact]) -> list[Verdict]:
    out = []
    for question_id, answer in answers.items():
        fact = facts.get(question_id) or not_observable("the grader has no fact for this question (a course bug)")
        if fact.unobservable:
            out.append(Verdict(answer, False, f"not verifiable on this cluster: {fact.unobservable}"))
        elif answer.value is None:
            out.append(Verdict(answer, False, "not answered yet"))
        elif answer.value in fact.accepted:
            out.append(Verdict(answer, True, ""))
        else:
            why = fact.because.get(answer.value) or (fact.explain(answer.value) if fact.explain else "")
            out.append(Verdict(answer, False, why or "not what the cluster shows"))
    return out


def judge(answers: Mapping[str, Answer], facts: Mapping[str, Fact], *, hint: str = "",
          evidence: Iterable[Evidence] = ()) -> StepResult:
    """Passed when every answer matches; otherwise CheckFailed with partial credit (right / all) and one line per
    wrong answer (its file:line and why), never the live value."""
    results = verdicts(answers, facts)
    right = sum(v.right for v in results)
    rows = [(v.answer.question.id, _shown(v.answer.value), "right" if v.right else v.why) for v in results]
    table = Evidence.table(f"Your answers ({right} of {len(results)} right)", ("question", "your answer", "verdict"),
                           rows)
    wrong = [v for v in results if not v.right]
    if not wrong:
        return StepResult("live", True, f"all {len(results)} answers match what the cluster shows",
                          evidence=(table, *evidence))
    lines = "; ".join(f"{v.answer.question.id} ({v.answer.where}): {v.why}" for v in wrong)
    raise CheckFailed(f"{len(wrong)} of {len(results)} answers do not match the cluster — {lines}", hint=hint,
                      evidence=(table, *evidence), credit=right / len(results) if results else 0.0)


def _shown(value: Any) -> str:
    return "(empty)" if value is None else str(value)


def render_answers(template: str, values: Mapping[str, Any]) -> str:
    """Fill ``${name}`` placeholders of an answers template (used by tests and by generated solutions; a
    placeholder with no value is an error, so a template cannot silently grade as unanswered)."""
    def fill(match: re.Match) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"no value for ${{{key}}} (values: {', '.join(sorted(values))})")
        return str(values[key])

    return re.sub(r"\$\{([a-z0-9_]+)\}", fill, template)
