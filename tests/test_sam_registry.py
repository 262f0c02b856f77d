"""SAM variants are registered strategy classes: a new one is one class plus its registration,
and files saved before variants were classes still load.

The variant defined here is what a newcomer writes: ScaledSAM perturbs with radius scale * rho_t
(its own parameter `scale`), so with rho 0.05 and scale 2 it must train exactly as plain SAM with
rho 0.1 (0.05 * 2.0 == 0.1 in floating point). It goes through everything the registry feeds:
config validation, `samrl config keys`, the factory, `samrl train`, params.json and
d3rlpy.load_learnable.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import d3rlpy
import pytest
import torch
from conftest import build, run_cli, tiny_config, train, write_config

import samrl
from samrl.config import resolve
from samrl.errors import ConfigError
from samrl.metrics import GRAD_COSINE
from samrl.sam import SAMFactory, install
from samrl.sam.engine import sam_optimizers
from samrl.sam.names import OPTIMIZER_NAMES, README_END, README_START, markdown_table
from samrl.sam.strategy import (
    Param,
    SAMVariant,
    fail,
    register_variant,
    unregister_variant,
    variant_names,
)
from samrl.sam.variants import GSAM, SAM, LookSAM, display_name

samrl.register()  # d3rlpy.load_learnable of samrl models below

DATA = Path(__file__).resolve().parent / "data"
README = Path(__file__).resolve().parents[1] / "README.md"


def _check_scale(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise fail("scale", f"must be a number > 0, got {value!r}")


class ScaledSAM(SAMVariant):
    """SAM at radius scale * rho_t."""

    name = "scaled_sam"
    summary = "SAM at radius scale * rho"
    label = "ScaledSAM"
    params = (Param("scale", "multiplies the radius", default=1.0, check=_check_scale),)
    scale: float

    def ascent(
        self, params: list[Any], grads: list[Any], rho: float, adaptive: bool
    ) -> tuple[list[Any], Any]:
        return super().ascent(params, grads, rho * self.scale, adaptive)


@pytest.fixture
def scaled_sam() -> Iterator[type[SAMVariant]]:
    register_variant(ScaledSAM)
    try:
        yield ScaledSAM
    finally:
        unregister_variant(ScaledSAM.name)


def _csv(run_dir: Path, name: str) -> str:
    return (run_dir / name).read_text()


def test_a_new_variant_is_one_class_and_its_registration(
    scaled_sam: type[SAMVariant], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "scaled_sam" in OPTIMIZER_NAMES and "scaled_sam" in variant_names()
    assert OPTIMIZER_NAMES["scaled_sam"].keys[0] == "scale"
    assert display_name("scaled_sam") == "ScaledSAM"  # in result tables and figures

    # its parameter is a config key, documented by the class, checked by the class
    code, out, _ = run_cli(["config", "keys"], capsys)
    assert code == 0
    assert any(
        line.startswith("optim.scale ") and "scaled_sam: multiplies the radius" in line
        for line in out.splitlines()
    ), out
    assert any(line.startswith("optim.name ") and "scaled_sam" in line for line in out.splitlines())
    bad = tiny_config(tmp_path, optim={"name": "scaled_sam", "rho": 0.05, "scale": -1})
    with pytest.raises(ConfigError, match=r"^c\.yaml: optim\.scale: must be a number > 0, got -1$"):
        resolve(bad, source="c.yaml", check_dataset=False)
    other = tiny_config(tmp_path, optim={"name": "sam", "rho": 0.05, "scale": 2.0})
    with pytest.raises(ConfigError, match=r"optim\.scale: unknown key for optimizer 'sam'"):
        resolve(other, source="c.yaml", check_dataset=False)
    with pytest.raises(ConfigError, match=r"^optim\.scale: applies to scaled_sam, not gsam$"):
        SAMFactory(variant="gsam", options={"scale": 2.0})

    # trained through the config path: exactly plain SAM at twice the radius
    scaled = tiny_config(tmp_path, optim={"name": "scaled_sam", "rho": 0.05, "scale": 2.0})
    plain = tiny_config(tmp_path, optim={"name": "sam", "rho": 0.1})
    runs = []
    for config in (scaled, plain):
        code, out, err = run_cli(["train", "--config", str(write_config(tmp_path, config))], capsys)
        assert code == 0, err
        runs.append(tmp_path / "runs" / "tiny" / resolve(config, source="c").run_id)
    for name in ("loss.csv", "sharpness.csv"):
        assert _csv(runs[0], name) == _csv(runs[1], name), name
    assert "critic_sharpness" in _csv(runs[0], "sharpness.csv")

    # saved by d3rlpy with its parameter, and loaded back as the same variant
    params = json.loads((runs[0] / "d3rlpy" / "params.json").read_text())
    saved = params["critic_optim_factory"]
    assert saved["type"] == "sam"
    assert saved["params"]["variant"] == "scaled_sam"
    assert saved["params"]["options"] == {"scale": 2.0}
    model = sorted((runs[0] / "d3rlpy").glob("model_*.d3"))[-1]
    loaded = d3rlpy.load_learnable(str(model), device="cpu")
    for optimizer in sam_optimizers(loaded).values():
        assert isinstance(optimizer.variant, ScaledSAM) and optimizer.variant.scale == 2.0


def test_registering_refuses_what_is_not_a_named_variant_or_a_taken_name() -> None:
    with pytest.raises(TypeError):
        register_variant(dict)  # type: ignore[arg-type]

    class Nameless(SAMVariant):
        pass

    with pytest.raises(ValueError, match="needs a class attribute `name`"):
        register_variant(Nameless)

    class Impostor(SAMVariant):
        name = "gsam"

    with pytest.raises(ValueError, match="'gsam' is already registered"):
        register_variant(Impostor)
    assert register_variant(GSAM) is GSAM  # registering the same class again changes nothing


def test_result_tables_name_each_variant_as_before() -> None:
    names = ["sam", "asam", "periodic_sam", "looksam", "gsam", "msam", "gone"]
    shown = ["SAM", "ASAM", "periodic_sam", "looksam", "GSAM", "MSAM", "gone"]
    assert [display_name(n) for n in names] == shown


def test_readme_variant_table_is_generated_from_the_registry() -> None:
    text = README.read_text()
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    assert text[start:end].strip() == markdown_table(), (
        "README's SAM variant table is stale: regenerate it with samrl.sam.names.markdown_table()"
    )


# ---------------------------------------------------------------------------------------------
# Files saved before the variants were classes (samrl at a0145a6): old_looksam_asam.d3 is a tiny
# TD3+BC (tests/conftest.py's build, seed 0) with the critic on looksam k=3 alpha=0.5 and the
# actor on ASAM (then variant "sam" with adaptive true), saved after 4 updates, when LookSAM's
# stored direction was in use; old_looksam_asam.json holds the metrics that code gave for 5 more
# updates after loading it (conftest's train, seed 7).

OLD_FACTORY_DICT = {  # a SAMFactory in a pre-registry params.json (looksam, as saved then)
    "clip_grad_norm": None,
    "lr_scheduler_factory": {"type": "none", "params": {}},
    "base": {
        "type": "adam",
        "params": {
            "clip_grad_norm": None,
            "lr_scheduler_factory": {"type": "none", "params": {}},
            "betas": [0.9, 0.999],
            "eps": 1e-08,
            "weight_decay": 0,
            "amsgrad": False,
        },
    },
    "rho": 0.1,
    "adaptive": False,
    "probe_every": 0,
    "variant": "looksam",
    "k": 3,
    "alpha": 0.5,
    "m": 0,
    "rho_schedule": "constant",
    "warmup_steps": 0,
    "rho_min": 0.0,
    "weight_decay_mode": "decoupled",
    "fixed_rho": None,
    "fixed_every": 0,
}


def test_an_old_factory_dict_loads_as_the_same_variant() -> None:
    factory = SAMFactory.deserialize_from_dict(OLD_FACTORY_DICT)
    assert (factory.variant, factory.k, factory.alpha, factory.options) == ("looksam", 3, 0.5, {})
    assert factory.variant_params() == {"k": 3, "alpha": 0.5}
    # what is saved now is what was saved then, plus the (empty) options
    assert factory.serialize_to_dict() == {**OLD_FACTORY_DICT, "options": {}}


def test_a_model_saved_before_variants_were_classes_loads_and_continues_as_it_did() -> None:
    loaded = d3rlpy.load_learnable(str(DATA / "old_looksam_asam.d3"), device="cpu")
    optimizers = sam_optimizers(loaded)
    critic, actor = optimizers["critic"], optimizers["actor"]
    assert isinstance(critic.variant, LookSAM) and critic.variant.values == {"k": 3, "alpha": 0.5}
    assert type(actor.variant) is SAM and actor.adaptive  # ASAM as it was saved then
    assert (critic._steps, actor._steps) == (4, 2)
    with open(DATA / "old_looksam_asam.d3", "rb") as f:
        saved = pickle.load(f)  # d3rlpy's format: the config as JSON, the modules as torch bytes
    factory = json.loads(saved["config"])["config"]["params"]["critic_optim_factory"]["params"]
    assert factory["variant"] == "looksam" and "options" not in factory  # the old format
    modules = torch.load(io.BytesIO(saved["torch"]), map_location="cpu", weights_only=False)
    stored = modules["critic_optim"]["samrl_looksam_direction"]
    direction = critic.variant.direction
    assert direction is not None and len(direction) == len(stored)
    assert all(torch.equal(a, b) for a, b in zip(direction, stored, strict=True))
    assert critic.state_dict()["samrl_looksam_direction"] is direction

    _, dataset = build("td3_plus_bc", installed=False)
    loaded.set_grad_step(4)
    install(loaded)
    runs = train(loaded, dataset, "td3_plus_bc", 5, seed=7)
    expected = json.loads((DATA / "old_looksam_asam.json").read_text())
    # the old code had no grad_cosine metric (added since): compare what it logged
    runs = [{k: v for k, v in m.items() if not k.endswith(GRAD_COSINE.suffix)} for m in runs]
    assert [sorted(m) for m in runs] == [sorted(m) for m in expected]
    # the old code's numbers (recorded on another machine: equal up to float rounding there)
    for got, want in zip(runs, expected, strict=True):
        assert got == pytest.approx(want, rel=1e-5, abs=1e-6)
