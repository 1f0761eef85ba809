"""Write the generated blocks of the documentation, or check that they are current.

    .venv/bin/python tools/gen_docs.py            # rewrite the blocks in place
    .venv/bin/python tools/gen_docs.py --check    # exit 1 and name every stale block

Generated from the code, so that they cannot drift from it:

- ``docs/methods/<key>.md``, between ``<!-- options:start -->`` and ``<!-- options:end -->``:
  the method's options (the fields of its dataclass, with their defaults) and what each
  does (the ``Attributes:`` section of the class docstring). An option the docstring does
  not describe is an error.
- ``README.md`` and ``docs/cli.md``, between ``<!-- cli:start -->`` and ``<!-- cli:end -->``:
  one row per ``pebench`` command (its name and the first line of its help).
- ``docs/index.md``, the site's home page: the README with its links made relative to
  ``docs/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def attribute_docs(cls) -> dict[str, str]:
    """``{option: text}`` from the ``Attributes:`` section of a Google-style docstring.

    An entry may name several options (``c1, c2, w: ...``); continuation lines are indented
    deeper than the entry.
    """
    doc = inspect.cleandoc(cls.__doc__ or "")
    if "Attributes:" not in doc:
        return {}
    section = doc.split("Attributes:", 1)[1].split("\n")
    out: dict[str, str] = {}
    current: list[str] = []
    for line in section:
        m = re.match(r"^    ([A-Za-z_][\w, ]*):\s*(.*)$", line)
        if m:
            current = [n.strip() for n in m.group(1).split(",")]
            for n in current:
                out[n] = m.group(2).strip()
        elif line.startswith("        ") and current:
            for n in current:
                out[n] += " " + line.strip()
        elif line.strip() and not line.startswith(" "):
            break
    return out


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "(required)"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)


def options_table(key: str) -> str:
    """The options block of method ``key``'s page."""
    from pe_bench.methods import REGISTRY
    from pe_bench.runner import option_fields

    cls = REGISTRY[key]
    docs = attribute_docs(cls)
    rows = ["| option | default | what it does |", "| --- | --- | --- |"]
    missing = []
    for f in option_fields(cls).values():
        text = docs.get(f.name)
        if not text:
            missing.append(f.name)
            continue
        text = text.replace("|", "\\|").replace("``", "`")
        rows.append(f"| `{f.name}` | `{_default(f)}` | {text} |")
    if missing:
        raise SystemExit(
            f"{cls.__module__}.{cls.__name__}: option(s) {', '.join(missing)} not described "
            "in the class docstring's Attributes section"
        )
    return (
        f"Generated from `{cls.__module__}.{cls.__name__}` by `tools/gen_docs.py`; set with "
        f"`--option key=value` (CLI) or `options = {{ ... }}` (suite).\n\n" + "\n".join(rows)
    )


def _synopsis(name: str, cmd) -> str:
    """``pebench NAME ARG [--option VALUE] [--flag] ...`` from a click command's parameters."""
    parts = [f"pebench {name}"]
    for param in cmd.params:
        if param.param_type_name == "argument":
            parts.append(param.name.upper())
            continue
        if param.name == "help":
            continue
        opt = max(param.opts, key=len)
        if param.is_flag:
            item = opt
        else:
            choices = getattr(getattr(param, "bare_type", None), "choices", None)
            item = f"{opt} {'|'.join(choices) if choices else param.name.upper().rstrip('_')}"
        parts.append(item if param.required else f"[{item}]")
    return " ".join(parts)


def cli_table(synopsis: bool = False) -> str:
    """One row per pebench command: its name (``synopsis``: with every option) and help line."""
    import typer.main

    from pe_bench.cli import app

    group = typer.main.get_command(app)
    rows = ["| command | what it does |", "| --- | --- |"]
    for name, cmd in group.commands.items():
        if cmd.hidden:
            continue
        first = (cmd.help or "").strip().split("\n")[0].rstrip(".")
        usage = _synopsis(name, cmd).replace("|", "\\|") if synopsis else f"pebench {name}"
        rows.append(f"| `{usage}` | {first} |")
    if synopsis:
        return "\n".join(rows)
    note = "`pebench COMMAND --help` gives every option; `pebench --version` the version."
    return "\n".join(rows) + "\n\n" + note


def blocks() -> list[tuple[Path, str, str]]:
    """(file, block name, generated text) for every generated block."""
    from pe_bench.methods import REGISTRY

    out = [(ROOT / "docs" / "methods" / f"{key}.md", "options", options_table(key)) for key in REGISTRY]
    out.append((ROOT / "README.md", "cli", cli_table()))
    out.append((ROOT / "docs" / "cli.md", "cli", cli_table(synopsis=True)))
    return out


def index_page() -> str:
    """The site's home page: README.md with ``docs/...`` links made relative to docs/."""
    text = (ROOT / "README.md").read_text()
    text = re.sub(r"\]\(docs/", "](", text)
    note = "<!-- generated from README.md by tools/gen_docs.py: edit the README, not this file -->\n"
    return note + text


def replace_block(text: str, name: str, body: str, path: Path) -> str:
    """``text`` with the block between the markers of ``name`` replaced by ``body``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        raise SystemExit(f"{path.relative_to(ROOT)}: markers {start} / {end} missing")
    head, rest = text.split(start, 1)
    return head + start + "\n\n" + body.strip() + "\n\n" + end + rest.split(end, 1)[1]


def main(argv=None) -> int:
    """Rewrite (or with ``--check`` only compare) every generated block."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a block is stale; write nothing")
    args = ap.parse_args(argv)
    stale = []
    for path, name, body in blocks():
        text = path.read_text()
        new = replace_block(text, name, body, path)
        if new != text:
            stale.append(f"{path.relative_to(ROOT)} ({name})")
            if not args.check:
                path.write_text(new)
    index = ROOT / "docs" / "index.md"
    if not index.exists() or index.read_text() != index_page():
        stale.append("docs/index.md (from README.md)")
        if not args.check:
            index.write_text(index_page())
    if args.check and stale:
        print("stale generated blocks (run tools/gen_docs.py): " + ", ".join(stale))
        return 1
    print(("rewrote: " + ", ".join(stale)) if stale else "generated blocks are current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
