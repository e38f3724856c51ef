"""Configuration of ``dreamfusion3d generate`` (the DreamFusion optimisation loop)."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Literal

from ..cameras import CameraSamplerConfig
from ..fields import FieldConfig
from ..guidance import PriorConfig, PromptConfig
from ..rendering import BackgroundConfig, RendererConfig
from ..representations import SDFConfig


@dataclass
class Ramp:
    """A scalar that moves linearly from ``start`` to ``end`` between two steps (constant outside).

    Any weight or scale of the loop is a Ramp, so schedules live in configs, not in code.
    """

    start: float
    end: float | None = None
    """Final value (None: constant at ``start``)."""
    from_step: int = 0
    to_step: int = 0

    def at(self, step: int) -> float:
        if self.end is None or self.to_step <= self.from_step or step <= self.from_step:
            return self.start
        if step >= self.to_step:
            return self.end
        frac = (step - self.from_step) / (self.to_step - self.from_step)
        return self.start + frac * (self.end - self.start)


@dataclass
class ShadingConfig:
    """Which shading each step renders with (DreamFusion: albedo first, then a random mix)."""

    albedo_only_steps: int = 100
    """Steps at the start that use albedo shading only (colour before geometry)."""
    albedo_prob: float = 0.2
    """After that, probability of albedo shading ..."""
    lambertian_prob: float = 0.7
    """... of lambertian shading (textureless takes the rest)."""
    ambient: float = 0.3
    """Ambient light share in lambertian / textureless shading."""
    light: Literal["jitter", "headlight"] = "jitter"
    """Where the light is: jitter = a point light in the camera's direction, jittered (DreamFusion);
    headlight = the world renderer's directional light up-front-right of each camera, the light of
    every view the shipped priors were trained on (light_distance_range and light_jitter_deg unused)."""
    light_distance_range: tuple[float, float] = (1.5, 3.0)
    """Point light distance from the origin; its direction is the camera's, jittered."""
    light_jitter_deg: float = 30.0
    """Angular jitter of the light direction around the camera direction."""


@dataclass
class LossConfig:
    """Regulariser weights (all schedulable Ramps)."""

    orientation: Ramp = dc_field(default_factory=lambda: Ramp(0.01))
    """DreamFusion's orientation loss: penalises visible normals facing away from the camera."""
    opacity: Ramp = dc_field(default_factory=lambda: Ramp(5.0))
    """Sparsity: mean rendered opacity (fights the haze that imitates the background). The SDS
    gradient is per pixel while this is a mean, hence the large-looking weight."""
    entropy: Ramp = dc_field(default_factory=lambda: Ramp(0.0))
    """Binary entropy of the opacity (pushes pixels to fully empty or fully solid)."""
    transmittance: Ramp = dc_field(default_factory=lambda: Ramp(0.0))
    """Dream Fields' transmittance loss, per view: ``relu(τ − mean transmittance)`` with τ =
    ``transmittance_target`` (1000 in ``generate``'s default and the bundled preset). Unlike
    ``opacity`` it leaves a view alone until the object covers more than ``1 − τ`` of the frame, so
    it stops a field from turning into a frame-filling cloud of the prompt's colour (which a prior
    trained over random background colours can take for the background) without shrinking objects
    of the right size."""
    transmittance_target: float = 0.25
    """τ of the transmittance loss: the least share of each SDS view left to the background (0.25: a
    sphere of the world's size fills 60–90 % of a close view, so 0.4 dented the spheres; the clouds
    fill 96–99 %; docs/RESULTS.md, session 39)."""


@dataclass
class OptimConfig:
    """Adam with per-group learning rates and a linear warm-up."""

    lr: float = 0.03
    """Learning rate of the field's encoding (hash grid / voxel features)."""
    lr_network: float = 0.003
    """Learning rate of the field's MLP heads."""
    lr_background: float = 0.001
    """Learning rate of the learned background."""
    warmup_steps: int = 50
    """Linear learning-rate warm-up."""
    decay: Literal["none", "cosine"] = "none"
    """After the warm-up: ``cosine`` lowers every group's learning rate to ``final_lr_fraction`` of
    its value by the last step (less SDS noise imprinted on the finished surface)."""
    final_lr_fraction: float = 0.1
    """With ``decay cosine``: the learning rate at the last step, as a fraction of the peak."""
    ema_decay: float = 0.0
    """If > 0: keep an exponential moving average of the representation's parameters (decay per
    step) from step ``ema_start`` on, and save and export it instead of the last step's. Off by
    default: on the 35-prompt grid 0.99 lifted the cones and lowered the cubes, no net gain
    (docs/RESULTS.md, session 35)."""
    ema_start: int = 300
    """First step that enters the moving average (with ``ema_decay`` > 0)."""
    betas: tuple[float, float] = (0.9, 0.99)
    """Adam betas."""
    eps: float = 1e-15
    """Adam epsilon (small, as instant-NGP uses for hash grids)."""


@dataclass
class OutputConfig:
    """What is written at the end of a run."""

    mesh_formats: tuple[Literal["glb", "obj", "ply"], ...] = ("glb", "obj", "ply")
    """Mesh files to export."""
    mesh_resolution: int = 128
    """Marching-cubes grid resolution."""
    mesh_faces: int = 50000
    """Face budget of the exported mesh (quadric decimation; 0 keeps every marching-cubes face)."""
    texture: Literal["albedo", "none"] = "albedo"
    """'albedo': UV-unwrap the mesh (xatlas) and bake the albedo into mesh.png (GLB texture,
    OBJ+MTL+PNG; PLY keeps vertex colours); 'none': vertex colours only."""
    texture_size: int = 1024
    """Baked texture width and height in pixels (16 to 8192)."""
    video_frames: int = 48
    """Frames of the turntable video."""
    video_resolution: int = 128
    """Turntable frame size in pixels."""
    video_fps: int = 24
    """Turntable frame rate."""
    video_elevation: float = 20.0
    """Turntable camera elevation in degrees."""
    gif: bool = True
    """Also write turntable.gif (for READMEs)."""
    preview_every: int = 200
    """Write a progress grid of renders every N steps (0: never)."""
    checkpoint_every: int = 100
    """Write checkpoints/latest every N steps (and on Ctrl-C)."""

    def __post_init__(self) -> None:  # at parse time: a bad texture option fails before a run starts
        from ..export.texture import check_texture_options

        check_texture_options(self.texture, self.texture_size, flag="--output.")


@dataclass
class GenerateConfig:
    """Text to 3D: optimise a 3D representation (by default a signed-distance field) so that a
    frozen diffusion prior likes its renders (SDS)."""

    prompt: str = ""
    """The text prompt, e.g. "a red cube"."""
    prompts_file: Path | None = None
    """A text file with one prompt per line (outputs go to OUT/<prompt-slug>/); under torchrun
    the prompts are split across ranks."""
    out: Path = Path("outputs/generate")
    """Output folder."""
    overwrite: bool = False
    """Allow writing into a non-empty output folder (its old files are replaced)."""
    resume: Path | None = None
    """Continue the run in this folder from its latest checkpoint."""
    steps: int = 600
    """Optimisation steps."""
    batch_size: int = 2
    """Random views per step."""
    resolution: int = 32
    """Render size for the prior during optimisation."""
    seed: int = 0
    """Seed of the whole run (cameras, lights, shading, noise)."""
    device: str = "auto"
    """auto (cuda:LOCAL_RANK if CUDA is available, else cpu), cpu, cuda, cuda:N, mps."""
    num_threads: int = 0
    """torch CPU threads (0: torch's default)."""
    vram_gb: float | None = None
    """GPU memory to plan for (stable-diffusion / deepfloyd-if priors): sets batch_size, resolution,
    prior.attention_slicing and prior.cpu_offload from estimated peaks (dreamfusion3d/generate/memory.py)."""
    prior: PriorConfig = dc_field(default_factory=lambda: PriorConfig(
        guidance_scale=7.5, t_min=0.9, t_anneal="linear", t_max_end=0.75, t_min_end=0.02))
    """The frozen diffusion prior. The default's timesteps start in [0.9, 0.98], where the bundled
    32 px prior still decides the shape, and slide to [0.02, 0.75] (docs/RESULTS.md, "the sphere
    lock"); the sd and if presets set their own."""
    prompting: PromptConfig = dc_field(default_factory=PromptConfig)
    """View-dependent prompts, negative prompt, Perp-Neg."""
    geometry: str = "sdf"
    """The 3D representation: nerf (density field) or sdf (signed distance, meshed at its zero
    level set)."""
    field: FieldConfig = dc_field(default_factory=lambda: FieldConfig(dense_resolution=32, dense_blur=1.0))
    """The field's encoding and MLP (both geometries); density options apply to nerf."""
    sdf: SDFConfig = dc_field(default_factory=lambda: SDFConfig(beta_end=0.01))
    """The signed-distance geometry's own options (--geometry sdf; β anneals to 0.01 here: at 0.02
    the spheres grew tunnels and the tori's tubes came out thin, docs/RESULTS.md, session 39)."""
    renderer: RendererConfig = dc_field(default_factory=RendererConfig)
    """Sampling, occupancy grid, compositing."""
    background: BackgroundConfig = dc_field(default_factory=lambda: BackgroundConfig(kind="fixed", random_prob=1.0))
    """What is behind the object (learned by view direction, or fixed)."""
    cameras: CameraSamplerConfig = dc_field(default_factory=CameraSamplerConfig)
    """Random training cameras."""
    shading: ShadingConfig = dc_field(default_factory=ShadingConfig)
    """Shading schedule."""
    losses: LossConfig = dc_field(default_factory=lambda: LossConfig(transmittance=Ramp(1000.0)))
    """Regularisers."""
    optim: OptimConfig = dc_field(default_factory=OptimConfig)
    """Optimiser."""
    output: OutputConfig = dc_field(default_factory=OutputConfig)
    """Meshes, video, previews, checkpoints."""
