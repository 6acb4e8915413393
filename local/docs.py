"""`python -m local env-table`: the README's table of environment variables, rendered from shared.config."""

from __future__ import annotations

from shared.config import FUNCTIONS, VARIABLES, Variable

BEGIN = "<!-- env-table:begin -->"
END = "<!-- env-table:end -->"


def _used_by(variable: Variable) -> str:
    if variable.used_by == frozenset(FUNCTIONS):
        return "all"
    return ", ".join(f for f in FUNCTIONS if f in variable.used_by)


def _default(variable: Variable) -> str:
    if variable.default is None:
        return "**required** (" + ", ".join(f for f in FUNCTIONS if f in variable.required_by) + ")"
    return f"`{variable.default}`" if variable.default else "(empty)"


def env_table() -> str:
    rows = ["| Variable | Meaning | Default | Accepted | Read by |", "|---|---|---|---|---|"]
    for variable in VARIABLES:
        meaning = variable.meaning.replace("|", "\\|")
        accepted = variable.accepted.replace("|", "\\|")
        rows.append(f"| `{variable.name}` | {meaning} | {_default(variable)} | {accepted} | {_used_by(variable)} |")
    return "\n".join(rows)


def main(_argv: list[str]) -> int:
    print(BEGIN)
    print(env_table())
    print(END)
    return 0
