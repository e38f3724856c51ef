"""The prior registry: one line per prior, defaults set in one place."""

import typing

import pytest

from dreamfusion3d.cli import main
from dreamfusion3d.guidance import PRIORS, PriorConfig, load_prior
from dreamfusion3d.guidance.config import IMAGE_KINDS, PriorKind
from dreamfusion3d.guidance.registry import PriorSpec


def test_kinds_and_image_kinds_come_from_the_registry():
    assert typing.get_args(PriorKind) == tuple(PRIORS)
    assert set(IMAGE_KINDS) == {"novel_view", "zero123"}
    for kind, spec in PRIORS.items():
        cls = spec.load()
        assert cls.name == kind and hasattr(cls, "from_config")
        assert cls.conditioning == spec.conditioning


@pytest.mark.parametrize("kind", ["bundled", "novel_view"])
def test_from_config_alone_gives_what_load_prior_gives(kind):
    config = PriorConfig(kind=kind, t_min=0.1, t_max=0.7, t_anneal="linear", t_max_end=0.4, t_min_end=0.05,
                         weighting="uniform")
    direct = PRIORS[kind].load().from_config(config)
    loaded = load_prior(config)
    settings = ("guidance_scale", "t_min", "t_max", "t_anneal", "t_max_end", "t_min_end", "weighting")
    assert [getattr(direct, s) for s in settings] == [getattr(loaded, s) for s in settings]
    assert direct.guidance_scale == PRIORS[kind].guidance_scale and direct.t_min == 0.1
    assert direct.weighting == "uniform" and direct.t_min_end == 0.05


def test_from_config_checks_the_t_range():
    from dreamfusion3d.utils.errors import UserError

    with pytest.raises(UserError, match="t_min"):
        PRIORS["bundled"].load().from_config(PriorConfig(t_min=0.9, t_max=0.5))


def test_a_new_prior_is_one_registry_line(monkeypatch, tmp_path):
    from dreamfusion3d.guidance.exact import ExactPrior

    class Echo(ExactPrior):
        name = "echo"

    import sys
    import types

    module = types.ModuleType("echo_prior_module")
    module.Echo = Echo
    monkeypatch.setitem(sys.modules, "echo_prior_module", module)
    monkeypatch.setitem(PRIORS, "echo", PriorSpec("echo_prior_module:Echo", None, 4.5))
    import imageio.v3 as iio
    import numpy as np

    iio.imwrite(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    prior = load_prior(PriorConfig(kind="echo", model=str(tmp_path)))  # type: ignore[arg-type]
    assert isinstance(prior, Echo) and prior.guidance_scale == 4.5


def test_sample_has_one_guidance_scale_option(capsys):
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    out = capsys.readouterr().out
    assert "--guidance-scale" in out and "--prior.guidance-scale" not in out


def test_help_is_written_from_the_registry(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())
    for kind, spec in PRIORS.items():
        assert f"{kind} {spec.guidance_scale:g}" in out
        assert f"{kind} = {spec.model or spec.model_note}" in out
