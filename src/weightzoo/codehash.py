"""The code a job runs, as content hashes: what reruns a job when the library changes.

Snakemake reruns a `script:` job when the script's modification time is newer than the job's
outputs — which a clone, checkout or `touch` changes without changing the code — and never
looks at the library modules the script imports. weightzoo turns that trigger off
(profiles/default: `rerun-triggers` without `code`) and gives every rule a `code` param
instead: the hash of its adapter script and of the weightzoo code its job can run, found by
reading the imports (no import is executed). An edit of that code reruns the job; a new
modification time does not.

The module an adapter takes its job function from (weightzoo.jobs) is hashed function by
function: a job counts the functions it calls there, the names they use and the modules those
import, so an edit of one job function reruns only that job's rule. Every other module
counts whole, with every weightzoo module it imports anywhere (at the top or inside a
function): that errs on the side of rerunning.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = "weightzoo"
DIGITS = 12  # hex digits of each file's hash: enough to tell versions apart, short to read


@functools.cache
def _parse(path: Path) -> ast.Module:
    """A module's syntax tree, parsed once per process (every rule's hash reads the same
    modules)."""
    return ast.parse(path.read_text(), filename=str(path))


def _digest(text: str) -> str:
    """A short content hash; line endings normalised (a checkout with CRLF is the same code)."""
    data = text.replace("\r\n", "\n").encode()
    return hashlib.sha256(data).hexdigest()[:DIGITS]


class _Library:
    """The weightzoo sources under `src`: module names to files, and what each imports."""

    def __init__(self, src: Path) -> None:
        self.src = src

    def path(self, module: str) -> Path | None:
        """The file of a dotted weightzoo module (a package's __init__.py), or None."""
        base = self.src.joinpath(*module.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None

    def with_parents(self, module: str) -> list[str]:
        """`module` and the packages above it (importing a submodule runs their __init__)."""
        parts = module.split(".")
        return [".".join(parts[: i + 1]) for i in range(len(parts))]

    def imported(self, node: ast.AST, module: str) -> set[str]:
        """The weightzoo modules an import statement (anywhere in `node`) brings in."""
        found: set[str] = set()
        typing_only = {  # `if TYPE_CHECKING:` imports name types; they run no code
            id(inner)
            for block in ast.walk(node)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for inner in ast.walk(block)
        }
        for stmt in ast.walk(node):
            if id(stmt) in typing_only:
                continue
            if isinstance(stmt, ast.Import):
                names = [a.name for a in stmt.names]
            elif isinstance(stmt, ast.ImportFrom):
                base = self._absolute(stmt, module)
                if base is None:
                    continue
                names = [base]
                # `from weightzoo import jobs`: the name may be a submodule
                names += [f"{base}.{a.name}" for a in stmt.names if self.path(f"{base}.{a.name}")]
            else:
                continue
            for name in names:
                if name == PACKAGE or name.startswith(PACKAGE + "."):
                    found.update(m for m in self.with_parents(name) if self.path(m))
        return found

    def _absolute(self, stmt: ast.ImportFrom, module: str) -> str | None:
        """The absolute module of a `from ... import` (relative ones resolved in `module`)."""
        if not stmt.level:
            return stmt.module
        package = module.split(".")
        is_package = self.path(module) is not None and self.path(module).name == "__init__.py"
        keep = len(package) - stmt.level + (1 if is_package else 0)
        if keep < 1:
            return None
        base = ".".join(package[:keep])
        return f"{base}.{stmt.module}" if stmt.module else base

    def tree(self, module: str) -> ast.Module:
        return _parse(self.path(module))

    def closure(self, modules: set[str]) -> set[str]:
        """`modules` and every weightzoo module they import, transitively."""
        seen: set[str] = set()
        todo = list(modules)
        while todo:
            module = todo.pop()
            if module in seen:
                continue
            seen.add(module)
            todo.extend(_module_imports(self.src, module) - seen)
        return seen


@functools.cache
def _module_imports(src: Path, module: str) -> frozenset[str]:
    """The weightzoo modules a whole module imports, found once per process: every rule's
    closure walks the same modules (the hashes of all scripts: 1.0 s before, 0.4 s after)."""
    library = _Library(src)
    return frozenset(library.imported(library.tree(module), module))


def _top_level_names(tree: ast.Module) -> dict[str, list[ast.stmt]]:
    """Each name a module's top-level statements bind, with the statements binding it."""
    names: dict[str, list[ast.stmt]] = {}
    for stmt in tree.body:
        bound: list[str] = []
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound = [stmt.name]
        elif isinstance(stmt, ast.Import | ast.ImportFrom):
            bound = [(a.asname or a.name).split(".")[0] for a in stmt.names]
        elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            bound = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        for name in bound:
            names.setdefault(name, []).append(stmt)
    return names


def _function_closure(tree: ast.Module, entry: list[str]) -> list[ast.stmt]:
    """The top-level statements of a module that the functions `entry` can reach by name:
    their definitions, and the definitions, assignments and imports of every top-level name
    they use, transitively; plus the module's other top-level statements that run on import
    (everything but definitions, assignments and imports)."""
    bindings = _top_level_names(tree)
    bound = {id(s) for stmts in bindings.values() for s in stmts}
    chosen = {id(s): s for s in tree.body if id(s) not in bound and not _is_docstring(s)}
    todo = [s for name in entry for s in bindings.get(name, [])]
    while todo:
        stmt = todo.pop()
        if id(stmt) in chosen:
            continue
        chosen[id(stmt)] = stmt
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and node.id in bindings:
                todo.extend(s for s in bindings[node.id] if id(s) not in chosen)
    order = {id(s): i for i, s in enumerate(tree.body)}
    return sorted(chosen.values(), key=lambda s: order[id(s)])


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)


@functools.cache
def job_code(script: str | Path, src: str | Path) -> dict[str, str]:
    """The code a workflow script runs, as {file: short content hash}, sorted by file.

    `script` is an adapter in workflow/scripts/ (its sibling helper modules count too), `src`
    the folder holding the weightzoo package. The module the script imports job functions
    from is hashed over those functions' reach (`_function_closure`), as
    `weightzoo/jobs.py:train_job,...`; every other module the script can reach counts whole.
    """
    script, src = Path(script), Path(src)
    library = _Library(src)
    text = script.read_text()
    tree = ast.parse(text, filename=str(script))
    hashes = {f"workflow/scripts/{script.name}": _digest(text)}
    for stmt in tree.body:  # sibling helpers such as _src_path
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                sibling = script.with_name(alias.name + ".py")
                if sibling.is_file():
                    hashes[f"workflow/scripts/{sibling.name}"] = _digest(sibling.read_text())
    whole: set[str] = set()
    for stmt in ast.walk(tree):
        if not isinstance(stmt, ast.ImportFrom) or stmt.module is None:
            whole |= library.imported(stmt, "__main__") if isinstance(stmt, ast.Import) else set()
            continue
        module = stmt.module
        if not (module == PACKAGE or module.startswith(PACKAGE + ".")):
            continue
        functions = [
            a.name
            for a in stmt.names
            if isinstance(_definition(library.tree(module), a.name), ast.FunctionDef)
        ]
        others = [a for a in stmt.names if a.name not in functions]
        whole |= set(library.with_parents(module)[:-1])  # the packages above it run
        if others or not functions:
            whole |= library.imported(stmt, "__main__")
            continue
        reached = _function_closure(library.tree(module), functions)
        lines = library.path(module).read_text().splitlines()
        segments = ["\n".join(lines[_first_line(s) - 1 : s.end_lineno]) for s in reached]
        label = f"{module.replace('.', '/')}.py:{','.join(sorted(functions))}"
        hashes[label] = _digest("\n".join(segments))
        for s in reached:
            whole |= library.imported(s, module)
    for module in library.closure(whole):
        path = library.path(module)
        hashes[path.relative_to(src).as_posix()] = _digest(path.read_text())
    return dict(sorted(hashes.items()))


def _first_line(stmt: ast.stmt) -> int:
    """The first line of a statement, its decorators included."""
    return min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", []))])


def _definition(tree: ast.Module, name: str) -> ast.stmt | None:
    """The top-level def or class of `name` in a module, or None."""
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.ClassDef) and stmt.name == name:
            return stmt
    return None
