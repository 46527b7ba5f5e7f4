"""scripts/device_check_tools.py `report`: the committed JSON names the device's throwaway work folder as $WORK
(its logs quote paths inside it), so no machine path reaches docs/gpu/."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_report_replaces_the_work_folder(tmp_path):
    spec = importlib.util.spec_from_file_location('device_check_tools', ROOT / 'scripts' / 'device_check_tools.py')
    tools = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tools)
    work = tmp_path / 'device_check.abc'
    work.mkdir()
    (work / 'env.status').write_text('0 1.5')
    (work / 'env.log').write_text(f'data={work}/data\n')
    (work / 'env.json').write_text(json.dumps({'site': f'{work}/site'}))
    out = tmp_path / 'report.json'
    tools.report(str(work), str(out))
    text = out.read_text()
    assert str(work) not in text
    result = json.loads(text)
    assert result['stages']['env'] == {'rc': 0, 'seconds': 1.5, 'ok': True, 'log_tail': 'data=$WORK/data\n'}
    assert result['env'] == {'site': '$WORK/site'}
