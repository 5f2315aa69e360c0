"""No import cycle among the modules of receiver/, counting every import statement: function-level ones and those
under `if TYPE_CHECKING:` too (grimp reads them all). A cycle that only a late import keeps from crashing is still a
cycle: the two modules cannot be understood, tested or moved apart. On failure, each cycle is listed with the line
of every import in it."""

from __future__ import annotations

import grimp

PACKAGE = "receiver"


def strongly_connected_components(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit to meet): the groups of two or more modules that all reach
    each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            module, children = work[-1]
            for child in children:
                if child not in graph.modules:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[module] = min(low[module], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    # a module importing itself (`if __name__ == "__main__": from this.module import main`, so
                    # that pickled classes are the module's, not __main__'s) is no cycle between two modules
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def one_cycle(graph: grimp.ImportGraph, component: list[str]) -> list[str]:
    """A shortest cycle through the first module of a component, by breadth-first search inside it."""
    members = set(component)
    start = component[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for module in frontier:
            for child in sorted(graph.find_modules_directly_imported_by(module)):
                if child == start:
                    path = [module]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if child in members and child not in came_from:
                    came_from[child] = module
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {component}")


def describe(graph: grimp.ImportGraph, cycle: list[str]) -> str:
    steps = [cycle[0]]
    for importer, imported in zip(cycle, cycle[1:]):
        lines = sorted({detail["line_number"] for detail in graph.get_import_details(importer=importer, imported=imported)})
        steps.append(f"-> {imported} (line {', '.join(map(str, lines))} of {importer})")
    return "\n    ".join(steps)


def test_no_import_cycle_among_receiver_modules():
    graph = grimp.build_graph(PACKAGE, include_external_packages=False, exclude_type_checking_imports=False,
                              cache_dir=None)
    assert len(graph.modules) > 50, sorted(graph.modules)  # the whole package was read
    components = strongly_connected_components(graph)
    report = [f"{len(component)} modules that import each other: {', '.join(component)}\n  for example:\n    "
              + describe(graph, one_cycle(graph, component)) for component in components]
    assert not components, f"{len(components)} import cycle(s) in {PACKAGE}/:\n" + "\n".join(report)


def test_the_cycle_search_finds_a_cycle(tmp_path, monkeypatch):
    """The search is not one that cannot fail: a three-module cycle (one import inside a function, one under
    TYPE_CHECKING) in a package built in tmp_path is found and reported."""
    package = tmp_path / "cyclepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from cyclepkg import b\n")
    (package / "b.py").write_text("def f():\n    from cyclepkg import c\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cyclepkg import a\n")
    (package / "d.py").write_text("from cyclepkg import a\n")  # reaches the cycle, is not in it
    (package / "e.py").write_text("if __name__ == '__main__':\n    from cyclepkg.e import main\n")  # not a cycle
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("cyclepkg", exclude_type_checking_imports=False, cache_dir=None)
    components = strongly_connected_components(graph)
    assert components == [["cyclepkg.a", "cyclepkg.b", "cyclepkg.c"]]
    cycle = one_cycle(graph, components[0])
    assert cycle == ["cyclepkg.a", "cyclepkg.b", "cyclepkg.c", "cyclepkg.a"]
    assert "(line 2 of cyclepkg.b)" in describe(graph, cycle)
