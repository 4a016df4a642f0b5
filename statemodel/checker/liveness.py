"""Graph algorithms for the liveness check: strongly connected components, and the fair ones.

The explorer's search (`statemodel.checker.search`) builds the fault-free graph of the states it found
and asks here where a run could stay for ever. A run that stays in a set of states for ever visits
some strongly connected component of them infinitely often; it is *fair* when every fairness label
enabled in a state it visits infinitely often is also taken infinitely often (strong fairness). So a
component is a place a fair run can stay exactly when every label enabled somewhere in it is taken by
an edge inside it; otherwise no fair run stays in all of it, but one may stay in what is left once the
states that enable an untaken label are removed, which is searched again (the Emerson-Lei refinement
that model checkers such as TLC and SPIN use for fairness). A component of one state with nothing
enabled is a dead end: a run may stay there, doing nothing, for ever.

Nodes are integers, labels any hashable value; edges whose label is None (a client's request) need
no fairness. Iterative throughout: a component can be far deeper than Python's recursion limit.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence

Edges = Mapping[int, Sequence[tuple[int, Hashable | None]]]


def components(nodes: Collection[int], successors: Callable[[int], Iterable[int]]) -> list[list[int]]:
    """The strongly connected components of the graph on `nodes` (Tarjan's algorithm); edges to
    nodes outside `nodes` are ignored. Every node is in exactly one component."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    found: list[list[int]] = []
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(successors(root)))]
        while work:
            node, pending = work[-1]
            for child in pending:
                if child not in nodes:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors(child))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    found.append(component)
    return found


def fair_components(
    nodes: Collection[int], edges: Edges, enabled: Mapping[int, frozenset[Hashable]]
) -> list[list[int]]:
    """The sets of `nodes` in which a strongly fair run can stay for ever: each is strongly connected
    (or one node), and every label `enabled` in one of its nodes is taken by an edge inside it."""
    fair: list[list[int]] = []
    work: list[set[int]] = [set(nodes)]
    while work:
        part = work.pop()
        for component in components(part, lambda node: (target for target, _ in edges.get(node, ()))):
            members = set(component)
            taken = {
                label for node in component for target, label in edges.get(node, ()) if target in members
            }
            unfair = {node for node in component if enabled.get(node, frozenset()) - taken}
            if not unfair:
                fair.append(sorted(component))
            elif len(unfair) < len(members):
                work.append(members - unfair)
    return fair


def fair_cycle(
    start: int, members: Collection[int], edges: Edges, enabled: Mapping[int, frozenset[Hashable]]
) -> list[tuple[int, Hashable | None]]:
    """A closed walk from `start` inside `members` (a fair component) that takes, somewhere, every
    label enabled in a node it visits, as its steps (target, label): a run that repeats it for ever
    is fair. Each step is taken to meet a label still owed, so the walk stays short. Empty when
    `start` owes nothing (a dead end)."""
    walk: list[tuple[int, Hashable | None]] = []
    taken: set[Hashable | None] = set()
    owed = set(enabled.get(start, frozenset()))
    node = start

    def arrive(steps: list[tuple[int, Hashable | None]]) -> None:
        taken.update(label for _, label in steps)
        for target, _ in steps:
            owed.update(enabled.get(target, frozenset()))
        owed.difference_update(taken)
        walk.extend(steps)

    while owed:
        route = _route(
            node, members, edges, lambda n: any(lb in owed for _, lb in _inside(n, members, edges))
        )
        arrive(route)
        node = route[-1][0] if route else node
        if owed:
            step = next(edge for edge in _inside(node, members, edges) if edge[1] in owed)
            arrive([step])
            node = step[0]
    if walk and node != start:
        arrive(_route(node, members, edges, lambda n: n == start))
    return walk


def _inside(node: int, members: Collection[int], edges: Edges) -> list[tuple[int, Hashable | None]]:
    return [(target, label) for target, label in edges.get(node, ()) if target in members]


def _route(
    source: int, members: Collection[int], edges: Edges, goal: Callable[[int], bool]
) -> list[tuple[int, Hashable | None]]:
    """The steps of a shortest walk inside `members` from `source` to a node that meets `goal`
    (none if `source` does). The goal must be reachable: `members` is strongly connected."""
    if goal(source):
        return []
    parents: dict[int, tuple[int, Hashable | None]] = {source: (source, None)}
    frontier = [source]
    while frontier:
        following: list[int] = []
        for node in frontier:
            for target, label in _inside(node, members, edges):
                if target in parents:
                    continue
                parents[target] = (node, label)
                if goal(target):
                    steps = []
                    while target != source:
                        before, via = parents[target]
                        steps.append((target, via))
                        target = before
                    return steps[::-1]
                following.append(target)
        frontier = following
    raise ValueError("the goal is not reachable inside the component")
