"""What the study harnesses share (`studies.codecs`, and the LM study's engines `studies.lm.solver` and
`studies.lm.tokens`): the refusal of `--set` overrides that the plan sets per run, the schedule from the command
line, report metadata with repository-relative paths, and JSON result caches keyed on what was measured (a
checkpoint file by size and modification time)."""
import dataclasses
import json
import logging
from pathlib import Path
import typing as tp

from ...environment import repo_relative


def check_common(common: tp.Sequence[str], plan_keys: tp.Sequence[str], unit: str, flags: str) -> None:
    """Refuse common overrides of keys the plan sets per `unit` (hydra would fail on the duplicate later);
    `flags` says which command-line flags set them instead."""
    clashes = [o for o in common if o.lstrip('+~').split('=')[0] in plan_keys]
    if clashes:
        raise ValueError(f"--set {' '.join(clashes)}: the plan sets {', '.join(plan_keys)} per {unit} ({flags})")


def schedule_of(base: tp.Any, given: tp.Mapping[str, tp.Any]) -> tp.Any:
    """The dataclass `base` with the command-line values `given` (None: not given) replacing its fields."""
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items() if v is not None}
    return dataclasses.replace(base, **given)


def portable(meta: dict, protocol_paths: tp.Sequence[str]) -> dict:
    """`meta` with the paths inside the repository made relative to it: the protocol's `protocol_paths` and the
    runs' XP folders and logs."""
    protocol = {**meta['protocol'], **{key: repo_relative(meta['protocol'][key]) for key in protocol_paths}}
    statuses = [{**status, **{key: repo_relative(status[key]) for key in ('folder', 'log') if status.get(key)}}
                for status in meta.get('statuses', [])]
    return {**meta, 'protocol': protocol, 'statuses': statuses}


def file_key(path: Path) -> tp.Dict[str, float]:
    """The cache key of a file's content, cheaply: its size and modification time."""
    stat = path.stat()
    return {'size': stat.st_size, 'mtime': stat.st_mtime}


@dataclasses.dataclass
class CachedJSON:
    """A JSON file {'key': key, field: result, ...} reused while its key (the protocol and what was measured) is
    unchanged; `path` None caches nothing."""
    path: tp.Optional[Path]
    key: dict
    field: str = 'results'

    def get(self) -> tp.Any:
        if self.path is not None and self.path.exists():
            data = json.loads(self.path.read_text())
            if data.get('key') == self.key:
                return data[self.field]
        return None

    def put(self, result: tp.Any, **extra: tp.Any) -> tp.Any:
        """Write `result` (and `extra` fields beside it); returns `result`."""
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({'key': self.key, self.field: result, **extra}, indent=1))
        return result


def log_outcome(logger: logging.Logger, claims: tp.Sequence[dict], report: Path, seconds: float,
                statuses: tp.Sequence[dict], unit: str) -> int:
    """Log each claim's verdict, the report, and the failed runs; the command's exit status (1 if any failed)."""
    width = max((len(c['claim']) for c in claims), default=0)
    for claim in claims:
        logger.info("%-*s %s (diff %+.3g, SE %.2g)", width, claim['claim'], claim['verdict'], claim['diff'],
                    claim['se'])
    logger.info("report: %s (%.0f s in all)", report, seconds)
    failed = [s for s in statuses if s['status'] == 'failed']
    if failed:
        runs = ', '.join(f"{s['run']} ({s.get('log')})" for s in failed)
        logger.error("%d %s(s) failed: %s", len(failed), unit, runs)
        return 1
    return 0
