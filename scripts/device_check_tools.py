"""Helpers of scripts/device_check.sh: environment facts, matmul peak, dora run summary, the final JSON,
and (for the CPU dry run) a virtual environment holding only what the GPU machine's image holds.

Usage (from device_check.sh): python scripts/device_check_tools.py {env,peak,dora,report,emulate} ...
"""
import glob
import json
import os
import platform
import subprocess
import sys
import time
import typing as tp


def env(out: str) -> None:
    """Python, torch, GPU facts and the measured matmul peak (fp32 and TF32, 8192^3), as JSON."""
    import torch
    facts: tp.Dict[str, tp.Any] = {'python': platform.python_version(), 'torch': torch.__version__,
                                   'cuda_available': torch.cuda.is_available(),
                                   'device_count': torch.cuda.device_count()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        facts.update(gpu=props.name, memory_gib=props.total_memory / 2 ** 30, sms=props.multi_processor_count)
        n = 8192
        a, b = torch.randn(n, n, device='cuda'), torch.randn(n, n, device='cuda')
        for name, tf32 in (('fp32', False), ('tf32', True)):
            torch.backends.cuda.matmul.allow_tf32 = tf32
            for _ in range(3):
                a @ b
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(10):
                a @ b
            torch.cuda.synchronize()
            facts[f'matmul_{name}_tflops'] = 10 * 2 * n ** 3 / (time.perf_counter() - start) / 1e12
        torch.backends.cuda.matmul.allow_tf32 = False
    with open(out, 'w') as f:
        json.dump(facts, f, indent=1)
    print(json.dumps(facts))


def peak(env_json: str) -> None:
    """Prints the TF32 matmul peak that `env` measured, or nothing (CPU, or the env stage failed)."""
    value = (_load(env_json) or {}).get('matmul_tf32_tflops')
    if value:
        print(value)


def dora(xps: str, out: str) -> None:
    """Summary of the (timed-out) dora run: epochs done and the last epoch's train/valid metrics."""
    summary: tp.Dict[str, tp.Any] = {'history': None}
    for path in glob.glob(os.path.join(xps, '*', 'history.json')):
        with open(path) as f:
            history = json.load(f)
        summary = {'xp': os.path.basename(os.path.dirname(path)), 'epochs_done': len(history),
                   'last_epoch': history[-1] if history else None}
    with open(out, 'w') as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary)[:2000])


def _load(path: str) -> tp.Any:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def report(work: str, out: str) -> None:
    """One JSON from the stage statuses and results in `work`."""
    stages = {}
    for status in sorted(glob.glob(os.path.join(work, '*.status'))):
        name = os.path.basename(status)[:-len('.status')]
        rc, seconds = open(status).read().split()
        log = os.path.join(work, f'{name}.log')
        tail = open(log, errors='replace').read()[-3000:] if os.path.exists(log) else ''
        stages[name] = {'rc': int(rc), 'seconds': float(seconds), 'ok': rc == '0', 'log_tail': tail}
    result = {'date_utc': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), 'stages': stages}
    for key in ('env', 'bench_estimators', 'bench_step', 'bench_finetune', 'dora_train'):
        result[key] = _load(os.path.join(work, f'{key}.json'))
    if 'dora_train' in stages:  # stopped by its timeout on purpose: fine once at least one epoch ended
        train = stages['dora_train']
        train['ok'] = train['rc'] in (0, 124) and bool((result['dora_train'] or {}).get('epochs_done'))
    result['bench_mmd'] = [row for path in sorted(glob.glob(os.path.join(work, 'bench_mmd_*.json')))
                           for row in (_load(path) or [])]
    peak = (result['env'] or {}).get('matmul_fp32_tflops')
    for row in result['bench_mmd']:
        if peak and row['device'].startswith('cuda'):
            row['fraction_of_fp32_matmul_peak'] = row['tflops_fwd_bound'] / peak
    os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
    with open(out, 'w') as f:  # the machine's throwaway work folder, as $WORK: the report gets committed
        f.write(json.dumps(result, indent=1).replace(os.path.abspath(work), '$WORK'))
    print(f"wrote {out}: " + ', '.join(f"{k} {'ok' if v['ok'] else 'FAILED rc=' + str(v['rc'])}"
                                       for k, v in stages.items()))


def _manifests(root: str) -> tp.List[str]:
    return sorted(glob.glob(os.path.join(root, 'egs', '*', 'data.jsonl')))


def to_flac(root: str) -> None:
    """Convert the data set's wav files to FLAC in place, manifests included: audiocraft 1.3.0 reads .wav with
    PyAV (absent on the GPU machine, too large to carry) and .flac with soundfile; FLAC is also ~half the size."""
    import soundfile
    for wav in glob.glob(os.path.join(root, 'audio', '**', '*.wav'), recursive=True):
        data, rate = soundfile.read(wav, dtype='int16')
        soundfile.write(wav[:-len('.wav')] + '.flac', data, rate, subtype='PCM_16')
        os.remove(wav)
    for manifest in _manifests(root):
        lines = open(manifest).read().replace('.wav"', '.flac"')
        with open(manifest, 'w') as f:
            f.write(lines)


def relocate(root: str, target: str) -> None:
    """Manifests under `target`/egs whose paths point at `root`/audio: the ones written by the builder hold
    the absolute paths of the machine that built them."""
    for manifest in _manifests(root):
        split = os.path.basename(os.path.dirname(manifest))
        os.makedirs(os.path.join(target, 'egs', split), exist_ok=True)
        with open(manifest) as f, open(os.path.join(target, 'egs', split, 'data.jsonl'), 'w') as out:
            for line in f:
                entry = json.loads(line)
                entry['path'] = os.path.join(os.path.abspath(root), 'audio', entry['path'].split('/audio/', 1)[1])
                out.write(json.dumps(entry) + '\n')


# What the GPU machines' image holds (KINDS.md of the workplace's device tool, read 2026-11-17), among the
# distributions our code imports; everything else there must come from the carried wheels or the stand-ins.
DEVICE_IMAGE = {'torch', 'torchaudio', 'numpy', 'einops', 'torchmetrics', 'lightning-utilities', 'typing-extensions',
                'sympy', 'mpmath', 'networkx', 'jinja2', 'markupsafe', 'filelock', 'fsspec', 'triton', 'packaging',
                'pyyaml', 'tqdm', 'transformers', 'huggingface-hub', 'hf-xet', 'safetensors', 'tokenizers', 'regex',
                'requests', 'certifi', 'charset-normalizer', 'idna', 'urllib3', 'matplotlib', 'contourpy', 'cycler',
                'fonttools', 'kiwisolver', 'pillow', 'pyparsing', 'python-dateutil', 'six', 'scipy', 'numba',
                'llvmlite', 'scikit-learn', 'joblib', 'threadpoolctl', 'msgpack', 'lazy-loader', 'cloudpickle',
                'pytest', 'pytest-timeout', 'iniconfig', 'pluggy', 'pygments', 'setuptools', 'pip', 'sentencepiece',
                'click', 'rich',
                'markdown-it-py', 'mdurl', 'typer', 'shellingham', 'httpx', 'httpcore', 'h11', 'anyio', 'psutil',
                'annotated-doc'}


def emulate(venv_python: str, target: str) -> None:
    """Make `target` a site folder of symbolic links to the distributions of `venv_python`'s environment that
    the GPU image also has (nvidia-* and cuda-* libraries included), for a CPU dry run of the device path."""
    code = ("import importlib.metadata as md, json; print(json.dumps([[d.metadata['Name'], "
            "[str(f) for f in (d.files or [])], str(d.locate_file(''))] for d in md.distributions()]))")
    dists = json.loads(subprocess.run([venv_python, '-c', code], check=True, capture_output=True, text=True).stdout)
    os.makedirs(target, exist_ok=True)
    for name, files, root in dists:
        canonical = name.lower().replace('_', '-')
        if canonical not in DEVICE_IMAGE and not canonical.startswith(('nvidia-', 'cuda-')):
            continue
        for top in {f.split('/')[0] for f in files if not f.startswith('..')}:
            link = os.path.join(target, top)
            if not os.path.lexists(link) and os.path.exists(os.path.join(root, top)):
                os.symlink(os.path.join(root, top), link)


if __name__ == '__main__':
    command, args = sys.argv[1], sys.argv[2:]
    {'env': env, 'peak': peak, 'dora': dora, 'report': report, 'emulate': emulate, 'to_flac': to_flac,
     'relocate': relocate}[command](*args)
