"""The package's import graph (every `import`, at module level or inside a function): no circle; no module of the
layers below the solvers (data, quantization, compat, losses, metrics, music_quality, models) imports the solvers
or the studies, and the solvers do not import the studies; the two metric concerns (codebook independence in
`metrics`, music quality in `music_quality`) never import each other; sibling studies (`studies.codecs` and
`studies.lm`, and the LM study's engines `solver` and `tokens`) share code only through what stands above them
in the tree (`studies.common`, `studies.lm`'s own modules). Read from the source with `ast`, so a late import
inside a function counts too."""
import ast
from pathlib import Path
import typing as tp

import audiocraft_mmd

PACKAGE = Path(audiocraft_mmd.__file__).parent
LOWER = ('data', 'quantization', 'compat', 'losses', 'metrics', 'music_quality', 'models')
UPPER = ('solvers', 'studies')
# package -> its sub-packages that must not import each other
SIBLINGS = {'audiocraft_mmd.studies': ('codecs', 'lm'), 'audiocraft_mmd.studies.lm': ('solver', 'tokens')}
# A study built on others (it fine-tunes codecs and scores them with the codec study's protocol, then continues
# the token study's LMs): above its siblings, so it may import them, and none of them imports it.
COMPOSITE_STUDIES = ('audiocraft_mmd.studies.finetune',)


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


def _top(name: str) -> str:
    """The package's first-level part of a module name (`audiocraft_mmd.metrics.fad` -> `metrics`)."""
    return name.split('.')[1] if name.count('.') else ''


def test_the_solvers_do_not_import_the_studies():
    upward = [(name, target) for name, targets in import_graph().items() for target in targets
              if _top(name) == 'solvers' and _top(target) == 'studies']
    assert not upward, f"imports from the solvers into the studies: {upward}"


def test_the_two_metric_concerns_do_not_import_each_other():
    crossing = [(name, target) for name, targets in import_graph().items() for target in targets
                if {_top(name), _top(target)} == {'metrics', 'music_quality'}]
    assert not crossing, f"imports between codebook-independence and music-quality metrics: {crossing}"


def _sibling(name: str, package: str, siblings: tp.Sequence[str]) -> tp.Optional[str]:
    """Which of `package`'s `siblings` holds module `name` (None: none of them)."""
    rest = name[len(package) + 1:].split('.')[0] if name.startswith(package + '.') else None
    return rest if rest in siblings else None


def test_sibling_studies_do_not_import_each_other():
    graph = import_graph()
    assert any(_sibling(n, p, s) for n in graph for p, s in SIBLINGS.items()), "the studies are not where expected"
    crossing = []
    for package, siblings in SIBLINGS.items():
        for name, targets in graph.items():
            here = _sibling(name, package, siblings)
            crossing += [(name, t) for t in targets if here and _sibling(t, package, siblings) not in (None, here)]
    assert not crossing, f"imports between sibling studies (share code through their parent instead): {crossing}"


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


def test_no_study_imports_a_composite_study():
    graph = import_graph()
    inside = lambda name, package: name == package or name.startswith(package + '.')  # noqa: E731
    assert any(inside(n, p) for n in graph for p in COMPOSITE_STUDIES), "the composite studies are not where expected"
    upward = [(name, target) for name, targets in graph.items() for target in targets for p in COMPOSITE_STUDIES
              if inside(target, p) and not inside(name, p) and name.split('.')[1] == 'studies']
    assert not upward, f"imports of a composite study by another study: {upward}"
