"""The package's import graph (every `import`, at module level or inside a function): no circle, and no module of
the layers below the solvers (data, quantization, compat, losses, metrics, models) imports the solvers or the
reproduction harnesses. Read from the source with `ast`, so a late import inside a function counts too."""
import ast
from pathlib import Path
import typing as tp

import audiocraft_mmd

PACKAGE = Path(audiocraft_mmd.__file__).parent
LOWER = ('data', 'quantization', 'compat', 'losses', 'metrics', 'models')
UPPER = ('solvers', 'reproduce', 'reproduce_lm', 'lm_study')


def _modules() -> tp.Dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob('*.py'):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix('').parts)
        if parts[-1] == '__init__':
            parts.pop()
        modules['.'.join(parts)] = path
    return modules


def _imported(name: str, path: Path, modules: tp.Collection[str]) -> tp.Set[str]:
    """The package's modules that `name` imports (a `from pkg import x` counts as pkg.x where x is a module)."""
    package = name.split('.') if path.name == '__init__.py' else name.split('.')[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = '.'.join(package[:len(package) - node.level + 1] + [node.module or '']).strip('.') \
                if node.level else node.module or ''
            found |= {f'{base}.{a.name}' if f'{base}.{a.name}' in modules else base for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m in modules and m != name}


def import_graph() -> tp.Dict[str, tp.Set[str]]:
    modules = _modules()
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def _cycle_from(start: str, graph: tp.Dict[str, tp.Set[str]]) -> tp.Optional[tp.List[str]]:
    """A path start -> ... -> start, if one exists (depth-first)."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in graph[node]:
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return None


def test_the_graph_sees_late_imports():
    """Guards the reader: metrics.liveness_calibration imports models.loaders inside `main`."""
    assert 'audiocraft_mmd.models.loaders' in import_graph()['audiocraft_mmd.metrics.liveness_calibration']


def test_no_import_circle():
    graph = import_graph()
    cycles = [cycle for cycle in map(lambda m: _cycle_from(m, graph), sorted(graph)) if cycle]
    assert not cycles, f"import circles: {cycles[:3]}"


def test_lower_layers_do_not_import_the_solvers_or_reproduction():
    upward = [(name, target) for name, targets in import_graph().items() for target in targets
              if name.split('.')[1:2] and name.split('.')[1] in LOWER and target.split('.')[1:2]
              and target.split('.')[1] in UPPER]
    assert not upward, f"imports from below the solvers into them: {upward}"


# Inside `losses`, from the bottom up: what the others stand on; the estimators' interface and engine; the
# estimators; the one that builds on the shuffle; their registry and the package's face; the loss; the bank; the
# `mmd` block's owner; the tools on top. A module imports only from layers below its own.
LOSSES_LAYERS = (
    ('scope', 'kernels', 'streams'),
    ('estimators.base', 'estimators.blocked'),
    ('estimators.shuffle', 'estimators.closed_form', 'estimators.features'),
    ('estimators.conditional',),
    ('estimators.registry',),
    ('estimators',),  # the package's face
    ('mmd',),
    ('mmd_bank',),
    ('mmd_config',),
    ('kernel_scale',),
)


def test_losses_layers_import_downward_only():
    prefix = 'audiocraft_mmd.losses.'
    layer = {prefix + name: index for index, names in enumerate(LOSSES_LAYERS) for name in names}
    graph = import_graph()
    modules = {name for name in graph if name.startswith(prefix)}
    assert modules == set(layer), f"modules of losses without a layer, or layers without one: {modules ^ set(layer)}"
    upward = [(name, target) for name in modules for target in graph[name]
              if target in layer and layer[target] >= layer[name]]
    assert not upward, f"imports inside losses that do not go down a layer: {upward}"
