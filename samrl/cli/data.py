"""`samrl data ...`: list, inspect and generate datasets."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import click

from samrl.config import load_config
from samrl.config.options import QUIET, config_file
from samrl.data import mujoco, training_transitions
from samrl.data.builtin import (
    BUILTINS,
    cache_path,
    cached_files,
    dataset_cache_dir,
    ensure_builtin,
    needs_sac_training,
    sac_training_needed,
)
from samrl.data.corruption import changes
from samrl.data.download import offline
from samrl.data.hdf5 import read_d4rl_hdf5, write_d4rl_hdf5
from samrl.data.info import DatasetInfo
from samrl.data.minari_source import INSTALL_HINT
from samrl.data.provenance import provenance
from samrl.data.references import normalized, normalized_statistics
from samrl.data.remote import D3RLPY_DATASETS, D4RL_PATHS, D4RL_URL_ENV, d4rl_base_url, d4rl_remote
from samrl.data.sources import (
    d4rl_dir,
    describe,
    fetch_named,
    local_d4rl,
    minari_root,
    read_user_data,
    split_spec,
)
from samrl.data.transitions import Transitions, return_statistics
from samrl.errors import DatasetError


@click.group("data")
def data_group() -> None:
    """List, inspect, generate and download datasets (built-ins are cached under
    $SAMRL_DATA_DIR, default ~/.cache/samrl/datasets; D4RL files under $D4RL_DATASET_DIR,
    default ~/.d4rl/datasets).

    \b
    Example:
      samrl data list --remote
      samrl data download d4rl:hopper-medium-v2 d3rlpy:pendulum-replay
      samrl data make pendulum-medium --size 100000 --seed 0
      samrl data info pendulum-medium
    """


@data_group.command("download")
@click.argument("specs", nargs=-1, required=True, metavar="SPEC...")
@QUIET
def download_command(specs: tuple[str, ...], quiet: bool) -> None:
    """Download named datasets (d4rl:<name>, d3rlpy:<name>, minari:<id>) into the caches their
    own libraries use; files already there are kept. SAMRL_D4RL_URL replaces D4RL's server
    (a mirror); Minari's server is chosen by MINARI_REMOTE.

    \b
    Example:
      samrl data download d4rl:hopper-medium-v2 d4rl:walker2d-medium-replay-v2
      SAMRL_D4RL_URL=https://mirror.example.org/d4rl samrl data download d4rl:hopper-medium-v2
    """
    for spec in specs:
        if split_spec(spec)[0] not in ("d4rl", "d3rlpy", "minari"):
            raise DatasetError(
                f"'{spec}' is not a downloadable dataset (give d4rl:<name>, d3rlpy:<name> or "
                "minari:<id>; see `samrl data list --remote`)"
            )
    for spec in specs:
        path = fetch_named(spec, progress=not quiet)
        click.echo(f"samrl: {spec} -> {path}")


@data_group.command("list")
@click.option("--remote", is_flag=True, help="Also list what can be downloaded, and what is local.")
def list_command(remote: bool) -> None:
    """Built-in datasets with their default size and cached files, then users' files found;
    with --remote, every downloadable dataset and whether it is already local.

    \b
    Example:
      SAMRL_DATA_DIR=/scratch/data samrl data list
      samrl data list --remote
    """
    click.echo(f"{'name':<26} {'env':<15} {'default size':>12}  cached (size/seed)")
    for name, builtin in BUILTINS.items():
        cached = [_size_seed(p) for p in cached_files(builtin)]
        click.echo(
            f"{name:<26} {builtin.env_id:<15} {builtin.default_size:>12}  "
            f"{', '.join(cached) if cached else '-'}"
        )
    click.echo(f"cache: {dataset_cache_dir()}")
    d4rl_files = sorted(d4rl_dir().glob("*.hdf5")) if d4rl_dir().is_dir() else []
    if d4rl_files:
        click.echo(f"D4RL files in {d4rl_dir()}: " + ", ".join(p.name for p in d4rl_files))
    root = minari_root()
    minari_ids = (
        sorted(str(p.parent.parent.relative_to(root)) for p in root.glob("**/data/main_data.hdf5"))
        if root.is_dir()
        else []
    )
    if minari_ids:
        click.echo(f"Minari datasets in {root}: " + ", ".join(minari_ids))
    if remote:
        _list_remote()


def _list_remote() -> None:
    click.echo(f"\n{'downloadable':<34} local file")
    for name in D4RL_PATHS:
        remote = d4rl_remote(name)
        assert remote is not None
        local = local_d4rl(name)
        click.echo(f"{'d4rl:' + name:<34} {local or '-'}")
    for name, d in D3RLPY_DATASETS.items():
        click.echo(f"{'d3rlpy:' + name:<34} {d.path() if d.path().is_file() else '-'}")
    click.echo(f"D4RL server: {d4rl_base_url()} (${D4RL_URL_ENV} replaces it)")
    click.echo(_minari_remote_line())


def _minari_remote_line() -> str:
    try:
        import minari
    except ImportError:
        return f"Minari datasets: install the extra to list and download them ({INSTALL_HINT})"
    if offline():
        return "Minari datasets: not listed (offline); see `minari list remote` elsewhere"
    try:
        ids = sorted(minari.list_remote_datasets())
    except Exception as exc:  # Minari's remote listing raises many kinds; one line
        return f"Minari datasets: cannot list the remote ({str(exc).splitlines()[0]})"
    return "Minari datasets (minari:<id>): " + ", ".join(ids)


def _size_seed(path: pathlib.Path) -> str:
    parts = dict((p[0], p[1:]) for p in path.stem.split("_")[1:] if p)
    return f"{parts.get('n', '?')}/s{parts.get('s', '?')}"


@data_group.command("info")
@click.argument("name", required=False)
@click.option("--size", type=click.IntRange(min=1), default=None, help="Built-ins: only this size.")
@click.option("--seed", type=int, default=None, help="Built-ins: only this seed.")
@config_file(
    "Describe the training data of this experiment config instead (its corruption too).",
    required=False,
)
def info_command(
    name: str | None, size: int | None, seed: int | None, config_path: str | None
) -> None:
    """Episodes, transitions, return statistics and reference returns of a dataset.

    NAME is a built-in name or d4rl:<name>, minari:<id>, d3rlpy:<name>, file:<path>. For a
    built-in, every cached version (each size and seed) is described; one that has not been
    generated yet is described without generating it. Named remote datasets are downloaded
    first if missing (unless offline). With --config instead of NAME: the training rows that
    config trains on, and what its dataset.corruption changed (per field, the share of
    training transitions changed and the mean absolute change in units of the field's std).

    \b
    Example:
      samrl data info pendulum-medium
      samrl data info pendulum-medium --size 100000 --seed 0
      samrl data info d4rl:hopper-medium-v2
      samrl data info --config configs/corruption/iql_hc_random_obs.yaml
    """
    if config_path is not None:
        if name is not None or size is not None or seed is not None:
            raise click.UsageError("--config describes the config's dataset: give no NAME")
        _config_info(config_path)
        return
    if name is None:
        raise click.UsageError("give a dataset NAME or --config CONFIG")
    info = describe(name)
    click.echo(
        f"dataset:     {info.spec} ({info.kind}, {'discrete' if info.discrete else 'continuous'})"
    )
    click.echo(f"env:         {info.env_id or '-'}")
    click.echo(f"references:  min {_num(info.ref_min_return)}, max {_num(info.ref_max_return)}")
    if info.kind != "builtin":
        data, metadata, path = read_user_data(info, progress=True)
        for note in (*info.notes, *data.notes):
            click.echo(f"note:        {note}")
        _echo_statistics(data, metadata, path, info)
        return
    for note in info.notes:
        click.echo(f"note:        {note}")
    _echo_builtin_versions(name, info, size, seed)


def _echo_builtin_versions(
    name: str, info: DatasetInfo, size: int | None, seed: int | None
) -> None:
    """Each cached version of a built-in dataset (those of --size/--seed when given), or how
    to generate it when none is."""
    builtin = BUILTINS[name]
    paths = [
        p
        for p in cached_files(builtin)
        if (size is None or _size_seed(p).split("/")[0] == str(size))
        and (seed is None or _size_seed(p).split("/")[1] == f"s{seed}")
    ]
    if not paths:
        wanted = size or builtin.default_size
        click.echo(
            f"not generated yet (would be {cache_path(builtin, wanted, seed or 0)}); run: "
            f"samrl data make {name} --size {wanted} --seed {seed or 0}"
        )
        return
    click.echo(
        f"cached:      {len(paths)} version(s) (size/seed: "
        f"{', '.join(_size_seed(p) for p in paths)})"
    )
    for path in paths:
        data, metadata = read_d4rl_hdf5(path, discrete=info.discrete)
        for note in data.notes:
            click.echo(f"note:        {note}")
        _echo_statistics(data, metadata, path, info)


def _config_transitions(config_path: str) -> tuple[Any, Any]:
    """A config's dataset section and the data it trains on (training_transitions)."""
    ds = load_config(config_path).dataset
    return ds, training_transitions(
        ds.name,
        size=ds.size,
        seed=ds.seed,
        test_fraction=ds.test_fraction,
        sha256=ds.sha256,
        corruption=ds.corruption,
    )


def _config_info(config_path: str) -> None:
    ds, (info, clean, trained, record, path) = _config_transitions(config_path)
    click.echo(
        f"dataset:     {info.spec} ({info.kind}, {'discrete' if info.discrete else 'continuous'})"
    )
    if path is not None:
        click.echo(f"file:        {path}")
        _echo_provenance(info.spec, path)
    click.echo(f"training:    {len(trained)} transitions (test_fraction {ds.test_fraction})")
    if record is None:
        click.echo("corruption:  none")
        return
    cor = ds.corruption
    assert cor is not None
    click.echo(
        f"corruption:  {cor.mode} {', '.join(cor.fields)}, rate {cor.rate:g}, "
        f"scale {cor.scale:g}, seed {cor.seed}"
    )
    click.echo(f"cache:       {record['file']}")
    if record.get("attacker"):
        a = record["attacker"]
        click.echo(
            f"attacker:    d3rlpy {a['algo']}, {a['n_critics']} critics, {a['n_steps']} steps "
            f"on the clean data ({a['file']})"
        )
    click.echo(f"{'field':<18} {'changed':>8} {'mean |change| / std':>20}")
    for change in changes(clean, trained):
        mean = "-" if change.mean_abs_std != change.mean_abs_std else f"{change.mean_abs_std:.4f}"
        click.echo(f"{change.field:<18} {change.fraction:>8.4f} {mean:>20}")


@data_group.command("export")
@config_file("The experiment config whose training data are written.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="FILE.hdf5")
def export_command(config_path: str, out: str) -> None:
    """Write the data a config trains on (its training episodes, corruption included) in
    D4RL's HDF5 layout: observations, actions, rewards, next_observations, terminals,
    timeouts, plus a metadata group (env_id, reference returns, the corruption). The file is
    itself a dataset: file:FILE.hdf5.

    \b
    Example:
      samrl data export --config configs/corruption/iql_adam_hopper_random_obs.yaml --out h.hdf5
    """
    ds, (info, _, trained, record, _) = _config_transitions(config_path)
    metadata = {
        "source": info.spec,
        "env_id": info.env_id,
        "discrete": info.discrete,
        "ref_min_return": info.ref_min_return,
        "ref_max_return": info.ref_max_return,
        "test_fraction": ds.test_fraction,
        "corruption": None if record is None else record["corruption"],
        "attacker": None if record is None else record.get("attacker"),
    }
    path = pathlib.Path(out)
    try:
        write_d4rl_hdf5(path, trained, {k: v for k, v in metadata.items() if v is not None})
    except OSError as exc:
        raise DatasetError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    click.echo(f"wrote {len(trained)} transitions of {info.spec} -> {path}")


def _echo_provenance(spec: str, path: pathlib.Path | None) -> None:
    record = provenance(spec, path)
    if record is not None:  # what a run's config.yaml records, and dataset.sha256 pins
        click.echo(f"size:        {record['size']} bytes")
        click.echo(f"sha256:      {record['sha256']}")
        if "url" in record:
            click.echo(f"source:      {record['url']}")


def _echo_statistics(
    data: Transitions, metadata: dict[str, Any], path: pathlib.Path, info: DatasetInfo
) -> None:
    """What D4RL users read off a dataset: episodes, the spread of the episode return, and
    both in normalized-score units (100 * (R - random) / (expert - random), the dataset's
    references). An episode is cut at each terminal or timeout; a last unfinished one counts
    with the return it has."""
    returns = data.episode_returns()
    stats = return_statistics(returns)
    click.echo(f"file:        {path}")
    _echo_provenance(info.spec, path)
    click.echo(f"episodes:    {len(returns)} ({int(data.terminals.sum())} terminated)")
    click.echo(f"{'transitions:':<13}{len(data)}")
    if stats:
        click.echo(f"returns:     {_spread(stats)}")
    scores = normalized_statistics(stats, info.ref_min_return, info.ref_max_return)
    if scores:
        click.echo(f"normalized:  {_spread(scores)}")
    for key in ("behaviour_policy", "behaviour_return_mean", "generator_version", "seed"):
        if key in metadata:
            click.echo(f"{key + ':':<12} {metadata[key]}")
    behaviour = metadata.get("behaviour_return_mean")
    if isinstance(behaviour, int | float) and scores:
        assert info.ref_min_return is not None and info.ref_max_return is not None
        score = normalized(behaviour, info.ref_min_return, info.ref_max_return)
        click.echo(f"behaviour normalized: {score:.2f} (behaviour_return_mean, whole episodes)")


def _spread(stats: dict[str, float]) -> str:
    return (
        f"mean {stats['mean']:.2f}, std {stats['std']:.2f}, "
        f"min {stats['min']:.2f}, max {stats['max']:.2f}"
    )


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@data_group.command("make")
@click.argument("name")
@click.option(
    "--size",
    type=click.IntRange(min=1),
    default=None,
    help="Transitions to generate (default 100000 for pendulum/cartpole, 1000000 for MuJoCo).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Generation seed.")
@click.option(
    "--policy-steps",
    type=click.IntRange(min=1),
    default=None,
    help=f"MuJoCo: train the SAC behaviour policy here for this many steps instead of "
    f"rolling out samrl's shipped one (also ${mujoco.POLICY_STEPS_ENV}); medium-replay needs it.",
)
def make_command(name: str, size: int | None, seed: int, policy_steps: int | None) -> None:
    """Generate a built-in dataset into the cache (resumes an interrupted MuJoCo collection).

    \b
    Example:
      samrl data make pendulum-medium --size 100000 --seed 0
      samrl data make hopper-medium          # rolls out samrl's shipped SAC policy: minutes
      samrl data make hopper-medium-replay --policy-steps 100000   # trains SAC here: ~1 h
    """
    info = describe(name)
    if info.kind != "builtin":
        raise DatasetError(f"'{name}' is not a built-in dataset; only built-ins can be made")
    builtin = BUILTINS[name]
    wanted = size or builtin.default_size
    asked_to_train = policy_steps is not None or os.environ.get(mujoco.POLICY_STEPS_ENV)
    cached = cache_path(builtin, wanted, seed).exists()
    if not asked_to_train and not cached and needs_sac_training(builtin):
        raise DatasetError(sac_training_needed(builtin, wanted, seed))
    path = cache_path(builtin, size or builtin.default_size, seed, policy_steps)
    existed = path.exists()
    path = ensure_builtin(builtin, size=size, seed=seed, progress=True, policy_steps=policy_steps)
    data, metadata = read_d4rl_hdf5(path, discrete=builtin.discrete)
    mean = metadata.get("behaviour_return_mean")
    mean_text = "-" if mean is None else f"{mean:.1f}"
    verb = "already cached" if existed else "wrote"
    click.echo(
        f"{verb} {name}: {len(data)} transitions, {len(data.episode_ends)} episodes, "
        f"behaviour return {mean_text} -> {path}"
    )
