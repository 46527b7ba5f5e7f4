"""The test tree has no __init__.py files (pytest's default import mode): two test modules with the same
basename in different folders stop collection with 'import file mismatch'. Catch it here, by name."""
from collections import Counter
from pathlib import Path


def test_test_module_basenames_are_unique():
    names = Counter(path.name for path in Path(__file__).parent.rglob('test_*.py'))
    assert not [name for name, count in names.items() if count > 1], "rename the duplicated test modules"
